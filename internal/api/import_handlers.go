package api

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/catalog/backstage"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// MaxImportBytes bounds a catalog file.
const MaxImportBytes = 2 << 20

// yamlTypes are the Content-Types a catalog file may come as.
var yamlTypes = []string{"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}

func (a *API) importCatalog(c echo.Context) error {
	req := c.Request()
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || !contains(yamlTypes, mt) {
		return problem.Errorf(problem.CodeUnsupported, "send the catalog file as application/yaml (or text/plain)")
	}
	dryRun, err := boolParam(c, "dry_run")
	if err != nil {
		return err
	}
	source := c.QueryParam("source")
	if source == "" {
		return problem.Invalid(map[string]string{"source": "is required: name the file or repository the catalog comes from"})
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxImportBytes+1))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return problem.Errorf(problem.CodeInvalid, "the request body did not arrive in time")
	case err != nil:
		var mbe *http.MaxBytesError
		var he *echo.HTTPError
		if errors.As(err, &mbe) || (errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge) {
			return problem.Errorf(problem.CodeTooLarge, "a catalog file is at most %d bytes", MaxImportBytes)
		}
		return problem.Errorf(problem.CodeInvalid, "could not read the request body")
	case len(body) > MaxImportBytes:
		return problem.Errorf(problem.CodeTooLarge, "a catalog file is at most %d bytes", MaxImportBytes)
	}
	p := principal(c)
	// A caller who may register nothing may not import either (nor leave
	// a failed result in place of a team's last one).
	if !a.mayOnSome(c, rbac.Create, "catalog") && !a.mayOnSome(c, rbac.Create, catalog.KindService) {
		return problem.Errorf(problem.CodeForbidden, "a %s may not import a catalog", p.Role)
	}
	res, err := backstage.Apply(req.Context(), a.catalog, p.Tenant, source, body, dryRun, a.importAllow(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

// importAllow lets an import create or change an entity when the caller may
// create it (new) or update it (as loaded, and as it becomes).
func (a *API) importAllow(c echo.Context) access.Check {
	p := principal(c)
	return func(ctx context.Context, obj rbac.Object) error {
		if err := a.rbac.Authorize(ctx, p, rbac.Update, obj); err == nil {
			return nil
		}
		return a.rbac.Authorize(ctx, p, rbac.Create, obj)
	}
}

func (a *API) exportCatalog(c echo.Context) error {
	ents, rels, err := a.catalog.Export(c.Request().Context(), principal(c).Tenant, a.allow(c, rbac.Read))
	if err != nil {
		return err
	}
	out, err := backstage.Export(ents, rels)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/yaml", out)
}

func (a *API) listImports(c echo.Context) error {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "catalog", "")); err != nil {
		return err
	}
	res, err := a.catalog.Imports(c.Request().Context(), p.Tenant)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(res, ""))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if strings.EqualFold(y, x) {
			return true
		}
	}
	return false
}

func (a *API) importRoutes() []route {
	t := v1 + "/tenants/:tenant/catalog"
	return []route{
		{Method: http.MethodPost, Path: t + "/import", Summary: "Import a catalog file (Backstage's multi-document catalog-info.yaml, sent as application/yaml): every document checked, every error answered with its document and line, applied all or nothing; entities of the source that the file no longer holds are marked orphaned, never deleted", Tag: "catalog", Auth: authTenant, Response: catalog.ImportResult{}, Status: 200,
			Query: []queryParam{{"source", "string", "the file or repository the catalog comes from (required)"}, {"dry_run", "boolean", "only read and check the file"}}, handler: a.importCatalog},
		{Method: http.MethodGet, Path: t + "/export", Summary: "The catalog as a multi-document YAML file, imported documents written back with what Switchboard does not model", Tag: "catalog", Auth: authTenant, Status: 200, handler: a.exportCatalog},
		{Method: http.MethodGet, Path: t + "/imports", Summary: "The last import of each source, with its errors", Tag: "catalog", Auth: authTenant, Response: List[catalog.ImportResult]{}, Status: 200, handler: a.listImports},
	}
}

// mayOnSome reports whether the caller may act on an entity of kind owned
// by one of their teams (or by none): the coarse check before work whose
// entities the domain then decides on one by one.
func (a *API) mayOnSome(c echo.Context, act, kind string) bool {
	p := principal(c)
	for _, team := range append([]string{""}, p.Teams...) {
		obj := rbac.Of(p, kind, "")
		obj.Team = team
		if a.rbac.Authorize(c.Request().Context(), p, act, obj) == nil {
			return true
		}
	}
	return false
}
