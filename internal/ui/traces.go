package ui

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tracing"
	"switchboard/views"
)

// registerTraces adds the tracing pages: the search, the live tail, a
// trace's waterfall and a span's details (a fragment for the page's
// script).
func (u *UI) registerTraces(t *echo.Group) {
	t.GET("/traces", u.traceSearch)
	t.GET("/traces/live", u.traceTail)
	t.GET("/traces/:trace_id", u.tracePage)
	t.GET("/traces/:trace_id/spans/:span_id", u.traceSpan)
}

// traces is the span store, once the caller may read traces.
func (u *UI) traces(c echo.Context) (*tracing.Store, error) {
	if u.d.Traces == nil {
		return nil, problem.Errorf(problem.CodeUnavailable, "Tracing is not running on this server.")
	}
	p := principal(c)
	if err := u.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "trace", "")); err != nil {
		return nil, err
	}
	return u.d.Traces, nil
}

// serviceNames are the services that sent spans, for the filters.
func serviceNames(c echo.Context, s *tracing.Store) ([]string, error) {
	ss, err := s.Services(c.Request().Context(), principal(c).Tenant)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ss))
	for i, x := range ss {
		out[i] = x.Name
	}
	return out, nil
}

// traceFilterKeys are the search form's parameters.
var traceFilterKeys = []string{"service", "operation", "status", "min_duration", "max_duration", "attr", "window"}

func (u *UI) traceSearch(c echo.Context) error {
	s, err := u.traces(c)
	if err != nil {
		return err
	}
	v := views.TraceSearchView{Filter: map[string]string{}}
	in := c.QueryParams()
	for _, k := range traceFilterKeys {
		v.Filter[k] = in.Get(k)
	}
	if v.Filter["window"] == "" {
		v.Filter["window"] = "1h"
	}
	if v.Services, err = serviceNames(c, s); err != nil {
		return err
	}
	status := http.StatusOK
	q, err := searchQuery(in, v.Filter["window"])
	if err != nil {
		v.Err = problemText(err)
		return render(c, http.StatusUnprocessableEntity, views.TraceSearchPage(page(c, "Traces", views.SectionTraces), v))
	}
	v.Cursor = in.Get("cursor")
	v.Traces, v.NextCursor, err = s.Search(c.Request().Context(), principal(c).Tenant, q, v.Cursor, 50)
	if problem.Code(err) == problem.CodeInvalid {
		v.Err, status = problemText(err), http.StatusUnprocessableEntity
	} else if err != nil {
		return err
	}
	return render(c, status, views.TraceSearchPage(page(c, "Traces", views.SectionTraces), v))
}

// searchQuery reads the search form: the API's parameters (without since
// and until) and a window back from now.
func searchQuery(in url.Values, window string) (tracing.Query, error) {
	v := url.Values{}
	for _, k := range []string{"service", "operation", "status", "min_duration", "max_duration"} {
		if s := in.Get(k); s != "" {
			v.Set(k, s)
		}
	}
	if a := in.Get("attr"); a != "" {
		v.Set("attr", a)
	}
	q, err := tracing.ParseQuery(v)
	if err != nil {
		return q, err
	}
	ok := slices.ContainsFunc(views.TraceWindows, func(o views.Option) bool { return o.Value == window })
	if !ok {
		return q, problem.Invalid(map[string]string{"window": "must be one of the windows offered"})
	}
	d, _ := time.ParseDuration(window)
	q.Since = time.Now().Add(-d)
	return q, nil
}

func (u *UI) traceTail(c echo.Context) error {
	s, err := u.traces(c)
	if err != nil {
		return err
	}
	services, err := serviceNames(c, s)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.TraceTailPage(page(c, "Live tail", views.SectionTraces), services))
}

// loadTrace reads a trace and the dead letters it produced, laid out.
func (u *UI) loadTrace(c echo.Context) (views.TraceView, error) {
	s, err := u.traces(c)
	if err != nil {
		return views.TraceView{}, err
	}
	p := principal(c)
	ctx := c.Request().Context()
	spans, err := s.Trace(ctx, p.Tenant, c.Param("trace_id"))
	if problem.Code(err) == problem.CodeInvalid {
		return views.TraceView{}, problem.NotFound("trace", c.Param("trace_id"))
	}
	if err != nil {
		return views.TraceView{}, err
	}
	v := views.TraceView{TraceID: spans[0].TraceID}
	v.Rows, v.Start, v.Total = tracing.Waterfall(spans)
	seen := map[string]bool{}
	for _, r := range v.Rows {
		if !seen[r.Service] {
			seen[r.Service] = true
			v.Services = append(v.Services, r.Service)
		}
		if r.Status == "error" {
			v.Errors++
		}
	}
	if u.d.DLQ != nil {
		v.DeadLetters, err = u.d.DLQ.TracedMessages(ctx, p.Tenant, v.TraceID, u.rbac.Check(p, rbac.Read))
		if err != nil {
			return views.TraceView{}, err
		}
	}
	return v, nil
}

// selectRow finds the span named id among v's rows.
func selectRow(v views.TraceView, id string) *tracing.Row {
	for i := range v.Rows {
		if v.Rows[i].SpanID == id {
			return &v.Rows[i]
		}
	}
	return nil
}

func (u *UI) tracePage(c echo.Context) error {
	v, err := u.loadTrace(c)
	if err != nil {
		return err
	}
	if id := c.QueryParam("span"); id != "" {
		v.Selected = selectRow(v, id)
	}
	return render(c, http.StatusOK, views.TracePage(page(c, "Trace "+views.ShortID(v.TraceID), views.SectionTraces), v))
}

// traceSpan is a span's details panel, for the page's script.
func (u *UI) traceSpan(c echo.Context) error {
	v, err := u.loadTrace(c)
	if err != nil {
		return err
	}
	r := selectRow(v, c.Param("span_id"))
	if r == nil {
		return problem.NotFound("span", c.Param("span_id"))
	}
	return render(c, http.StatusOK, views.SpanDetailsPanel(principal(c).TenantSlug, v.TraceID, views.SpanDetails{Row: *r, DeadLetters: v.DeadLettersOf(r.SpanID)}))
}
