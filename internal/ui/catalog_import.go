package ui

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/internal/access"
	"switchboard/internal/auth"
	"switchboard/internal/catalog"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/views"
)

// maxImportFile bounds an imported file (pasted or uploaded).
const maxImportFile = 8 << 20

func (u *UI) importPage(c echo.Context) error {
	return u.renderImport(c, http.StatusOK, views.ImportView{Source: "catalog-info.yaml"})
}

// renderImport draws the import form, v's result, and the last import of
// every source.
func (u *UI) renderImport(c echo.Context, status int, v views.ImportView) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, catalog.KindService, "")); err != nil {
		return err
	}
	v.Available = u.d.ImportYAML != nil
	v.CanImport = u.mayOnSome(ctx, p, rbac.Create, catalog.KindService)
	imports, err := u.d.Catalog.Imports(ctx, p.Tenant)
	if err != nil {
		return err
	}
	for i := range imports {
		v.Imports = append(v.Imports, importRow(&imports[i]))
	}
	return render(c, status, views.ImportPage(page(c, "Import", views.SectionCatalog), v))
}

func importRow(r *catalog.ImportResult) views.ImportRow {
	row := views.ImportRow{Source: r.Source, At: r.At.UTC().Format("2006-01-02 15:04:05 UTC"), Actor: r.Actor, Applied: r.Applied,
		Created: len(r.Created), Updated: len(r.Updated), Orphaned: len(r.Orphaned), Missing: len(r.Missing), Unchanged: r.Unchanged,
		Relations: r.Relations, OrphanedRefs: r.Orphaned}
	for _, e := range r.Errors {
		row.Errors = append(row.Errors, views.ImportErrorRow{Document: e.Document, Line: e.Line, Field: e.Field, Message: e.Message})
	}
	return row
}

// importAllow lets an import create an entity or replace one only when the
// caller may both create and update it (an import does either, by what
// the catalog holds).
func (u *UI) importAllow(p auth.Principal) access.Check {
	create, update := u.rbac.Check(p, rbac.Create), u.rbac.Check(p, rbac.Update)
	return func(ctx context.Context, obj access.Object) error {
		if err := create(ctx, obj); err != nil {
			return err
		}
		return update(ctx, obj)
	}
}

// importYAML imports the pasted text, or the uploaded file when one is
// given, and shows the result: every error at its document and line, or
// what was created, updated and orphaned.
func (u *UI) importYAML(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	v := views.ImportView{Source: strings.TrimSpace(c.FormValue("source")), YAML: c.FormValue("yaml"), Errs: views.FormErrors{}}
	if u.d.ImportYAML == nil {
		return problem.Errorf(problem.CodeUnavailable, "this server cannot read catalog files")
	}
	data := []byte(v.YAML)
	if fh, err := c.FormFile("file"); err == nil && fh.Size > 0 {
		if fh.Size > maxImportFile {
			v.Errs["file"] = "The file is larger than 8 MiB; split it into several sources."
			return u.renderImport(c, http.StatusRequestEntityTooLarge, v)
		}
		f, err := fh.Open()
		if err != nil {
			return err
		}
		data, err = io.ReadAll(io.LimitReader(f, maxImportFile+1))
		_ = f.Close() // read-only upload: nothing to lose
		if err != nil {
			return err
		}
		if v.Source == "" {
			v.Source = fh.Filename
		}
	}
	switch {
	case v.Source == "":
		v.Errs["source"] = "Name the source, such as the file's path in its repository."
	case !catalog.ValidSource(v.Source):
		v.Errs["source"] = "A source is 1-200 letters, digits and ._/:@-."
	}
	if strings.TrimSpace(string(data)) == "" {
		v.Errs["yaml"] = "Paste the YAML or choose a file."
	}
	if len(data) > maxImportFile {
		v.Errs["yaml"] = "The text is larger than 8 MiB; split it into several sources."
	}
	if len(v.Errs) > 0 {
		return u.renderImport(c, http.StatusUnprocessableEntity, v)
	}
	res, err := u.d.ImportYAML(ctx, p.Tenant, v.Source, data, u.importAllow(p))
	if err != nil {
		errs, err := formErrors(err, nil)
		if err != nil {
			return err
		}
		v.Errs = errs
		if len(res.Errors) == 0 {
			return u.renderImport(c, http.StatusUnprocessableEntity, v)
		}
	}
	row := importRow(&res)
	v.Result = &row
	status := http.StatusOK
	if !res.Applied || len(res.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	} else {
		v.YAML = "" // applied: the form is ready for the next file
	}
	return u.renderImport(c, status, v)
}
