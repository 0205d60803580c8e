package dlq

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/catalog"
	"switchboard/internal/problem"
)

// Replay states.
const (
	Running   = "running"
	Paused    = "paused"
	Done      = "done"
	Cancelled = "cancelled"
	Failed    = "failed"
)

// ReplayRequest asks for a replay of a DLQ's messages.
type ReplayRequest struct {
	Selection
	// Target overrides each message's original destination.
	Target *Target `json:"target,omitempty"`
	// RatePerSecond bounds how fast messages are published (default 200).
	RatePerSecond int `json:"rate_per_second,omitempty"`
	// BatchSize is how many are published per confirmation round (default 50).
	BatchSize int `json:"batch_size,omitempty"`
	// DryRun answers what would go where, and replays nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Edit changes the one selected message before it is replayed.
	Edit *Edit `json:"edit,omitempty"`
}

// Target is where to replay to: an exchange (with a routing key; the
// message's own when empty), a queue (through the default exchange), or a
// Kafka topic. For a Kafka DLQ, ConsumerGroup replays to that group only:
// to its retry topic (KafkaSettings.RetryTopic) of the target topic or,
// without one, of each message's original topic.
type Target struct {
	Exchange      *string `json:"exchange,omitempty"`
	RoutingKey    string  `json:"routing_key,omitempty"`
	Queue         string  `json:"queue,omitempty"`
	Topic         string  `json:"topic,omitempty"`
	ConsumerGroup string  `json:"consumer_group,omitempty"`
}

// Edit changes a message before its replay: its body (text, or base64 when
// BodyEncoding is "base64"), headers set, and headers removed.
type Edit struct {
	Body          *string  `json:"body,omitempty"`
	BodyEncoding  string   `json:"body_encoding,omitempty"`
	Headers       Headers  `json:"headers,omitempty"`
	RemoveHeaders []string `json:"remove_headers,omitempty"`
}

// Limits of a replay request.
const (
	DefaultRate  = 200
	MaxRate      = 50_000
	DefaultBatch = 50
	MaxBatch     = 1000
)

// Replay is a replay job.
type Replay struct {
	ID         uuid.UUID     `json:"id"`
	DLQ        string        `json:"dlq"`
	State      string        `json:"state"`
	Request    ReplayRequest `json:"request"`
	CreatedBy  string        `json:"created_by"`
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
	FinishedAt *time.Time    `json:"finished_at,omitempty"`
	Counts     ReplayCounts  `json:"counts"`
	// Note says why it paused itself, failed or stopped.
	Note string `json:"note,omitempty"`
}

// ReplayCounts are a replay's figures. Total = confirmed + failed +
// skipped + what is still to go.
type ReplayCounts struct {
	Total     int `json:"total"`
	Published int `json:"published"`
	Confirmed int `json:"confirmed"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"`
	// Returned counts replayed messages that dead-lettered again.
	Returned int `json:"returned"`
}

// Plan is what a replay would do: how many go where, and why the others
// are skipped.
type Plan struct {
	Total        int           `json:"total"`
	Replay       int           `json:"replay"`
	Destinations []PlannedDest `json:"destinations"`
	Skipped      []Skip        `json:"skipped"`
}

// PlannedDest is one destination of a plan.
type PlannedDest struct {
	Destination Destination `json:"destination"`
	Count       int         `json:"count"`
}

// Skip is a message a replay leaves out, and why.
type Skip struct {
	MessageID int64  `json:"message_id"`
	Reason    string `json:"reason"`
}

// Validate checks r for a DLQ of kind (queue or topic).
func (r *ReplayRequest) Validate(kind string) error {
	if err := r.Selection.Validate(); err != nil {
		return err
	}
	bad := problem.Fields{}
	if r.RatePerSecond == 0 {
		r.RatePerSecond = DefaultRate
	}
	if r.BatchSize == 0 {
		r.BatchSize = DefaultBatch
	}
	bad.Check(r.RatePerSecond >= 1 && r.RatePerSecond <= MaxRate, "rate_per_second", fmt.Sprintf("must be 1 to %d", MaxRate))
	bad.Check(r.BatchSize >= 1 && r.BatchSize <= MaxBatch, "batch_size", fmt.Sprintf("must be 1 to %d", MaxBatch))
	if t := r.Target; t != nil {
		n := 0
		if t.Exchange != nil {
			n++
		}
		if t.Queue != "" {
			n++
		}
		if t.Topic != "" {
			n++
		}
		if t.ConsumerGroup != "" {
			bad.Check(kind == catalog.KindTopic, "target.consumer_group", "only a Kafka DLQ replays to one consumer group")
			bad.Check(groupName.MatchString(t.ConsumerGroup), "target.consumer_group", "must be a consumer group's name: letters, digits, '.', '_', '-', at most 200")
			bad.Check(n == 0 || (n == 1 && t.Topic != ""), "target", "with consumer_group give a topic or nothing")
		} else {
			bad.Check(n == 1, "target", "give exactly one of exchange, queue or topic")
		}
		if kind == catalog.KindQueue {
			bad.Check(t.Topic == "", "target.topic", "a RabbitMQ DLQ replays to an exchange or a queue")
		} else {
			bad.Check(t.Topic != "" || n != 1, "target", "a Kafka DLQ replays to a topic")
		}
		for name, s := range map[string]string{"target.routing_key": t.RoutingKey, "target.queue": t.Queue, "target.topic": t.Topic} {
			bad.Check(len(s) <= 255 && utf8.ValidString(s) && !strings.ContainsRune(s, 0), name, "must be UTF-8 without NUL, at most 255 bytes")
		}
		if t.Exchange != nil {
			bad.Check(len(*t.Exchange) <= 255 && utf8.ValidString(*t.Exchange) && !strings.ContainsRune(*t.Exchange, 0), "target.exchange", "must be UTF-8 without NUL, at most 255 bytes")
		}
	}
	if e := r.Edit; e != nil {
		bad.Check(len(r.MessageIDs) == 1, "edit", "edits apply to one message: select exactly one message id")
		bad.Check(e.BodyEncoding == "" || e.BodyEncoding == "text" || e.BodyEncoding == "base64", "edit.body_encoding", "must be text or base64")
		if e.Body != nil && e.BodyEncoding == "base64" {
			_, err := base64.StdEncoding.DecodeString(*e.Body)
			bad.Check(err == nil, "edit.body", "is not base64")
		}
		for k, v := range e.Headers {
			_, err := v.Decode()
			bad.Check(err == nil && k != "", "edit.headers."+k, fmt.Sprint("is not a header value: ", err))
			bad.Check(!strings.HasPrefix(k, "x-switchboard-"), "edit.headers."+k, "x-switchboard- headers are set by the replay")
		}
	}
	return bad.Err()
}

// destination works out where m goes: the target, else where it was going
// (its metadata), else the one queue or topic the catalog says dead-letters
// into d. ok is false, with a reason, when there is nowhere.
func destination(d DLQ, kind string, t *Target, m *Message) (Destination, string) {
	if t != nil && t.ConsumerGroup != "" {
		base := Destination{Topic: t.Topic}
		if base.Topic == "" {
			var why string
			if base, why = destination(d, kind, nil, m); why != "" {
				return base, why
			}
		}
		k := KafkaSettings{}
		if d.Kafka != nil {
			k = *d.Kafka
		}
		topic, err := k.retryTopic(base.Topic, t.ConsumerGroup)
		if err != nil {
			return Destination{}, err.Error()
		}
		return Destination{Topic: topic, ConsumerGroup: t.ConsumerGroup, GroupTopic: base.Topic}, ""
	}
	if t != nil {
		switch {
		case t.Topic != "":
			return Destination{Topic: t.Topic}, ""
		case t.Queue != "":
			return Destination{Exchange: "", RoutingKey: t.Queue, Queue: t.Queue}, ""
		default:
			key := t.RoutingKey
			if key == "" {
				key = m.Original.RoutingKey
			}
			return Destination{Exchange: *t.Exchange, RoutingKey: key}, ""
		}
	}
	if kind == catalog.KindTopic {
		if m.Original.Topic != "" {
			return Destination{Topic: m.Original.Topic}, ""
		}
		if len(d.DeadLettersFor) == 1 && strings.HasPrefix(d.DeadLettersFor[0], "topic:") {
			return Destination{Topic: strings.TrimPrefix(d.DeadLettersFor[0], "topic:")}, ""
		}
		if _, name, _ := ParseRef(d.Ref); originalFromName(name) != "" {
			return Destination{Topic: originalFromName(name)}, ""
		}
		return Destination{}, "no original topic in its headers, the catalog names no single topic dead-lettering here, and the DLQ's name has no known suffix (.DLT, -dlt, .dlq, -dlq)"
	}
	if m.Original.Exchange != "" || m.Original.RoutingKey != "" {
		return Destination{Exchange: m.Original.Exchange, RoutingKey: m.Original.RoutingKey, Queue: m.Original.Queue}, ""
	}
	if m.Original.Queue != "" {
		return Destination{RoutingKey: m.Original.Queue, Queue: m.Original.Queue}, ""
	}
	if len(d.DeadLettersFor) == 1 && strings.HasPrefix(d.DeadLettersFor[0], "queue:") {
		q := strings.TrimPrefix(d.DeadLettersFor[0], "queue:")
		return Destination{RoutingKey: q, Queue: q}, ""
	}
	return Destination{}, "no x-death header, and the catalog names no single queue dead-lettering here"
}

// loopsBack says dest leads straight back into d.
func loopsBack(d DLQ, dest Destination) bool {
	_, name, _ := ParseRef(d.Ref)
	if strings.HasPrefix(d.Ref, "topic:") {
		return dest.Topic == name
	}
	return dest.Queue == name || (dest.Exchange == "" && dest.RoutingKey == name)
}

// targetObject is what a replay's destination is, for authorization: the
// catalog's queue or topic when it holds it (its team and labels decide),
// else a bare queue or topic of that name (an exchange: a queue named
// exchange:NAME).
func (s *Store) targetObject(ctx context.Context, tenant uuid.UUID, dest Destination) (access.Object, error) {
	kind, name := catalog.KindQueue, dest.Queue
	switch {
	case dest.GroupTopic != "": // a group's retry topic: decided on the topic it retries
		kind, name = catalog.KindTopic, dest.GroupTopic
	case dest.Topic != "":
		kind, name = catalog.KindTopic, dest.Topic
	}
	if name == "" {
		return access.Object{Tenant: tenant, Kind: catalog.KindQueue, Name: "exchange:" + dest.Exchange}, nil
	}
	all := func(context.Context, access.Object) error { return nil }
	e, err := s.catalog.Get(ctx, tenant, catalog.Ref{Kind: kind, Namespace: catalog.DefaultNamespace, Name: name}, all)
	if problem.Code(err) == problem.CodeNotFound {
		return access.Object{Tenant: tenant, Kind: kind, Name: kind + ":" + name}, nil
	}
	if err != nil {
		return access.Object{}, err
	}
	return e.Object(tenant), nil
}

// planned is one selected message and where it goes.
type planned struct {
	id   int64
	dest Destination
	skip string
}

// plan reads the selection of d (messages still dead, no replay holding
// them) and works out each one's destination. The caller holds
// lockSelections.
func (s *Store) plan(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, d DLQ, req *ReplayRequest) ([]planned, error) {
	kind, _, _ := ParseRef(d.Ref)
	ms, err := takeDead(ctx, tx, tenant, d.Ref, req.Selection, `id, held, truncated, original_exchange, original_routing_key, original_queue, original_topic`,
		func(row pgx.CollectableRow) (Message, error) {
			var m Message
			err := row.Scan(&m.ID, &m.Held, &m.Truncated, &m.Original.Exchange, &m.Original.RoutingKey, &m.Original.Queue, &m.Original.Topic)
			return m, err
		}, func(m Message) int64 { return m.ID })
	if err != nil {
		return nil, err
	}
	out := make([]planned, len(ms))
	for i := range ms {
		m, p := &ms[i], &out[i]
		p.id = m.ID
		switch {
		case m.Held:
			p.skip = fmt.Sprintf("held back by the loop guard: replayed %d times and dead-lettered again", s.MaxReplays)
		case m.Truncated:
			p.skip = "its body was over the capture's size cap; only part of it is stored"
		default:
			p.dest, p.skip = destination(d, kind, req.Target, m)
			if p.skip == "" && loopsBack(d, p.dest) {
				p.skip = "its destination is this DLQ itself"
			}
		}
	}
	return out, nil
}

func summarize(ps []planned) Plan {
	pl := Plan{Total: len(ps), Destinations: []PlannedDest{}, Skipped: []Skip{}}
	idx := map[Destination]int{}
	for _, p := range ps {
		if p.skip != "" {
			if len(pl.Skipped) < 100 {
				pl.Skipped = append(pl.Skipped, Skip{MessageID: p.id, Reason: p.skip})
			}
			continue
		}
		pl.Replay++
		i, ok := idx[p.dest]
		if !ok {
			i = len(pl.Destinations)
			idx[p.dest] = i
			pl.Destinations = append(pl.Destinations, PlannedDest{Destination: p.dest})
		}
		pl.Destinations[i].Count++
	}
	return pl
}

// StartReplay plans a replay of d's selected messages and, unless it is a
// dry run, starts it: an item per message claims it (it is replaying, and
// no other replay or discard takes it) and a runner publishes them. allow decides the replay on d
// (the caller's check) and on each destination: the catalog's queue or
// topic, its team and labels, when the catalog holds it.
func (s *Store) StartReplay(ctx context.Context, tenant uuid.UUID, d DLQ, req ReplayRequest, allow access.Check) (Replay, Plan, error) {
	kind, _, _ := ParseRef(d.Ref)
	if err := req.Validate(kind); err != nil {
		return Replay{}, Plan{}, err
	}
	if req.Target != nil {
		dest, _ := destination(d, kind, req.Target, &Message{})
		if loopsBack(d, dest) {
			return Replay{}, Plan{}, &problem.Error{Code: problem.CodeUnprocessable, Message: "the target is this DLQ itself: the messages would come straight back",
				Fields: map[string]string{"target": "is this DLQ"}}
		}
	}
	var job Replay
	var pl Plan
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		if err := lockSelections(ctx, tx, tenant, d.Ref); err != nil {
			return err
		}
		ps, err := s.plan(ctx, tx, tenant, d, &req)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return problem.Errorf(problem.CodeUnprocessable, "the selection holds no dead message of %s", d.Ref)
		}
		if req.Edit != nil && ps[0].skip == "" {
			// An edit the message cannot take is the request's fault: say
			// so now, not when the job publishes it.
			m, err := scanMessage(tx.QueryRow(ctx, `SELECT `+messageColumns+` FROM dlq_messages WHERE tenant_id = $1 AND id = $2`, tenant, ps[0].id))
			if err != nil {
				return err
			}
			if _, _, err := apply(m, req.Edit, uuid.Nil); err != nil {
				return err
			}
		}
		pl = summarize(ps)
		for _, pd := range pl.Destinations {
			obj, err := s.targetObject(ctx, tenant, pd.Destination)
			if err != nil {
				return err
			}
			if err := allow(ctx, obj); err != nil {
				return err
			}
		}
		if req.DryRun {
			return nil
		}
		if pl.Replay == 0 {
			return problem.Errorf(problem.CodeUnprocessable, "none of the %d selected messages can be replayed: %s", len(ps), pl.Skipped[0].Reason)
		}
		job = Replay{ID: uuid.New(), DLQ: d.Ref, State: Running, Request: req, CreatedBy: audit.ActorFrom(ctx).Name}
		job.Counts.Total, job.Counts.Skipped = len(ps), len(ps)-pl.Replay
		err = tx.QueryRow(ctx, `INSERT INTO dlq_replays (tenant_id, id, dlq, state, request, created_by, total, skipped)
			VALUES ($1, $2, $3, 'running', $4, $5, $6, $7) RETURNING created_at, updated_at`,
			tenant, job.ID, d.Ref, req, job.CreatedBy, job.Counts.Total, job.Counts.Skipped).Scan(&job.CreatedAt, &job.UpdatedAt)
		if err != nil {
			return err
		}
		ids, skips := make([]int64, len(ps)), make([]string, len(ps))
		for i, p := range ps {
			ids[i], skips[i] = p.id, p.skip
		}
		if _, err := tx.Exec(ctx, `INSERT INTO dlq_replay_items (tenant_id, replay_id, message_id, seq, state, error)
			SELECT $1, $2, u.id, u.ord, CASE WHEN u.skip = '' THEN 'pending' ELSE 'skipped' END, u.skip
			FROM unnest($3::bigint[], $4::text[]) WITH ORDINALITY AS u(id, skip, ord)`,
			tenant, job.ID, ids, skips); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "dlq.replay_started", ObjectKind: "dlq", ObjectID: d.Ref,
			After: map[string]any{"replay": job.ID, "request": req, "plan": pl}})
	})
	if err != nil {
		return Replay{}, Plan{}, err
	}
	if !req.DryRun {
		s.emit(tenant, d.Ref, progressEvent(&job))
	}
	return job, pl, nil
}

const replayColumns = `id, dlq, state, request, created_by, created_at, updated_at, finished_at, total, published, confirmed, failed, skipped, returned, note`

func scanReplay(r pgx.Row) (Replay, error) {
	var j Replay
	err := r.Scan(&j.ID, &j.DLQ, &j.State, &j.Request, &j.CreatedBy, &j.CreatedAt, &j.UpdatedAt, &j.FinishedAt,
		&j.Counts.Total, &j.Counts.Published, &j.Counts.Confirmed, &j.Counts.Failed, &j.Counts.Skipped, &j.Counts.Returned, &j.Note)
	return j, err
}

// Replays lists dlq's replays, newest first.
func (s *Store) Replays(ctx context.Context, tenant uuid.UUID, dlq string, limit int) ([]Replay, error) {
	out := []Replay{}
	err := s.db.ReadTenant(ctx, tenant, `SELECT `+replayColumns+` FROM dlq_replays WHERE tenant_id = $1 AND dlq = $2 ORDER BY created_at DESC LIMIT $3`,
		[]any{tenant, dlq, limit}, func(rows pgx.Rows) error {
			j, err := scanReplay(rows)
			out = append(out, j)
			return err
		})
	return out, err
}

// GetReplay returns one of dlq's replays.
func (s *Store) GetReplay(ctx context.Context, tenant uuid.UUID, dlq string, id uuid.UUID) (Replay, error) {
	var out []Replay
	err := s.db.ReadTenant(ctx, tenant, `SELECT `+replayColumns+` FROM dlq_replays WHERE tenant_id = $1 AND dlq = $2 AND id = $3`,
		[]any{tenant, dlq, id}, func(rows pgx.Rows) error {
			j, err := scanReplay(rows)
			out = append(out, j)
			return err
		})
	if err != nil {
		return Replay{}, err
	}
	if len(out) == 0 {
		return Replay{}, problem.NotFound("replay", id.String())
	}
	return out[0], nil
}

// ControlReplay pauses, resumes or cancels a replay (action pause, resume,
// cancel), audited. Cancelling gives the messages not yet sent back to the
// DLQ (their items skipped); a batch being sent stays its runner's to
// record, and once the runner's lease ran out, the runner loop gives it
// back (releaseCancelled).
func (s *Store) ControlReplay(ctx context.Context, tenant uuid.UUID, dlq string, id uuid.UUID, action string) (Replay, error) {
	var job Replay
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		j, err := scanReplay(tx.QueryRow(ctx, `SELECT `+replayColumns+` FROM dlq_replays WHERE tenant_id = $1 AND dlq = $2 AND id = $3 FOR UPDATE`, tenant, dlq, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound("replay", id.String())
		}
		if err != nil {
			return err
		}
		from := map[string][]string{"pause": {Running}, "resume": {Paused}, "cancel": {Running, Paused}}[action]
		to := map[string]string{"pause": Paused, "resume": Running, "cancel": Cancelled}[action]
		ok := false
		for _, f := range from {
			ok = ok || j.State == f
		}
		if !ok {
			return problem.Errorf(problem.CodeConflict, "replay %s is %s; only a %s replay can %s", id, j.State, strings.Join(from, " or "), action)
		}
		before := j.State
		skipped := int64(0)
		if action == "cancel" {
			// What is not sent yet goes back to the DLQ; a batch being sent
			// (at or below sent_through) stays its runner's to record,
			// unless its runner is gone.
			tag, err := tx.Exec(ctx, `WITH job AS (
					SELECT lease_until IS NULL OR lease_until < now() AS gone, sent_through FROM dlq_replays WHERE tenant_id = $1 AND id = $2)
				UPDATE dlq_replay_items SET state = 'skipped', error = 'cancelled'
				WHERE tenant_id = $1 AND replay_id = $2 AND state = 'pending'
					AND (seq > (SELECT sent_through FROM job) OR (SELECT gone FROM job))`, tenant, id)
			if err != nil {
				return err
			}
			skipped = tag.RowsAffected()
		}
		note := j.Note
		if action != "pause" {
			note = ""
		}
		// A cancelled job keeps its lease while its runner may still
		// record a batch: releaseCancelled gives that back once it ran out.
		job, err = scanReplay(tx.QueryRow(ctx, `UPDATE dlq_replays SET state = $4, note = $5, updated_at = now(),
				skipped = skipped + $6, finished_at = CASE WHEN $4 = 'cancelled' THEN now() END,
				lease_until = CASE WHEN lease_until < now() THEN NULL ELSE lease_until END
			WHERE tenant_id = $1 AND dlq = $2 AND id = $3 RETURNING `+replayColumns, tenant, dlq, id, to, note, skipped))
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "dlq.replay_" + to, ObjectKind: "dlq", ObjectID: dlq,
			Before: map[string]any{"replay": id, "state": before}, After: map[string]any{"replay": id, "state": to}})
	})
	if err != nil {
		return Replay{}, err
	}
	s.emit(tenant, dlq, progressEvent(&job))
	return job, nil
}

// apply makes the message to publish of m, edited by e (nil: none), with
// the replay's headers.
func apply(m Message, e *Edit, replay uuid.UUID) (body []byte, headers map[string]any, err error) {
	h := Headers{}
	for k, v := range m.Headers {
		h[k] = v
	}
	body = m.body
	if e != nil {
		if e.Body != nil {
			if e.BodyEncoding == "base64" {
				if body, err = base64.StdEncoding.DecodeString(*e.Body); err != nil {
					return nil, nil, err
				}
			} else {
				body = []byte(*e.Body)
			}
			if strings.Contains(m.ContentType, "json") && !json.Valid(body) {
				return nil, nil, &problem.Error{Code: problem.CodeInvalid, Message: "the edited body is not JSON, and the message's content type is " + m.ContentType,
					Fields: map[string]string{"edit.body": "is not valid JSON"}}
			}
		}
		for _, k := range e.RemoveHeaders {
			delete(h, k)
		}
		for k, v := range e.Headers {
			h[k] = v
		}
	}
	if headers, err = h.Decode(); err != nil {
		return nil, nil, err
	}
	headers[HeaderReplayID] = replay.String()
	headers[HeaderReplayCount] = int64(m.Replays + 1)
	headers[HeaderMessage] = fmt.Sprint(m.ID)
	return body, headers, nil
}
