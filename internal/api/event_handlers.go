package api

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/eventstore"
	"switchboard/internal/live"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// EventInput is one event of an append.
type EventInput struct {
	ID       *uuid.UUID      `json:"id,omitempty"` // optional; set it to make retries idempotent
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// AppendRequest appends events to a stream if it is at the expected
// version: "any" (default), "no_stream", "stream_exists" or a number.
type AppendRequest struct {
	ExpectedVersion *eventstore.ExpectedVersion `json:"expected_version,omitempty"`
	Events          []EventInput                `json:"events"`
}

// AppendResponse says where an append put its events: the stream versions
// at once. Position is the log position of the last event, which the log
// hands out moments after the commit: it is 0 unless the request asked to
// wait for it (?await=position) or the append was a repeat of one already
// positioned. With ?await=position it is 0 only when the log is held back
// (a long transaction elsewhere) past the wait: read the events back later
// to learn it.
type AppendResponse struct {
	FirstVersion int64       `json:"first_version"`
	LastVersion  int64       `json:"last_version"`
	Position     int64       `json:"position"`
	EventIDs     []uuid.UUID `json:"event_ids"`
	Duplicate    bool        `json:"duplicate"`
}

// positionWait bounds how long an append's answer waits for its position
// when the request asks for it (?await=position).
const positionWait = time.Second

// SnapshotRequest saves a stream's state at a version.
type SnapshotRequest struct {
	Version int64           `json:"version"`
	Data    json.RawMessage `json:"data"`
}

// eventRoutes are the routes of the event store.
func (a *API) eventRoutes() []route {
	t := v1 + "/tenants/:tenant"
	return []route{
		{Method: http.MethodPost, Path: t + "/streams/:stream/events", Summary: "Append events to a stream at an expected version (409 with the current version otherwise); idempotent by event id. Answers with the stream versions at once; ?await=position also waits (up to 1 s) for the log position", Tag: "events", Auth: authTenant, Request: AppendRequest{}, Response: AppendResponse{}, Status: 201, Idempotent: true, Query: []queryParam{{"await", "string", "position: wait (up to 1 s) for the last event's log position and return it; by default the answer does not wait and position is 0"}}, handler: a.appendEvents},
		{Method: http.MethodGet, Path: t + "/streams/:stream/events", Summary: "Read a stream from a version (from, direction=forward|backward, limit); next_cursor is the next from", Tag: "events", Auth: authTenant, Response: List[eventstore.Event]{}, Status: 200, Paged: true, Query: []queryParam{{"from", "integer", "the first version to read (default: the start, or the end backwards)"}, {"direction", "string", "forward (default) or backward"}}, handler: a.readStream},
		{Method: http.MethodGet, Path: t + "/streams", Summary: "List streams with their last version and last write time", Tag: "events", Auth: authTenant, Response: List[eventstore.StreamInfo]{}, Status: 200, Paged: true, handler: a.listStreams},
		{Method: http.MethodDelete, Path: t + "/streams/:stream", Summary: "Delete a stream (its name can be reused); ?hard=true tombstones it (never writable again)", Tag: "events", Auth: authTenant, Status: 204, Query: []queryParam{{"hard", "boolean", "true tombstones the stream: its name can never be written again"}}, handler: a.deleteStream},
		{Method: http.MethodGet, Path: t + "/events", Summary: "Read the tenant's log in commit order from a position (from_position, category, limit)", Tag: "events", Auth: authTenant, Response: List[eventstore.Event]{}, Status: 200, Paged: true, Query: []queryParam{{"from_position", "integer", "the first log position to read (default 0)"}, {"category", "string", "only streams of this category (the part of the name before the first -)"}}, handler: a.readLog},
		{Method: http.MethodGet, Path: t + "/subscriptions/live", Summary: "WebSocket: every event from from_position on (optionally of one category), catch-up then live, in log order", Tag: "events", Auth: authTenantStream, Response: eventstore.Event{}, Status: 101, Query: []queryParam{{"from_position", "integer", "the first log position to send (default 0)"}, {"category", "string", "only streams of this category"}}, handler: a.subscribeLive},
		{Method: http.MethodPut, Path: t + "/streams/:stream/snapshot", Summary: "Save a snapshot of a stream at a version", Tag: "events", Auth: authTenant, Request: SnapshotRequest{}, Status: 204, handler: a.saveSnapshot},
		{Method: http.MethodGet, Path: t + "/streams/:stream/snapshot", Summary: "The latest snapshot of a stream", Tag: "events", Auth: authTenant, Response: eventstore.Snapshot{}, Status: 200, handler: a.loadSnapshot},
		{Method: http.MethodPut, Path: t + "/streams/:stream/metadata", Summary: "Set a stream's max_count, max_age (seconds) and truncate_before", Tag: "events", Auth: authTenant, Request: eventstore.StreamMetadata{}, Response: eventstore.StreamMetadata{}, Status: 200, handler: a.setStreamMetadata},
		{Method: http.MethodGet, Path: t + "/streams/:stream/metadata", Summary: "A stream's metadata", Tag: "events", Auth: authTenant, Response: eventstore.StreamMetadata{}, Status: 200, handler: a.getStreamMetadata},
	}
}

// streamParam is the :stream path parameter.
func streamParam(c echo.Context) (string, error) { return c.Param("stream"), nil }

// authorizeStream checks act on the :stream of the request and returns its name.
func (a *API) authorizeStream(c echo.Context, act string) (string, error) {
	if a.events == nil {
		return "", problem.Errorf(problem.CodeUnavailable, "the event store is not running on this server")
	}
	name, err := streamParam(c)
	if err != nil {
		return "", err
	}
	p := principal(c)
	return name, a.rbac.Authorize(c.Request().Context(), p, act, rbac.Of(p, "stream", name))
}

func (a *API) appendEvents(c echo.Context) error {
	stream, err := a.authorizeStream(c, rbac.Use)
	if err != nil {
		return err
	}
	var await bool
	switch c.QueryParam("await") {
	case "":
	case "position":
		await = true
	default:
		return problem.Invalid(map[string]string{"await": `must be "position" or absent`})
	}
	var in AppendRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	expected := eventstore.Any()
	if in.ExpectedVersion != nil {
		expected = *in.ExpectedVersion
	}
	events := make([]eventstore.EventData, len(in.Events))
	for i, e := range in.Events {
		events[i] = eventstore.EventData{Type: e.Type, Data: e.Data, Metadata: e.Metadata}
		if e.ID != nil {
			events[i].ID = *e.ID
		}
	}
	ctx := c.Request().Context()
	res, err := a.events.Append(ctx, principal(c).Tenant, stream, expected, events)
	if err != nil {
		return err
	}
	out := AppendResponse{FirstVersion: res.FirstVersion, LastVersion: res.LastVersion, Position: res.Position, EventIDs: res.EventIDs, Duplicate: res.Duplicate}
	if await && out.Position == 0 && len(res.EventIDs) > 0 {
		wctx, cancel := context.WithTimeout(ctx, positionWait)
		pos, err := a.events.AwaitPosition(wctx, principal(c).Tenant, res.EventIDs[len(res.EventIDs)-1])
		cancel()
		if err == nil {
			out.Position = pos
		} else if ctx.Err() == nil {
			a.log.WarnContext(ctx, "append answered without its position", "err", err)
		}
	}
	return c.JSON(http.StatusCreated, out)
}

// int64Param reads an optional non-negative integer query parameter.
func int64Param(c echo.Context, name string, def int64) (int64, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, problem.Invalid(map[string]string{name: "must be a whole number, 0 or more"})
	}
	return v, nil
}

func (a *API) readStream(c echo.Context) error {
	stream, err := a.authorizeStream(c, rbac.Read)
	if err != nil {
		return err
	}
	dir, err := eventstore.ParseDirection(c.QueryParam("direction"))
	if err != nil {
		return err
	}
	def := int64(0)
	if dir == eventstore.Backward {
		def = eventstore.End
	}
	fromName := "from"
	if c.QueryParam("from") == "" && c.QueryParam("cursor") != "" {
		fromName = "cursor"
	}
	from, err := int64Param(c, fromName, def)
	if err != nil {
		return err
	}
	limit, _, err := pageParams(c)
	if err != nil {
		return err
	}
	events, err := a.events.ReadStream(c.Request().Context(), principal(c).Tenant, stream, from, dir, limit)
	if err != nil {
		return err
	}
	next := ""
	if n := len(events); n == limit {
		last := events[n-1].Version
		if dir == eventstore.Forward {
			next = strconv.FormatInt(last+1, 10)
		} else if last > 0 {
			next = strconv.FormatInt(last-1, 10)
		}
	}
	return c.JSON(http.StatusOK, list(events, next))
}

func (a *API) readLog(c echo.Context) error {
	p := principal(c)
	if a.events == nil {
		return problem.Errorf(problem.CodeUnavailable, "the event store is not running on this server")
	}
	if err := a.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, "stream", "")); err != nil {
		return err
	}
	fromName := "from_position"
	if c.QueryParam(fromName) == "" && c.QueryParam("cursor") != "" {
		fromName = "cursor"
	}
	from, err := int64Param(c, fromName, 0)
	if err != nil {
		return err
	}
	limit, _, err := pageParams(c)
	if err != nil {
		return err
	}
	var events []eventstore.Event
	if cat := c.QueryParam("category"); cat != "" {
		events, err = a.events.ReadCategory(c.Request().Context(), p.Tenant, cat, from, limit)
	} else {
		events, err = a.events.ReadAll(c.Request().Context(), p.Tenant, from, limit)
	}
	if err != nil {
		return err
	}
	next := ""
	if n := len(events); n == limit {
		next = strconv.FormatInt(events[n-1].Position+1, 10)
	}
	return c.JSON(http.StatusOK, list(events, next))
}

func (a *API) subscribeLive(c echo.Context) error {
	p := principal(c)
	if a.events == nil {
		return problem.Errorf(problem.CodeUnavailable, "the event store is not running on this server")
	}
	from, err := int64Param(c, "from_position", 0)
	if err != nil {
		return err
	}
	category := c.QueryParam("category")
	return a.live.Serve(c, live.Stream{Kind: "events", Action: rbac.Read, Object: rbac.Of(p, "stream", ""),
		Open: func(ctx context.Context, r live.Resume) (live.Source, error) {
			start := from
			if r.Set {
				if r.After >= math.MaxInt64 {
					return live.Source{}, problem.Invalid(map[string]string{"resume_after": "is past the end of any log"})
				}
				start = int64(r.After) + 1
			}
			// Converted on the store's side: a subscriber at the head gets
			// its message straight from the shared read, encoded once for
			// every subscriber the event reaches.
			sub, msgs, err := eventstore.SubscribeTo(a.events, ctx, p.Tenant, start, category, func(e eventstore.Event) (live.Message, error) {
				b, err := e.JSON()
				if err != nil {
					return live.Message{}, err
				}
				return live.Message{Type: "event", Data: live.Encoded(b), Seq: uint64(e.Position), At: time.Now()}, nil
			})
			if err != nil {
				return live.Source{}, err
			}
			src := live.Source{C: msgs, Err: sub.Err, Close: sub.Close}
			src.Resumed = r.Set
			return src, nil
		}})
}

func (a *API) listStreams(c echo.Context) error {
	if a.events == nil {
		return problem.Errorf(problem.CodeUnavailable, "the event store is not running on this server")
	}
	return listOf(a, "stream", a.events.ListStreams)(c)
}

func (a *API) deleteStream(c echo.Context) error {
	stream, err := a.authorizeStream(c, rbac.Delete)
	if err != nil {
		return err
	}
	hard, err := strconv.ParseBool(defaultStr(c.QueryParam("hard"), "false"))
	if err != nil {
		return problem.Invalid(map[string]string{"hard": "must be true or false"})
	}
	if hard {
		err = a.events.TombstoneStream(c.Request().Context(), principal(c).Tenant, stream)
	} else {
		err = a.events.DeleteStream(c.Request().Context(), principal(c).Tenant, stream)
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func defaultStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *API) saveSnapshot(c echo.Context) error {
	stream, err := a.authorizeStream(c, rbac.Use)
	if err != nil {
		return err
	}
	var in SnapshotRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := a.events.SaveSnapshot(c.Request().Context(), principal(c).Tenant, stream, in.Version, in.Data); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) loadSnapshot(c echo.Context) error {
	stream, err := a.authorizeStream(c, rbac.Read)
	if err != nil {
		return err
	}
	snap, err := a.events.LoadSnapshot(c.Request().Context(), principal(c).Tenant, stream)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, snap)
}

func (a *API) setStreamMetadata(c echo.Context) error {
	stream, err := a.authorizeStream(c, rbac.Use)
	if err != nil {
		return err
	}
	var in eventstore.StreamMetadata
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	m, err := a.events.SetMetadata(c.Request().Context(), principal(c).Tenant, stream, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

func (a *API) getStreamMetadata(c echo.Context) error {
	stream, err := a.authorizeStream(c, rbac.Read)
	if err != nil {
		return err
	}
	m, err := a.events.GetMetadata(c.Request().Context(), principal(c).Tenant, stream)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}
