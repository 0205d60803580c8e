package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/access"
	"switchboard/internal/dlq"
	"switchboard/internal/live"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// DLQSettingsBody changes a DLQ's settings; a field left out is unchanged.
type DLQSettingsBody struct {
	// Paused stops capturing it (what is on the broker stays there).
	Paused    *bool          `json:"paused,omitempty"`
	Redaction *dlq.Redaction `json:"redaction,omitempty"`
	// Kafka sets a Kafka DLQ topic's conventions (replaces them whole;
	// empty fields take the defaults).
	Kafka *dlq.KafkaSettings `json:"kafka,omitempty"`
}

// DiscardRequest discards the selected dead letters. Confirm must be true.
type DiscardRequest struct {
	dlq.Selection
	Confirm bool `json:"confirm"`
}

// DiscardResponse says how many were discarded.
type DiscardResponse struct {
	Discarded int64 `json:"discarded"`
}

// ReplayResponse answers a replay request: the job started (202), or for
// a dry run only the plan (200).
type ReplayResponse struct {
	Replay *dlq.Replay `json:"replay,omitempty"`
	Plan   dlq.Plan    `json:"plan"`
}

func (a *API) dlqRoutes() []route {
	t := v1 + "/tenants/:tenant/dlq"
	d := t + "/:ref"
	filters := []queryParam{{"since", "string", "captured at or after this RFC 3339 time"}, {"until", "string", "captured before this RFC 3339 time"},
		{"reason", "string", "the dead-letter reason (rejected, expired, maxlen, delivery_limit, or the exception's class)"},
		{"exception", "string", "the exception header's text"}, {"original", "string", "the original queue, topic, exchange or routing key"},
		{"header", "string", "name=value: a header whose text equals value"}, {"text", "string", "text found in the body"},
		{"status", "string", "statuses, comma-separated: dead, replaying, replayed, discarded"}}
	return []route{
		{Method: http.MethodGet, Path: t, Summary: "Dead-letter queues and topics (named by the catalog) with their counts", Tag: "dlq", Auth: authTenant, Response: List[dlq.DLQ]{}, Status: 200, handler: a.listDLQs},
		{Method: http.MethodGet, Path: d, Summary: "A DLQ (ref: queue:NAME or topic:NAME) with its counts, settings and capture state", Tag: "dlq", Auth: authTenant, Response: dlq.DLQ{}, Status: 200, handler: a.getDLQ},
		{Method: http.MethodPatch, Path: d, Summary: "Pause or resume capturing a DLQ, change its redaction rules, or a Kafka DLQ's conventions (original-topic header, retry topic)", Tag: "dlq", Auth: authTenant, Request: DLQSettingsBody{}, Response: dlq.DLQ{}, Status: 200, handler: a.patchDLQ},
		{Method: http.MethodGet, Path: d + "/messages", Summary: "A DLQ's captured messages, newest first, filtered; payloads redacted for those who may not read them", Tag: "dlq", Auth: authTenant,
			Response: List[dlq.Message]{}, Status: 200, Paged: true, Query: filters, handler: a.listDLQMessages},
		{Method: http.MethodGet, Path: d + "/messages/:id", Summary: "One captured message", Tag: "dlq", Auth: authTenant, Response: dlq.Message{}, Status: 200, handler: a.getDLQMessage},
		{Method: http.MethodGet, Path: d + "/records", Summary: "A Kafka DLQ topic read where it lies, by partition and offset: nothing consumed, committed or stored; payloads redacted as for messages",
			Tag: "dlq", Auth: authTenant, Response: dlq.InPlace{}, Status: 200, Query: []queryParam{{"partition", "integer", "the partition (default 0)"},
				{"offset", "integer", "the first offset to read (default: the partition's last page)"}, {"limit", "integer", "how many records (1 to 500, default 50)"}},
			handler: a.readDLQInPlace},
		{Method: http.MethodGet, Path: d + "/groups", Summary: "A DLQ's messages grouped by reason, exception or original destination, with counts", Tag: "dlq", Auth: authTenant,
			Response: List[dlq.Group]{}, Status: 200, Query: append([]queryParam{{"by", "string", "reason (default), exception or original"}}, filters...), handler: a.listDLQGroups},
		{Method: http.MethodPost, Path: d + "/discard", Summary: "Discard dead letters (by ids, filter or group; confirm: true): they stay listed, out of replays", Tag: "dlq", Auth: authTenant,
			Request: DiscardRequest{}, Response: DiscardResponse{}, Status: 200, handler: a.discardDLQ},
		{Method: http.MethodPost, Path: d + "/replays", Summary: "Replay dead letters (by ids, filter or group) to where they were going or to a target, as a job (202); dry_run answers the plan (200)", Tag: "dlq", Auth: authTenant,
			Request: dlq.ReplayRequest{}, Response: ReplayResponse{}, Status: 202, Idempotent: true, handler: a.startReplay},
		{Method: http.MethodGet, Path: d + "/replays", Summary: "A DLQ's replays, newest first: who, when, how far", Tag: "dlq", Auth: authTenant, Response: List[dlq.Replay]{}, Status: 200, handler: a.listReplays},
		{Method: http.MethodGet, Path: d + "/replays/:id", Summary: "A replay: its state and counts", Tag: "dlq", Auth: authTenant, Response: dlq.Replay{}, Status: 200, handler: a.getReplay},
		{Method: http.MethodPost, Path: d + "/replays/:id/pause", Summary: "Pause a running replay (the batch being sent is finished)", Tag: "dlq", Auth: authTenant, Response: dlq.Replay{}, Status: 200, handler: a.controlReplay("pause")},
		{Method: http.MethodPost, Path: d + "/replays/:id/resume", Summary: "Resume a paused replay", Tag: "dlq", Auth: authTenant, Response: dlq.Replay{}, Status: 200, handler: a.controlReplay("resume")},
		{Method: http.MethodPost, Path: d + "/replays/:id/cancel", Summary: "Cancel a replay: what it has not sent goes back to the DLQ", Tag: "dlq", Auth: authTenant, Response: dlq.Replay{}, Status: 200, handler: a.controlReplay("cancel")},
		{Method: http.MethodGet, Path: d + "/live", Summary: "New dead letters and replay progress as they happen (WebSocket)", Tag: "dlq", Auth: authTenantStream, Response: dlq.Event{}, Status: 101, handler: a.dlqLive},
	}
}

// loadDLQ loads the route's DLQ (without its counts) if the caller may
// do act on it.
func (a *API) loadDLQ(c echo.Context, act string) (dlq.DLQ, error) {
	return a.loadDLQWith(c, act, a.dlq.Get)
}

// loadCountedDLQ is loadDLQ with the DLQ's counts.
func (a *API) loadCountedDLQ(c echo.Context, act string) (dlq.DLQ, error) {
	return a.loadDLQWith(c, act, a.dlq.Counted)
}

func (a *API) loadDLQWith(c echo.Context, act string, get func(context.Context, uuid.UUID, string, access.Check) (dlq.DLQ, error)) (dlq.DLQ, error) {
	p := principal(c)
	d, err := get(c.Request().Context(), p.Tenant, c.Param("ref"), a.allow(c, act))
	if err != nil {
		return d, err
	}
	if a.capture != nil {
		d.Capture = a.capture.State(p.Tenant, d.Ref)
	}
	return d, nil
}

// redactForCaller applies d's redaction to ms unless the caller may read
// d's payloads.
func (a *API) redactForCaller(c echo.Context, d dlq.DLQ, ms []dlq.Message) error {
	err := a.allow(c, rbac.Payload)(c.Request().Context(), d.Object(principal(c).Tenant))
	if problem.Code(err) == problem.CodeForbidden {
		for i := range ms {
			ms[i].Redact(d.Redaction)
		}
		return nil
	}
	return err
}

func (a *API) listDLQs(c echo.Context) error {
	p := principal(c)
	ds, err := a.dlq.List(c.Request().Context(), p.Tenant, a.allow(c, rbac.Read))
	if err != nil {
		return err
	}
	if a.capture != nil {
		for i := range ds {
			ds[i].Capture = a.capture.State(p.Tenant, ds[i].Ref)
		}
	}
	return c.JSON(http.StatusOK, list(ds, ""))
}

func (a *API) getDLQ(c echo.Context) error {
	d, err := a.loadCountedDLQ(c, rbac.Read)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (a *API) patchDLQ(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Update)
	if err != nil {
		return err
	}
	var in DLQSettingsBody
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Redaction != nil {
		if err := in.Redaction.Validate(); err != nil {
			return err
		}
	}
	if in.Kafka != nil {
		if d.Kafka == nil {
			return problem.Invalid(map[string]string{"kafka": "only a Kafka DLQ topic has Kafka settings"})
		}
		if err := in.Kafka.Validate("kafka."); err != nil {
			return err
		}
	}
	ch := dlq.SettingsChange{Paused: in.Paused, Redaction: in.Redaction, Kafka: in.Kafka}
	if err := a.dlq.ChangeSettings(c.Request().Context(), principal(c).Tenant, d.Ref, ch); err != nil {
		return err
	}
	if a.capture != nil {
		a.capture.Wake()
	}
	d, err = a.loadCountedDLQ(c, rbac.Read)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (a *API) readDLQInPlace(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Read)
	if err != nil {
		return err
	}
	pos, err := dlq.ParsePosition(c.QueryParams())
	if err != nil {
		return err
	}
	if a.runner == nil {
		return problem.Errorf(problem.CodeUnavailable, "this server does not reach brokers")
	}
	page, err := a.dlq.ReadInPlace(c.Request().Context(), principal(c).Tenant, a.runner.Brokers, d, pos)
	if err != nil {
		return err
	}
	if err := a.redactForCaller(c, d, page.Records); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) listDLQMessages(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Read)
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	f, err := dlq.ParseFilter(c.QueryParams())
	if err != nil {
		return err
	}
	ms, next, err := a.dlq.Messages(c.Request().Context(), principal(c).Tenant, d.Ref, f, cursor, limit)
	if err != nil {
		return err
	}
	if err := a.redactForCaller(c, d, ms); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(ms, next))
}

func messageID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, problem.NotFound("message", c.Param("id"))
	}
	return id, nil
}

func (a *API) getDLQMessage(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Read)
	if err != nil {
		return err
	}
	id, err := messageID(c)
	if err != nil {
		return err
	}
	m, err := a.dlq.Message(c.Request().Context(), principal(c).Tenant, d.Ref, id)
	if err != nil {
		return err
	}
	one := []dlq.Message{m}
	if err := a.redactForCaller(c, d, one); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, one[0])
}

func (a *API) listDLQGroups(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Read)
	if err != nil {
		return err
	}
	by := c.QueryParam("by")
	if by == "" {
		by = dlq.ByReason
	}
	if by != dlq.ByReason && by != dlq.ByException && by != dlq.ByOriginal {
		return problem.Invalid(map[string]string{"by": "must be one of " + strings.Join(dlq.GroupKeys, ", ")})
	}
	f, err := dlq.ParseFilter(c.QueryParams())
	if err != nil {
		return err
	}
	gs, err := a.dlq.Groups(c.Request().Context(), principal(c).Tenant, d.Ref, by, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(gs, ""))
}

func (a *API) discardDLQ(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Discard)
	if err != nil {
		return err
	}
	var in DiscardRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if !in.Confirm {
		return problem.Invalid(map[string]string{"confirm": "must be true: discarding takes the messages out of every replay"})
	}
	n, err := a.dlq.Discard(c.Request().Context(), principal(c).Tenant, d.Ref, in.Selection)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, DiscardResponse{Discarded: n})
}

func (a *API) startReplay(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Replay)
	if err != nil {
		return err
	}
	var in dlq.ReplayRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p := principal(c)
	job, plan, err := a.dlq.StartReplay(c.Request().Context(), p.Tenant, d, in, a.allow(c, rbac.Replay))
	if err != nil {
		return err
	}
	if in.DryRun {
		return c.JSON(http.StatusOK, ReplayResponse{Plan: plan})
	}
	if a.runner != nil {
		a.runner.Wake()
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tenants/"+p.TenantSlug+"/dlq/"+d.Ref+"/replays/"+job.ID.String())
	return c.JSON(http.StatusAccepted, ReplayResponse{Replay: &job, Plan: plan})
}

func (a *API) listReplays(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Read)
	if err != nil {
		return err
	}
	js, err := a.dlq.Replays(c.Request().Context(), principal(c).Tenant, d.Ref, 100)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(js, ""))
}

func replayID(c echo.Context) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return uuid.Nil, problem.NotFound("replay", c.Param("id"))
	}
	return id, nil
}

func (a *API) getReplay(c echo.Context) error {
	d, err := a.loadDLQ(c, rbac.Read)
	if err != nil {
		return err
	}
	id, err := replayID(c)
	if err != nil {
		return err
	}
	j, err := a.dlq.GetReplay(c.Request().Context(), principal(c).Tenant, d.Ref, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, j)
}

func (a *API) controlReplay(action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		d, err := a.loadDLQ(c, rbac.Replay)
		if err != nil {
			return err
		}
		id, err := replayID(c)
		if err != nil {
			return err
		}
		j, err := a.dlq.ControlReplay(c.Request().Context(), principal(c).Tenant, d.Ref, id, action)
		if err != nil {
			return err
		}
		if action == "resume" && a.runner != nil {
			a.runner.Wake()
		}
		return c.JSON(http.StatusOK, j)
	}
}

// dlqTopic is the live hub topic of a DLQ.
func dlqTopic(ref string) string { return "dlq:" + ref }

// PublishDLQEvents tells the live hub of a DLQ's committed changes, in
// one round trip.
func (a *API) PublishDLQEvents(tenant uuid.UUID, ref string, evs []dlq.Event) {
	if a.live == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	notes := make([]live.Note, len(evs))
	seq := uint64(time.Now().UnixMicro())
	for i, ev := range evs {
		notes[i] = live.Note{Topic: dlqTopic(ref), Tenant: tenant, Type: ev.Type, Seq: seq + uint64(i), Data: ev}
	}
	if err := a.live.PublishAll(ctx, notes); err != nil {
		a.log.Warn("dlq: events could not be published to live streams", "dlq", ref, "err", err)
	}
}

func (a *API) dlqLive(c echo.Context) error {
	p := principal(c)
	ref := c.Param("ref")
	d, err := a.dlq.Get(c.Request().Context(), p.Tenant, ref, func(context.Context, access.Object) error { return nil })
	if err != nil {
		return err
	}
	return a.live.Serve(c, live.Stream{Kind: "dlq", Action: rbac.Read, Object: d.Object(p.Tenant),
		Open: func(ctx context.Context, _ live.Resume) (live.Source, error) {
			return a.live.Subscribe(dlqTopic(d.Ref), p.Tenant), nil
		}})
}
