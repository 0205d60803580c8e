package ui

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/catalog"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tracing"
	"switchboard/internal/web"
	"switchboard/views"
)

// maxJSONBody bounds what the topology page posts (a saved view holds the
// positions of a few thousand nodes).
const maxJSONBody = 2 << 20

// topologyPage is the frame of the graph; static/topology.js fetches the
// graph itself from topologyJSON.
func (u *UI) topologyPage(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, catalog.KindService, "")); err != nil {
		return err
	}
	v := views.TopologyView{Filter: topologyFilter(c), Kinds: catalogKinds(), RelationTypes: catalog.RelationTypes,
		CanEdit: u.mayOnSome(ctx, p, rbac.Update, catalog.KindService)}
	teams, err := u.teamSlugs(c)
	if err != nil {
		return err
	}
	v.Teams = teams
	if id := c.QueryParam("view"); id != "" {
		vid, err := uuid.Parse(id)
		if err != nil {
			return problem.NotFound("view", id)
		}
		sv, err := u.d.Catalog.View(ctx, p.Tenant, vid)
		if err != nil {
			return err
		}
		v.ViewID, v.ViewName, v.ViewState = sv.ID.String(), sv.Name, string(sv.State)
	}
	saved, err := u.d.Catalog.Views(ctx, p.Tenant)
	if err != nil {
		return err
	}
	for _, sv := range saved {
		v.Views = append(v.Views, views.SavedView{ID: sv.ID.String(), Name: sv.Name, CreatedBy: sv.CreatedBy})
	}
	return render(c, http.StatusOK, views.TopologyPage(page(c, "Topology", views.SectionTopology), v))
}

// catalogKinds are the kinds the filters offer.
func catalogKinds() []string {
	return append(append([]string{}, catalog.NativeKinds...), "component", "api", "resource", "system", "domain", "group", "user")
}

func topologyFilter(c echo.Context) views.TopologyFilter {
	return views.TopologyFilter{OwnerTeam: c.QueryParam("owner_team"), Labels: c.QueryParam("labels"), Kind: c.QueryParam("kind"),
		Q: c.QueryParam("q"), Around: c.QueryParam("around"), Depth: c.QueryParam("depth"), TracedSince: c.QueryParam("traced_since")}
}

// teamSlugs lists the organisation's teams for the filters and forms (none
// when the role may not read teams).
func (u *UI) teamSlugs(c echo.Context) ([]string, error) {
	p := principal(c)
	ctx := c.Request().Context()
	if u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "team", "")) != nil {
		return nil, nil
	}
	teams, _, err := u.tenancy.ListTeams(ctx, p.Tenant, "", 200)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(teams))
	for i, t := range teams {
		out[i] = t.Slug
	}
	return out, nil
}

// topologyQuery reads the topology route's query parameters: owner_team,
// labels, kind (repeated or comma-separated), q, around, depth.
func topologyQuery(c echo.Context) (catalog.TopologyQuery, error) {
	q := catalog.TopologyQuery{}
	q.OwnerTeam = strings.TrimSpace(c.QueryParam("owner_team"))
	q.Q = strings.TrimSpace(c.QueryParam("q"))
	q.Around = strings.TrimSpace(c.QueryParam("around"))
	for _, k := range c.QueryParams()["kind"] {
		for part := range strings.SplitSeq(k, ",") {
			if part = strings.ToLower(strings.TrimSpace(part)); part != "" {
				q.Kinds = append(q.Kinds, part)
			}
		}
	}
	if s := c.QueryParam("labels"); strings.TrimSpace(s) != "" {
		sel, err := catalog.ParseSelector(s)
		if err != nil {
			return q, err
		}
		q.Labels = sel
	}
	if d := strings.TrimSpace(c.QueryParam("depth")); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 10 {
			return q, problem.Invalid(map[string]string{"depth": "must be a whole number from 1 to 10"})
		}
		q.Depth = n
	}
	return q, nil
}

// topologyJSON answers the graph the page draws, as the REST API's
// topology route does.
func (u *UI) topologyJSON(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	q, err := topologyQuery(c)
	if err != nil {
		return jsonProblem(c, err)
	}
	var window time.Duration
	if s := c.QueryParam("traced_since"); s != "" {
		if window, err = tracing.ParseWindow(s); err != nil {
			return jsonProblem(c, err)
		}
	}
	t, err := u.d.Catalog.Topology(ctx, p.Tenant, q, u.rbac.Check(p, rbac.Read))
	if err != nil {
		return jsonProblem(c, err)
	}
	// Traffic from spans, for those who may read traces (others get the
	// catalog's graph as it is).
	if window > 0 && u.d.Traces != nil && u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "trace", "")) == nil {
		if err := u.d.Traces.LayOver(ctx, p.Tenant, &t, window); err != nil {
			return jsonProblem(c, err)
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, t)
}

// relationRequest is what the page posts to draw or delete a relation.
type relationRequest struct {
	From string `json:"from"`
	Type string `json:"type"`
	To   string `json:"to"`
}

func decodeJSONBody(c echo.Context, v any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return problem.Errorf(problem.CodeUnsupported, "send JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), req.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.Errorf(problem.CodeInvalid, "the request body is not the JSON this route takes")
	}
	return nil
}

// relate draws a relation (Store.Relate: the caller must be allowed to
// update the entity it starts from).
func (u *UI) relate(c echo.Context) error {
	p := principal(c)
	var in relationRequest
	if err := decodeJSONBody(c, &in); err != nil {
		return jsonProblem(c, err)
	}
	r, err := u.d.Catalog.Relate(c.Request().Context(), p.Tenant, catalog.Relation{From: in.From, Type: in.Type, To: in.To}, u.rbac.Check(p, rbac.Update))
	if err != nil {
		return jsonProblem(c, err)
	}
	return c.JSON(http.StatusCreated, r)
}

// unrelate deletes a relation.
func (u *UI) unrelate(c echo.Context) error {
	p := principal(c)
	var in relationRequest
	if err := decodeJSONBody(c, &in); err != nil {
		return jsonProblem(c, err)
	}
	err := u.d.Catalog.Unrelate(c.Request().Context(), p.Tenant, catalog.Relation{From: in.From, Type: in.Type, To: in.To}, u.rbac.Check(p, rbac.Update))
	if err != nil {
		return jsonProblem(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// viewRequest is a view to save: a name and the page's state.
type viewRequest struct {
	Name  string          `json:"name"`
	State json.RawMessage `json:"state"`
}

// viewResponse names the saved view and the address that opens it.
type viewResponse struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

// saveView keeps the page's filters and node positions under a name, for
// anyone in the organisation to open by its URL.
func (u *UI) saveView(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, catalog.KindService, "")); err != nil {
		return jsonProblem(c, err)
	}
	var in viewRequest
	if err := decodeJSONBody(c, &in); err != nil {
		return jsonProblem(c, err)
	}
	v, err := u.d.Catalog.SaveView(ctx, p.Tenant, in.Name, in.State)
	if err != nil {
		return jsonProblem(c, err)
	}
	return c.JSON(http.StatusCreated, viewResponse{ID: v.ID.String(), Name: v.Name,
		URL: views.TenantPath(p.TenantSlug, views.SectionTopology) + "?view=" + v.ID.String()})
}

// jsonProblem answers err as problem+json: the routes the page's script
// calls read errors as the REST API writes them, not as pages.
func jsonProblem(c echo.Context, err error) error {
	req := c.Request()
	web.WriteProblem(c, web.ProblemFor(req.Context(), slog.Default(), err, req.URL.Path))
	return nil
}
