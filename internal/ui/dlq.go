package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/auth"
	"switchboard/internal/dlq"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/views"
)

// registerDLQ adds the dead-letter pages.
func (u *UI) registerDLQ(t *echo.Group) {
	t.GET("/dlq", u.dlqOverview)
	t.GET("/dlq/:ref", u.dlqPage)
	t.GET("/dlq/:ref/messages/:id", u.dlqMessage)
	t.POST("/dlq/:ref/act", u.dlqAct)
	t.POST("/dlq/:ref/replays", u.dlqReplayJSON)
	t.POST("/dlq/:ref/replays/:id", u.dlqControl)
	t.POST("/dlq/:ref/settings", u.dlqSettings)
}

func (u *UI) dlqStore() (*dlq.Store, error) {
	if u.d.DLQ == nil {
		return nil, problem.Errorf(problem.CodeUnavailable, "Dead-letter capture is not running on this server.")
	}
	return u.d.DLQ, nil
}

func (u *UI) dlqOverview(c echo.Context) error {
	s, err := u.dlqStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ds, err := s.List(c.Request().Context(), p.Tenant, u.rbac.Check(p, rbac.Read))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.DLQOverviewPage(page(c, "Dead letters", views.SectionDLQ), views.DLQOverview{DLQs: ds}))
}

// dlqFilterKeys are the filter's query parameters.
var dlqFilterKeys = []string{"reason", "exception", "original", "header", "text", "status", "since", "until"}

func (u *UI) dlqPage(c echo.Context) error {
	return u.renderDLQ(c, http.StatusOK, nil)
}

// allowed says whether p may do act on d.
func (u *UI) allowed(ctx context.Context, p auth.Principal, act string, d dlq.DLQ) bool {
	return u.rbac.Check(p, act)(ctx, d.Object(p.Tenant)) == nil
}

// renderDLQ draws a DLQ's page (with plan, the result of a dry run).
func (u *UI) renderDLQ(c echo.Context, status int, plan *dlq.Plan) error {
	s, err := u.dlqStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	d, err := s.Counted(ctx, p.Tenant, c.Param("ref"), u.rbac.Check(p, rbac.Read))
	if err != nil {
		return err
	}
	q := c.QueryParams()
	v := views.DLQView{DLQ: d, Filter: map[string]string{}, Plan: plan, GroupBy: dlq.ByReason,
		CanReplay: u.allowed(ctx, p, rbac.Replay, d), CanDiscard: u.allowed(ctx, p, rbac.Discard, d), CanSettings: u.allowed(ctx, p, rbac.Update, d), Payloads: u.allowed(ctx, p, rbac.Payload, d)}
	for _, k := range dlqFilterKeys {
		v.Filter[k] = q.Get(k)
	}
	if by := q.Get("group_by"); by == dlq.ByException || by == dlq.ByOriginal {
		v.GroupBy = by
	}
	f, err := dlq.ParseFilter(q)
	if err != nil {
		v.FilterErr = problemText(err)
		f = dlq.Filter{}
		status = http.StatusUnprocessableEntity
	}
	ms, next, err := s.Messages(ctx, p.Tenant, d.Ref, f, q.Get("cursor"), 50)
	if problem.Code(err) == problem.CodeInvalid {
		return problem.Errorf(problem.CodeInvalid, "This page link is broken or stale; start again from the first page.")
	}
	if err != nil {
		return err
	}
	if !v.Payloads {
		for i := range ms {
			ms[i].Redact(d.Redaction)
		}
	}
	v.Messages, v.NextCursor, v.Cursor = ms, next, q.Get("cursor")
	if v.Groups, err = s.Groups(ctx, p.Tenant, d.Ref, v.GroupBy, f); err != nil {
		return err
	}
	if v.Replays, err = s.Replays(ctx, p.Tenant, d.Ref, 20); err != nil {
		return err
	}
	if d.Kafka != nil && q.Get("in_place") != "" {
		v.InPlace, v.InPlaceErr = u.readInPlace(c, d, v.Payloads)
	}
	if id := q.Get("replay"); id != "" {
		rid, err := uuid.Parse(id)
		if err != nil {
			return problem.NotFound("replay", id)
		}
		r, err := s.GetReplay(ctx, p.Tenant, d.Ref, rid)
		if err != nil {
			return err
		}
		v.Watch = &r
	}
	return render(c, status, views.DLQPage(page(c, d.Ref, views.SectionDLQ), v))
}

// readInPlace reads the page's partition and offset of a Kafka DLQ topic
// where it lies (redacted unless payloads); a refusal or a broker failure
// is said on the page.
func (u *UI) readInPlace(c echo.Context, d dlq.DLQ, payloads bool) (*dlq.InPlace, string) {
	if u.d.Runner == nil || u.d.Runner.Brokers == nil {
		return nil, "This server does not reach brokers."
	}
	pos, err := dlq.ParsePosition(c.QueryParams())
	if err != nil {
		return nil, problemText(err)
	}
	page, err := u.d.DLQ.ReadInPlace(c.Request().Context(), principal(c).Tenant, u.d.Runner.Brokers, d, pos)
	if err != nil {
		if _, ok := problem.As(err); ok && problem.Code(err) != problem.CodeInternal {
			return nil, problemText(err)
		}
		return nil, "The topic could not be read."
	}
	if !payloads {
		for i := range page.Records {
			page.Records[i].Redact(d.Redaction)
		}
	}
	return &page, ""
}

// dlqMessage is one message's drawer, for the page's script to show a row
// that arrived live; redacted for those who may not read payloads.
func (u *UI) dlqMessage(c echo.Context) error {
	s, err := u.dlqStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	d, err := s.Get(ctx, p.Tenant, c.Param("ref"), u.rbac.Check(p, rbac.Read))
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return problem.NotFound("message", c.Param("id"))
	}
	m, err := s.Message(ctx, p.Tenant, d.Ref, id)
	if err != nil {
		return err
	}
	v := views.DLQMessageView{Tenant: p.TenantSlug, CanReplay: u.allowed(ctx, p, rbac.Replay, d), Payloads: u.allowed(ctx, p, rbac.Payload, d)}
	if !v.Payloads {
		m.Redact(d.Redaction)
	}
	v.Message = m
	c.Response().Header().Set("Cache-Control", "no-store")
	return render(c, http.StatusOK, views.DLQMessage(v))
}

// replayAnswer is what dlqReplayJSON answers: the replay started (with
// Watch, the page that follows its progress), or for a dry run only the
// plan. It is the REST API's answer to the same request, plus Watch.
type replayAnswer struct {
	Replay *dlq.Replay `json:"replay,omitempty"`
	Plan   dlq.Plan    `json:"plan"`
	Watch  string      `json:"watch,omitempty"`
}

// dlqReplayJSON is the REST API's replay request (dlq.ReplayRequest) for
// the page's script, which has the session, not a bearer token: the
// drawer's "Edit and replay" posts one message with its edits and target,
// first as a dry run (the preview), then for real. Errors are problem+json
// with the fields they name, for the script to show next to its inputs.
func (u *UI) dlqReplayJSON(c echo.Context) error {
	s, err := u.dlqStore()
	if err != nil {
		return jsonProblem(c, err)
	}
	p := principal(c)
	ctx := c.Request().Context()
	d, err := s.Get(ctx, p.Tenant, c.Param("ref"), u.rbac.Check(p, rbac.Replay))
	if err != nil {
		return jsonProblem(c, err)
	}
	var in dlq.ReplayRequest
	if err := decodeJSONBody(c, &in); err != nil {
		return jsonProblem(c, err)
	}
	job, plan, err := s.StartReplay(ctx, p.Tenant, d, in, u.rbac.Check(p, rbac.Replay))
	if err != nil {
		return jsonProblem(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if in.DryRun {
		return c.JSON(http.StatusOK, replayAnswer{Plan: plan})
	}
	if u.d.Runner != nil {
		u.d.Runner.Wake()
	}
	return c.JSON(http.StatusAccepted, replayAnswer{Replay: &job, Plan: plan, Watch: views.DLQPath(p.TenantSlug, d.Ref) + "?replay=" + job.ID.String()})
}

// problemText is an error's message for a person, with its fields.
func problemText(err error) string {
	pe, ok := problem.As(err)
	if !ok {
		return "Something went wrong."
	}
	msg := pe.Message
	for k, v := range pe.Fields {
		msg += " " + k + ": " + v + "."
	}
	return msg
}

// dlqAct runs the action of the page's form on the selected messages, or
// on every dead message matching the page's filter.
func (u *UI) dlqAct(c echo.Context) error {
	s, err := u.dlqStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	ref := c.Param("ref")
	back := views.DLQPath(p.TenantSlug, ref)
	form, err := c.FormParams()
	if err != nil {
		return problem.Errorf(problem.CodeInvalid, "the form could not be read")
	}
	sel, msg := selectionOf(form)
	if msg != "" {
		return u.redirectWithFlash(c, back, msg)
	}
	switch action := form.Get("action"); action {
	case "discard":
		d, err := s.Get(ctx, p.Tenant, ref, u.rbac.Check(p, rbac.Discard))
		if err != nil {
			return err
		}
		if form.Get("confirm") != "true" {
			return u.redirectWithFlash(c, back, "Tick the confirmation to discard: discarded messages leave every replay.")
		}
		n, err := s.Discard(ctx, p.Tenant, d.Ref, sel)
		if err != nil {
			return u.flashProblem(c, back, err)
		}
		return u.redirectWithFlash(c, back, strconv.FormatInt(n, 10)+" messages discarded.")
	case "replay", "dry_run":
		d, err := s.Get(ctx, p.Tenant, ref, u.rbac.Check(p, rbac.Replay))
		if err != nil {
			return err
		}
		req := dlq.ReplayRequest{Selection: sel, DryRun: action == "dry_run"}
		for name, dst := range map[string]*int{"rate_per_second": &req.RatePerSecond, "batch_size": &req.BatchSize} {
			if v := strings.TrimSpace(form.Get(name)); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return u.redirectWithFlash(c, back, strings.ReplaceAll(name, "_", " ")+" must be a whole number.")
				}
				*dst = n
			}
		}
		if q := strings.TrimSpace(form.Get("target_queue")); q != "" {
			req.Target = &dlq.Target{Queue: q}
		} else if t, g := strings.TrimSpace(form.Get("target_topic")), strings.TrimSpace(form.Get("consumer_group")); t != "" || g != "" {
			req.Target = &dlq.Target{Topic: t, ConsumerGroup: g}
		}
		job, plan, err := s.StartReplay(ctx, p.Tenant, d, req, u.rbac.Check(p, rbac.Replay))
		if err != nil {
			return u.flashProblem(c, back, err)
		}
		if req.DryRun {
			return u.renderDLQ(c, http.StatusOK, &plan)
		}
		if u.d.Runner != nil {
			u.d.Runner.Wake()
		}
		return c.Redirect(http.StatusSeeOther, back+"?replay="+job.ID.String())
	default:
		return u.redirectWithFlash(c, back, "Choose replay, dry run or discard.")
	}
}

// selectionOf reads what the page's form selects: the ticked messages,
// one ticked group (of the page's grouping), or every dead message matching
// the page's filter. msg, when not empty, tells the user what to fix.
func selectionOf(form url.Values) (sel dlq.Selection, msg string) {
	n := 0
	for _, s := range form["id"] {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return sel, "A selected message is not one of this DLQ's; reload the page and select again."
		}
		sel.MessageIDs = append(sel.MessageIDs, id)
	}
	if len(sel.MessageIDs) > 0 {
		n++
	}
	switch groups := form["group"]; {
	case len(groups) > 1:
		return sel, "Select one group at a time."
	case len(groups) == 1:
		key, ok := strings.CutPrefix(groups[0], "=")
		by := form.Get("group_by")
		if !ok || !slices.Contains(dlq.GroupKeys, by) {
			return sel, "The group could not be read; reload the page and select it again."
		}
		sel.Group = &dlq.GroupKey{By: by, Key: key}
		n++
	}
	if form.Get("all") == "true" {
		fq, err := url.ParseQuery(form.Get("filter"))
		if err != nil {
			return sel, "The filter could not be read; filter again."
		}
		f, err := dlq.ParseFilter(fq)
		if err != nil {
			return sel, problemText(err)
		}
		f.Status = []string{dlq.Dead}
		sel.Filter = &f
		n++
	}
	switch {
	case n == 0:
		return sel, "Select messages or a group first, or tick “every message matching the filter”."
	case n > 1:
		return sel, "Choose one of: the ticked messages, a group, or every message matching the filter."
	}
	return sel, ""
}

// flashProblem shows a refusal of the user's input on the page they came
// from; anything else is an error page.
func (u *UI) flashProblem(c echo.Context, back string, err error) error {
	switch problem.Code(err) {
	case problem.CodeInvalid, problem.CodeUnprocessable, problem.CodeConflict:
		return u.redirectWithFlash(c, back, problemText(err))
	}
	return err
}

// dlqControl pauses, resumes or cancels a replay.
func (u *UI) dlqControl(c echo.Context) error {
	s, err := u.dlqStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	d, err := s.Get(ctx, p.Tenant, c.Param("ref"), u.rbac.Check(p, rbac.Replay))
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return problem.NotFound("replay", c.Param("id"))
	}
	back := views.DLQPath(p.TenantSlug, d.Ref) + "?replay=" + id.String()
	action := c.FormValue("action")
	if action != "pause" && action != "resume" && action != "cancel" {
		return u.redirectWithFlash(c, back, "Choose pause, resume or cancel.")
	}
	if _, err := s.ControlReplay(ctx, p.Tenant, d.Ref, id, action); err != nil {
		return u.flashProblem(c, back, err)
	}
	if action == "resume" && u.d.Runner != nil {
		u.d.Runner.Wake()
	}
	return c.Redirect(http.StatusSeeOther, back)
}

// dlqSettings pauses or resumes capture and sets the redaction rules.
func (u *UI) dlqSettings(c echo.Context) error {
	s, err := u.dlqStore()
	if err != nil {
		return err
	}
	p := principal(c)
	ctx := c.Request().Context()
	d, err := s.Get(ctx, p.Tenant, c.Param("ref"), u.rbac.Check(p, rbac.Update))
	if err != nil {
		return err
	}
	back := views.DLQPath(p.TenantSlug, d.Ref)
	list := func(v string) []string {
		out := []string{}
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	paused := c.FormValue("paused") == "true"
	red := dlq.Redaction{Headers: list(c.FormValue("redact_headers")), JSONPaths: list(c.FormValue("redact_paths"))}
	if err := red.Validate(); err != nil {
		return u.redirectWithFlash(c, back, problemText(err))
	}
	ch := dlq.SettingsChange{Paused: &paused, Redaction: &red}
	if d.Kafka != nil {
		k := dlq.KafkaSettings{OriginalTopicHeader: strings.TrimSpace(c.FormValue("original_topic_header")), RetryTopic: strings.TrimSpace(c.FormValue("retry_topic"))}
		if err := k.Validate(""); err != nil {
			return u.redirectWithFlash(c, back, problemText(err))
		}
		ch.Kafka = &k
	}
	if err := s.ChangeSettings(ctx, p.Tenant, d.Ref, ch); err != nil {
		return err
	}
	if u.d.Capture != nil {
		u.d.Capture.Wake()
	}
	return u.redirectWithFlash(c, back, "Settings saved.")
}
