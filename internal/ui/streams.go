package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"switchboard/internal/auth"
	"switchboard/internal/eventstore"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/views"
)

const (
	streamsPerPage = 50 // rows of the streams table
	eventsPerPage  = 25 // rows of a stream's events table
	tailRows       = 20 // recent events the streams page's live tail starts with
	// maxSearchReads bounds the reads lastEvents makes (two per bit of a
	// log position, and then some).
	maxSearchReads = 140
)

// registerStreams adds the stream browser to the tenant group t: the
// tenant's streams, one stream's events and metadata, and live tails that
// listen on the REST API's subscription WebSocket
// (/api/v1/tenants/{tenant}/subscriptions/live, authenticated by the
// session cookie).
func (u *UI) registerStreams(t *echo.Group) {
	t.GET("/streams", u.streamsPage)
	t.POST("/streams", u.appendEvent)
	t.GET("/streams/:stream", u.streamPage)
	t.GET("/subscriptions", u.subscriptionsPage)
	t.GET("/subscriptions/list", u.subscriptionsList)
}

func (u *UI) eventStore() (*eventstore.Store, error) {
	if u.d.Events == nil {
		return nil, problem.Errorf(problem.CodeUnavailable, "the event store is not running on this server")
	}
	return u.d.Events, nil
}

func (u *UI) streamsPage(c echo.Context) error {
	return u.renderStreams(c, http.StatusOK, views.AppendForm{Expected: "any"}, nil)
}

func (u *UI) renderStreams(c echo.Context, status int, f views.AppendForm, errs views.FormErrors) error {
	es, err := u.eventStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "stream", "")); err != nil {
		return err
	}
	cursor := c.QueryParam("cursor")
	streams, next, err := es.ListStreams(ctx, p.Tenant, cursor, streamsPerPage)
	if problem.Code(err) == problem.CodeInvalid {
		return problem.Errorf(problem.CodeInvalid, "This page link is broken or stale; start again from the first page of streams.")
	}
	if err != nil {
		return err
	}
	v := views.StreamsView{Cursor: cursor, Next: next, Example: appendExample(u.baseURL(c), p.TenantSlug),
		CanAppend: u.rbac.Authorize(ctx, p, rbac.Use, rbac.Of(p, "stream", "")) == nil, Append: f, Errs: errs}
	for _, s := range streams {
		v.Streams = append(v.Streams, views.StreamRow{Name: s.Name, Category: s.Category, Version: s.Version, LastWriteAt: s.LastWriteAt})
	}
	if v.Tail, err = u.logTail(ctx, es, p, strings.TrimSpace(c.QueryParam("category"))); err != nil {
		return err
	}
	return render(c, status, views.StreamsPage(page(c, "Event streams", views.SectionStreams), v))
}

// logTail is the live tail of the streams page: the last tailRows events of
// the organisation's log (or of one category), and the position after the
// log's end for the subscription. The subscription is to the whole log even
// when the table keeps one category (Filter): the streams list on the same
// page follows every stream from it.
func (u *UI) logTail(ctx context.Context, es *eventstore.Store, p auth.Principal, category string) (views.Tail, error) {
	t := views.Tail{Filter: category, AfterVersion: -1}
	read := func(from int64, n int) ([]eventstore.Event, error) {
		if category == "" {
			return es.ReadAll(ctx, p.Tenant, from, n)
		}
		return es.ReadCategory(ctx, p.Tenant, category, from, n)
	}
	last, err := lastEvents(read, tailRows)
	if err != nil {
		msg, err := readMessage(err)
		t.Err = msg
		return t, err
	}
	if n := len(last); n > 0 {
		t.From = last[n-1].Position + 1
	}
	for i := len(last) - 1; i >= 0; i-- {
		t.Events = append(t.Events, eventRow(last[i]))
	}
	if category != "" {
		end, err := lastEvents(func(from int64, n int) ([]eventstore.Event, error) { return es.ReadAll(ctx, p.Tenant, from, n) }, 1)
		if err != nil {
			return t, err
		}
		if len(end) > 0 {
			t.From = end[0].Position + 1
		}
	}
	return t, nil
}

func (u *UI) streamPage(c echo.Context) error {
	return u.renderStream(c, http.StatusOK, c.Param("stream"), views.AppendForm{Expected: "exact"}, nil)
}

func (u *UI) renderStream(c echo.Context, status int, name string, f views.AppendForm, errs views.FormErrors) error {
	es, err := u.eventStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "stream", name)); err != nil {
		return err
	}
	info, err := es.GetStream(ctx, p.Tenant, name)
	if err != nil {
		return spelledOut(err)
	}
	from := eventstore.End
	if s := c.QueryParam("from"); s != "" {
		if from, err = strconv.ParseInt(s, 10, 64); err != nil || from < 0 {
			return problem.Errorf(problem.CodeInvalid, "The version to start from must be a whole number, 0 or more.")
		}
	}
	m := info.Metadata
	v := views.StreamView{Name: info.Name, Category: info.Category, Version: info.Version, CreatedAt: info.CreatedAt,
		LastWriteAt: info.LastWriteAt, MaxCount: m.MaxCount, MaxAgeSeconds: m.MaxAgeSeconds, TruncateBefore: m.TruncateBefore,
		From: -1, Older: -1, Append: f, Errs: errs,
		CanAppend: u.rbac.Authorize(ctx, p, rbac.Use, rbac.Of(p, "stream", name)) == nil}
	if from != eventstore.End {
		v.From = from
	}
	var events []eventstore.Event
	if info.Version >= 0 { // a stream with metadata but no events has nothing to read
		if events, err = es.ReadStream(ctx, p.Tenant, name, from, eventstore.Backward, eventsPerPage); err != nil {
			return err
		}
	}
	for _, e := range events {
		v.Events = append(v.Events, eventRow(e))
	}
	if n := len(events); n == eventsPerPage && events[n-1].Version > 0 {
		v.Older = events[n-1].Version - 1
	}
	// The live view subscribes to the whole log (of the stream's category),
	// which needs read access to every stream.
	if u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "stream", "")) == nil {
		newest := events
		if from != eventstore.End && info.Version >= 0 {
			if newest, err = es.ReadStream(ctx, p.Tenant, name, eventstore.End, eventstore.Backward, 1); err != nil {
				return err
			}
		}
		if v.Tail, err = u.streamTail(ctx, es, p, name, newest); err != nil {
			return err
		}
	} else {
		v.Tail.Err = "Live updates need read access to every stream of the organisation."
	}
	return render(c, status, views.StreamPage(page(c, info.Name, views.SectionStreams), v))
}

// appendEvent appends the event of the append form (on the streams page or
// a stream's) and goes to the stream's page; a refused append shows the
// form again with what to fix.
func (u *UI) appendEvent(c echo.Context) error {
	es, err := u.eventStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	f := views.AppendForm{Stream: strings.TrimSpace(c.FormValue("stream")), Type: strings.TrimSpace(c.FormValue("type")),
		Data: c.FormValue("data"), Metadata: c.FormValue("metadata"), Expected: c.FormValue("expected"), Version: strings.TrimSpace(c.FormValue("version"))}
	onStream := c.FormValue("origin") == "stream"
	if err := u.rbac.Authorize(ctx, p, rbac.Use, rbac.Of(p, "stream", f.Stream)); err != nil {
		return err
	}
	again := func(errs views.FormErrors) error {
		if onStream && f.Stream != "" {
			if errs[""] != "" && f.Expected == "exact" {
				// Offer to append after what the stream holds now.
				if info, err := es.GetStream(ctx, p.Tenant, f.Stream); err == nil {
					f.Version = strconv.FormatInt(info.Version, 10)
				}
			}
			return u.renderStream(c, http.StatusUnprocessableEntity, f.Stream, f, errs)
		}
		return u.renderStreams(c, http.StatusUnprocessableEntity, f, errs)
	}
	expected, data, metadata, errs := parseAppend(f)
	if len(errs) > 0 {
		return again(errs)
	}
	res, err := es.Append(ctx, p.Tenant, f.Stream, expected, []eventstore.EventData{{Type: f.Type, Data: data, Metadata: metadata}})
	if err != nil {
		if problem.Code(err) == problem.CodeConflict {
			pe, _ := problem.As(err)
			return again(views.FormErrors{"": "Not appended: " + pe.Message + ". Someone appended first; look at the newest events, then send yours again if it still applies."})
		}
		errs, err := formErrors(err, map[string]string{"events[0].type": "type", "events[0].data": "data", "events[0].metadata": "metadata",
			"expected_version": "version", "events": "data"})
		if err != nil {
			return err
		}
		return again(errs)
	}
	return u.redirectWithFlash(c, views.StreamPath(p.TenantSlug, f.Stream),
		"Appended "+f.Type+" to "+f.Stream+" as version "+strconv.FormatInt(res.LastVersion, 10)+".")
}

// parseAppend reads the append form: the expected version and the JSON
// bodies, with a message per field it cannot take.
func parseAppend(f views.AppendForm) (eventstore.ExpectedVersion, json.RawMessage, json.RawMessage, views.FormErrors) {
	errs := views.FormErrors{}
	if f.Stream == "" {
		errs["stream"] = "Name the stream, such as order-1001."
	}
	if f.Type == "" {
		errs["type"] = "Name the event's type, such as OrderPlaced."
	}
	expected := eventstore.Any()
	switch f.Expected {
	case "", "any":
	case "no_stream":
		expected = eventstore.NoStream()
	case "exact":
		v, err := strconv.ParseInt(f.Version, 10, 64)
		if err != nil || v < -1 {
			errs["version"] = "Give the version the stream must be at: a whole number (-1 for a stream with no events)."
		} else if v == -1 {
			expected = eventstore.NoStream()
		} else {
			expected = eventstore.Exact(v)
		}
	default:
		errs["expected"] = "Choose one of the options."
	}
	data := json.RawMessage(strings.TrimSpace(f.Data))
	switch {
	case len(data) == 0:
		errs["data"] = `Give the event's data as JSON, such as {"total": 42}.`
	case !json.Valid(data):
		errs["data"] = `This is not JSON. Objects look like {"total": 42}; text needs quotes, such as "shipped".`
	}
	var metadata json.RawMessage
	if m := strings.TrimSpace(f.Metadata); m != "" {
		if !json.Valid([]byte(m)) {
			errs["metadata"] = `This is not JSON; leave it empty, or write an object such as {"correlation_id": "abc"}.`
		} else {
			metadata = json.RawMessage(m)
		}
	}
	return expected, data, metadata, errs
}

// streamTail is the live tail of a stream's page: a subscription to the
// stream's category from just after the newest event shown, filtered to
// the stream in the browser. newest holds the stream's latest events,
// newest first. An event that the sequencer has not placed in the log yet
// (Position 0) will come through the subscription again once it is placed;
// AfterVersion makes the browser skip it.
func (u *UI) streamTail(ctx context.Context, es *eventstore.Store, p auth.Principal, name string, newest []eventstore.Event) (views.Tail, error) {
	t := views.Tail{Category: eventstore.CategoryOf(name), Stream: name, AfterVersion: -1}
	if len(newest) > 0 && newest[0].Position > 0 {
		// Later versions of the stream commit later, so they come later in the log.
		t.From = newest[0].Position + 1
		return t, nil
	}
	if len(newest) > 0 {
		t.AfterVersion = newest[0].Version
	}
	// Unplaced events will be placed after the category's current end.
	last, err := lastEvents(func(from int64, n int) ([]eventstore.Event, error) {
		return es.ReadCategory(ctx, p.Tenant, t.Category, from, n)
	}, 1)
	if err != nil {
		msg, err := readMessage(err)
		t.Err = msg
		return t, err
	}
	if len(last) > 0 {
		t.From = last[0].Position + 1
	}
	return t, nil
}

// lastEvents returns the last k events of a log (in position order) that
// read returns from a position on. The store reads logs forwards only, so
// it searches for the highest position from which a read still returns k
// events: the number of events at or after a position only falls as the
// position grows, so an exponential then a binary search find it in about
// 2·log2(positions/k) reads.
func lastEvents(read func(from int64, n int) ([]eventstore.Event, error), k int) ([]eventstore.Event, error) {
	reads := 0
	get := func(from int64) ([]eventstore.Event, error) {
		reads++
		if reads > maxSearchReads {
			return nil, problem.Errorf(problem.CodeUnavailable, "the event log changed too much while looking for its end; reload the page")
		}
		return read(from, k)
	}
	best, err := get(0)
	if err != nil || len(best) < k {
		return best, err
	}
	// Invariant: a read from lo is full (k events, best); one from hi is not.
	lo, hi := best[0].Position, int64(-1)
	for step := int64(k); hi < 0; step *= 2 {
		probe := lo + step
		if step > eventstore.End/4 || probe < lo {
			probe = eventstore.End
		}
		got, err := get(probe)
		if err != nil {
			return nil, err
		}
		if len(got) < k {
			hi = probe
		} else {
			lo, best = got[0].Position, got
		}
	}
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		got, err := get(mid)
		if err != nil {
			return nil, err
		}
		if len(got) < k {
			hi = mid
		} else {
			lo, best = got[0].Position, got
		}
	}
	return best, nil
}

// spelledOut puts the field messages of a validation error into its
// message, which is what an error page shows.
func spelledOut(err error) error {
	pe, ok := problem.As(err)
	if !ok || pe.Code != problem.CodeInvalid || len(pe.Fields) == 0 {
		return err
	}
	msgs := make([]string, 0, len(pe.Fields))
	for f, m := range pe.Fields {
		msgs = append(msgs, "The "+f+" name "+m+".")
	}
	slices.Sort(msgs)
	return &problem.Error{Code: pe.Code, Message: strings.Join(msgs, " "), Fields: pe.Fields}
}

// readMessage turns a refusal of a log read (a bad category, say) into a
// message for the page; other errors are returned.
func readMessage(err error) (string, error) {
	pe, ok := problem.As(err)
	if !ok || pe.Code == problem.CodeInternal {
		return "", err
	}
	if msg, ok := pe.Fields["category"]; ok {
		return "The category " + msg + ".", nil
	}
	return pe.Message, nil
}

func eventRow(e eventstore.Event) views.EventRow {
	return views.EventRow{Position: e.Position, Stream: e.Stream, Type: e.Type, Version: e.Version,
		CreatedAt: e.CreatedAt, Data: e.Data, Metadata: e.Metadata}
}

// baseURL is the server's public origin, for examples to copy.
func (u *UI) baseURL(c echo.Context) string {
	if u.origin != "" {
		return u.origin
	}
	return c.Scheme() + "://" + c.Request().Host
}

// appendExample is a curl command that appends an event to a stream of the
// tenant through the REST API.
func appendExample(base, tenant string) string {
	return "curl -X POST '" + base + "/api/v1/tenants/" + url.PathEscape(tenant) + "/streams/order-1/events' \\\n" +
		"  -H \"Authorization: Bearer $SWITCHBOARD_TOKEN\" \\\n" +
		"  -H 'Content-Type: application/json' \\\n" +
		`  -d '{"expected_version":"any","events":[{"type":"OrderPlaced","data":{"total":42}}]}'`
}
