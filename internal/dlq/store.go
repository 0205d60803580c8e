package dlq

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/catalog"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// Event is what the store tells live streams of a DLQ: a message captured
// or changed, or a replay's progress.
type Event struct {
	Type    string          `json:"type"` // message, replay
	Message *Summary        `json:"message,omitempty"`
	Replay  *ReplayProgress `json:"replay,omitempty"`
}

// ReplayProgress is a replay as a live stream shows it: without its
// request, which can be long (GET the replay for it).
type ReplayProgress struct {
	ID        uuid.UUID    `json:"id"`
	State     string       `json:"state"`
	Counts    ReplayCounts `json:"counts"`
	Note      string       `json:"note,omitempty"`
	UpdatedAt time.Time    `json:"updated_at"`
}

func progressEvent(j *Replay) Event {
	return Event{Type: "replay", Replay: &ReplayProgress{ID: j.ID, State: j.State, Counts: j.Counts, Note: j.Note, UpdatedAt: j.UpdatedAt}}
}

// Summary is a message as a live stream shows it: no payload, which a
// reader fetches (and may not be allowed to see).
type Summary struct {
	ID         int64       `json:"id"`
	MessageID  string      `json:"message_id,omitempty"`
	Reason     string      `json:"reason"`
	Exception  string      `json:"exception,omitempty"`
	Original   Destination `json:"original"`
	BodySize   int         `json:"body_size"`
	DeathCount int64       `json:"death_count"`
	CapturedAt time.Time   `json:"captured_at"`
	Status     string      `json:"status"`
	Returned   bool        `json:"returned,omitempty"`
}

// Store keeps captured dead letters and replay jobs in PostgreSQL.
type Store struct {
	db      *database.DB
	catalog *catalog.Store
	// MaxReplays is how often a message may be replayed before, dead again,
	// it is held back (the loop guard). Set before use.
	MaxReplays int
	publish    func(tenant uuid.UUID, dlq string, evs []Event)
}

// NewStore returns a Store on db, reading DLQs from cat.
func NewStore(db *database.DB, cat *catalog.Store) *Store {
	return &Store{db: db, catalog: cat, MaxReplays: 3}
}

// OnEvents sets fn to be told of every committed change (the live hub),
// a transaction's changes at once. Set it before use.
func (s *Store) OnEvents(fn func(tenant uuid.UUID, dlq string, evs []Event)) { s.publish = fn }

func (s *Store) emit(tenant uuid.UUID, dlq string, evs ...Event) {
	if s.publish != nil && len(evs) > 0 {
		s.publish(tenant, dlq, evs)
	}
}

// ParseRef checks a DLQ reference: queue:NAME or topic:NAME.
func ParseRef(ref string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(ref, ":")
	if !ok || (kind != catalog.KindQueue && kind != catalog.KindTopic) || name == "" || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", "", problem.NotFound("dlq", ref)
	}
	return kind, name, nil
}

// Object is a DLQ as authorization sees it.
func (d *DLQ) Object(tenant uuid.UUID) access.Object {
	return access.Object{Tenant: tenant, Kind: "dlq", Name: d.Ref, Team: d.OwnerTeam, Labels: d.Labels}
}

func fromCatalog(c catalog.DeadLetterQueue) DLQ {
	d := DLQ{Ref: c.Ref, Broker: c.Broker, OwnerTeam: c.OwnerTeam, Labels: c.Labels, DeadLettersFor: c.For,
		Redaction: Redaction{Headers: []string{}, JSONPaths: []string{}}}
	if c.Kind == catalog.KindTopic {
		k := KafkaSettings{}.normalized()
		d.Kafka = &k
	}
	return d
}

// List returns tenant's DLQs the caller may read, with their counts.
func (s *Store) List(ctx context.Context, tenant uuid.UUID, allow access.Check) ([]DLQ, error) {
	return s.list(ctx, tenant, allow, "", true)
}

// list reads tenant's DLQs the caller may read (only the one named when
// only is set), with their settings, and their counts when counts is set.
func (s *Store) list(ctx context.Context, tenant uuid.UUID, allow access.Check, only string, counts bool) ([]DLQ, error) {
	var cat []catalog.DeadLetterQueue
	var err error
	if only == "" {
		cat, err = s.catalog.DeadLetterQueues(ctx, tenant)
	} else {
		var one catalog.DeadLetterQueue
		var ok bool
		if one, ok, err = s.catalog.DeadLetterQueue(ctx, tenant, only); ok {
			cat = append(cat, one)
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]DLQ, 0, len(cat))
	byRef := map[string]int{}
	for _, c := range cat {
		if only != "" && c.Ref != only {
			continue
		}
		d := fromCatalog(c)
		if err := allow(ctx, d.Object(tenant)); err != nil {
			if problem.Code(err) == problem.CodeForbidden {
				continue
			}
			return nil, err
		}
		byRef[d.Ref] = len(out)
		out = append(out, d)
	}
	if len(out) == 0 {
		return out, nil
	}
	var qs []database.Query
	if counts {
		// One statement, so that the replaying (a replay's claims, dead
		// in the store) are taken off the dead as they were counted.
		qs = append(qs, database.Query{SQL: `SELECT dlq, status, count(*), min(captured_at) FILTER (WHERE status = 'dead'),
				count(*) FILTER (WHERE captured_at > now() - interval '1 hour'), count(*) FILTER (WHERE held AND status = 'dead')
			FROM dlq_messages WHERE tenant_id = $1 AND ($2 = '' OR dlq = $2) GROUP BY dlq, status
			UNION ALL
			SELECT dlq, 'replaying', n, NULL, 0, 0 FROM (` + claimedCountsSQL + `) claimed (dlq, n)`, Args: []any{tenant, only},
			Scan: func(rows pgx.Rows) error {
				var ref, status string
				var n, hour, held int64
				var oldest *time.Time
				if err := rows.Scan(&ref, &status, &n, &oldest, &hour, &held); err != nil {
					return err
				}
				i, ok := byRef[ref]
				if !ok {
					return nil
				}
				d := &out[i]
				d.LastHour += hour
				d.Counts.Held += held
				switch status {
				case Dead:
					d.Counts.Dead += n
					d.Oldest = oldest
				case Replaying:
					d.Counts.Replaying += n
					d.Counts.Dead -= n
				case Replayed:
					d.Counts.Replayed = n
				case Discarded:
					d.Counts.Discarded = n
				}
				return nil
			}})
	}
	qs = append(qs, database.Query{SQL: `SELECT dlq, paused, redaction, kafka FROM dlq_settings WHERE tenant_id = $1 AND ($2 = '' OR dlq = $2)`, Args: []any{tenant, only},
		Scan: func(rows pgx.Rows) error {
			var ref string
			var paused bool
			var red Redaction
			var k KafkaSettings
			if err := rows.Scan(&ref, &paused, &red, &k); err != nil {
				return err
			}
			if i, ok := byRef[ref]; ok {
				out[i].Paused, out[i].Redaction = paused, red.normalized()
				if out[i].Kafka != nil {
					k = k.normalized()
					out[i].Kafka = &k
				}
			}
			return nil
		}})
	if err := s.db.ReadTenantAll(ctx, tenant, qs...); err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	return out, nil
}

func (r Redaction) normalized() Redaction {
	if r.Headers == nil {
		r.Headers = []string{}
	}
	if r.JSONPaths == nil {
		r.JSONPaths = []string{}
	}
	return r
}

// Get returns tenant's DLQ ref, with its settings, if allow lets the
// caller read it: another tenant's, or a queue no one dead-letters to, is
// not found. Its counts are left out (see Counted).
func (s *Store) Get(ctx context.Context, tenant uuid.UUID, ref string, allow access.Check) (DLQ, error) {
	return s.get(ctx, tenant, ref, allow, false)
}

// Counted is Get with the DLQ's counts.
func (s *Store) Counted(ctx context.Context, tenant uuid.UUID, ref string, allow access.Check) (DLQ, error) {
	return s.get(ctx, tenant, ref, allow, true)
}

func (s *Store) get(ctx context.Context, tenant uuid.UUID, ref string, allow access.Check, counts bool) (DLQ, error) {
	if _, _, err := ParseRef(ref); err != nil {
		return DLQ{}, err
	}
	all, err := s.list(ctx, tenant, func(context.Context, access.Object) error { return nil }, ref, counts)
	if err != nil {
		return DLQ{}, err
	}
	for _, d := range all {
		if d.Ref == ref {
			if err := allow(ctx, d.Object(tenant)); err != nil {
				return DLQ{}, err
			}
			return d, nil
		}
	}
	return DLQ{}, problem.NotFound("dlq", ref)
}

// Save stores what capture read off dlq in one transaction and returns how
// many were new. A redelivery of a stored message is folded into it; a
// replayed message that dead-lettered again goes back to its stored record
// (status dead, one more return), held back once it was replayed
// MaxReplays times.
func (s *Store) Save(ctx context.Context, tenant uuid.UUID, dlq string, batch []captured) (int, error) {
	var events []Summary
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		events = events[:0]
		fresh := make([]captured, 0, len(batch))
		var returns []captured
		for _, c := range batch {
			if c.returnOf == 0 {
				fresh = append(fresh, c)
			} else {
				returns = append(returns, c)
			}
		}
		// Returns in the order of their records, as a replay's record
		// takes them, so that the two never wait for each other in turn;
		// the replays' counts after every message (see returned).
		slices.SortStableFunc(returns, func(a, b captured) int { return cmp.Compare(a.returnOf, b.returnOf) })
		counts := map[uuid.UUID]*returnCounts{}
		for _, c := range returns {
			sum, ok, err := s.returned(ctx, tx, tenant, dlq, c, counts)
			if err != nil {
				return err
			}
			if ok {
				events = append(events, sum)
			} else {
				fresh = append(fresh, c)
			}
		}
		for id, n := range counts {
			if _, err := tx.Exec(ctx, `UPDATE dlq_replays SET returned = returned + $3, published = published + $4, confirmed = confirmed + $4, updated_at = now()
				WHERE tenant_id = $1 AND id = $2`, tenant, id, n.returned, n.confirmed); err != nil {
				return err
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		return insertMessages(ctx, tx, tenant, dlq, fresh, func(sum Summary) { events = append(events, sum) })
	})
	if err != nil {
		return 0, fmt.Errorf("store dead letters of %s: %w", dlq, err)
	}
	evs := make([]Event, len(events))
	for i := range events {
		evs[i] = Event{Type: "message", Message: &events[i]}
	}
	s.emit(tenant, dlq, evs...)
	return len(events), nil
}

// A message is replaying while a replay item of it is pending (the item
// is the replay's claim on it): its stored status stays dead until the
// broker confirms it. claimedSQL says so of a row of dlq_messages;
// statusSQL is the status answers give.
const (
	claimedSQL = `EXISTS (SELECT 1 FROM dlq_replay_items i WHERE i.tenant_id = dlq_messages.tenant_id AND i.message_id = dlq_messages.id AND i.state = 'pending')`
	statusSQL  = `CASE WHEN dlq_messages.status = 'dead' AND ` + claimedSQL + ` THEN 'replaying' ELSE dlq_messages.status END`
)

// claimedCountsSQL counts, per DLQ, the messages replays hold: the pending
// items of replays not over yet (a cancelled one's runner may still record
// the batch it had in flight).
const claimedCountsSQL = `SELECT r.dlq, count(*)` + claimsSQL + ` GROUP BY r.dlq`

// claimsSQL is the pending items of tenant $1's replays of DLQ $2 (every
// DLQ when $2 is ”), read from the jobs that may hold them.
const claimsSQL = ` FROM dlq_replays r
	JOIN dlq_replay_items i ON i.tenant_id = r.tenant_id AND i.replay_id = r.id
	WHERE r.tenant_id = $1 AND ($2 = '' OR r.dlq = $2) AND (r.state IN ('running', 'paused') OR (r.state = 'cancelled' AND r.lease_until IS NOT NULL))
		AND i.state = 'pending'`

const summaryHead = `id, message_id, reason, exception, original_exchange, original_routing_key, original_queue, original_topic,
	body_size, death_count, captured_at, `

const summaryColumns = summaryHead + statusSQL

func scanSummary(r pgx.Row, extra ...any) (Summary, error) {
	var m Summary
	err := r.Scan(append([]any{&m.ID, &m.MessageID, &m.Reason, &m.Exception, &m.Original.Exchange, &m.Original.RoutingKey, &m.Original.Queue,
		&m.Original.Topic, &m.BodySize, &m.DeathCount, &m.CapturedAt, &m.Status}, extra...)...)
	return m, err
}

func insertMessages(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, dlq string, cs []captured, saved func(Summary)) error {
	n := len(cs)
	var (
		fps, bodies                             = make([][]byte, n), make([][]byte, n)
		ids, keys, ctypes, headers, props       = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		oex, ork, oq, ot, reasons, excs, traces = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sizes                                   = make([]int32, n)
		truncs                                  = make([]bool, n)
		deaths                                  = make([]int64, n)
		firsts, lasts                           = make([]*time.Time, n), make([]*time.Time, n)
		parts                                   = make([]*int32, n)
		offs                                    = make([]*int64, n)
	)
	for i, c := range cs {
		h, err := json.Marshal(c.headers)
		if err != nil {
			return err
		}
		p, err := json.Marshal(c.properties)
		if err != nil {
			return err
		}
		fps[i], bodies[i], ids[i], keys[i], ctypes[i], headers[i], props[i] = c.fingerprint, c.body, c.messageID, c.routingKey, c.contentType, string(h), string(p)
		oex[i], ork[i], oq[i], ot[i] = c.original.Exchange, c.original.RoutingKey, c.original.Queue, c.original.Topic
		reasons[i], excs[i], traces[i], sizes[i], truncs[i], deaths[i] = c.reason, c.exception, c.traceparent, int32(c.bodySize), c.truncated, c.deathCount
		firsts[i], lasts[i], parts[i], offs[i] = c.firstDeath, c.lastDeath, c.partition, c.offset
	}
	rows, err := tx.Query(ctx, `INSERT INTO dlq_messages (tenant_id, dlq, fingerprint, message_id, routing_key, content_type, headers, properties,
			body, body_size, truncated, original_exchange, original_routing_key, original_queue, original_topic, reason, exception,
			death_count, first_death_at, last_death_at, traceparent, kafka_partition, kafka_offset)
		SELECT $1, $2, u.* FROM unnest($3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[]::jsonb[], $8::text[]::jsonb[], $9::bytea[],
			$10::int[], $11::bool[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::bigint[],
			$19::timestamptz[], $20::timestamptz[], $21::text[], $22::int[], $23::bigint[]) AS u
		ON CONFLICT (tenant_id, dlq, fingerprint) DO NOTHING
		RETURNING `+summaryHead+`status`,
		tenant, dlq, fps, ids, keys, ctypes, headers, props, bodies, sizes, truncs, oex, ork, oq, ot, reasons, excs, deaths, firsts, lasts, traces, parts, offs)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		sum, err := scanSummary(rows)
		if err != nil {
			return err
		}
		saved(sum)
	}
	return rows.Err()
}

// returnCounts are what returns add to a replay's counts.
type returnCounts struct{ returned, confirmed int }

// returned folds c, a replayed message that dead-lettered again, into its
// stored record; ok is false when there is none to fold it into. What it
// adds to replays' counts goes into counts, for the caller to write after
// every message: a replay's record locks the job's row last, and so must
// the capture.
func (s *Store) returned(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, dlq string, c captured, counts map[uuid.UUID]*returnCounts) (Summary, bool, error) {
	h, err := json.Marshal(c.headers)
	if err != nil {
		return Summary{}, false, err
	}
	var last *uuid.UUID
	var dup bool
	// A redelivery of the return itself has the fingerprint the record
	// took: it is folded without counting twice.
	if err := tx.QueryRow(ctx, `SELECT fingerprint = $4, last_replay FROM dlq_messages WHERE tenant_id = $1 AND dlq = $2 AND id = $3`,
		tenant, dlq, c.returnOf, c.fingerprint).Scan(&dup, &last); errors.Is(err, pgx.ErrNoRows) {
		return Summary{}, false, nil
	} else if err != nil {
		return Summary{}, false, err
	}
	if dup {
		return Summary{}, true, nil
	}
	replay := c.returnReplay
	if replay == uuid.Nil && last != nil {
		replay = *last
	}
	// Back before the replay that sent it recorded the broker's
	// confirmation: the broker took it, so its item is confirmed here.
	// An item the record holds is left to it (it sees the return, and
	// keeps the message dead).
	more := 0
	if replay != uuid.Nil {
		tag, err := tx.Exec(ctx, `UPDATE dlq_replay_items SET state = 'confirmed'
			WHERE (tenant_id, replay_id, seq) IN (
				SELECT tenant_id, replay_id, seq FROM dlq_replay_items
				WHERE tenant_id = $1 AND replay_id = $2 AND message_id = $3 AND state = 'pending' FOR UPDATE SKIP LOCKED)`, tenant, replay, c.returnOf)
		if err != nil {
			return Summary{}, false, err
		}
		more = int(tag.RowsAffected())
		n := counts[replay]
		if n == nil {
			n = &returnCounts{}
			counts[replay] = n
		}
		n.returned++
		n.confirmed += more
	}
	sent := &replay
	if more == 0 {
		sent = nil
	}
	sum, err := scanSummary(tx.QueryRow(ctx, `UPDATE dlq_messages SET fingerprint = $4, headers = $5, status = 'dead', returns = returns + 1,
			death_count = $6, last_death_at = coalesce($7, now()), reason = $8, exception = $9, replays = replays + $11,
			last_replay = coalesce($12, last_replay), held = replays + $11 >= $10, updated_at = now()
		WHERE tenant_id = $1 AND dlq = $2 AND id = $3
		RETURNING `+summaryColumns,
		tenant, dlq, c.returnOf, c.fingerprint, h, c.deathCount, c.lastDeath, c.reason, c.exception, s.MaxReplays, more, sent))
	if err != nil {
		return Summary{}, false, err
	}
	sum.Returned = true
	return sum, true, nil
}

const (
	messageHead = `id, dlq, message_id, routing_key, content_type, headers, properties, body, body_size, truncated,
	original_exchange, original_routing_key, original_queue, original_topic, reason, exception, death_count, first_death_at, last_death_at,
	traceparent, kafka_partition, kafka_offset, captured_at, `
	messageTail    = `, replays, returns, held, last_replay`
	messageColumns = messageHead + statusSQL + messageTail
	// storedMessageColumns read the stored status: a replay's runner reads
	// messages it holds, which are dead to it.
	storedMessageColumns = messageHead + `status` + messageTail
)

// scanMessage reads messageColumns, after extra when given.
func scanMessage(r pgx.Row, extra ...any) (Message, error) {
	var m Message
	var props map[string]string
	err := r.Scan(append(extra, &m.ID, &m.DLQ, &m.MessageID, &m.RoutingKey, &m.ContentType, &m.Headers, &props, &m.body, &m.BodySize, &m.Truncated,
		&m.Original.Exchange, &m.Original.RoutingKey, &m.Original.Queue, &m.Original.Topic, &m.Reason, &m.Exception, &m.DeathCount,
		&m.FirstDeath, &m.LastDeath, &m.Traceparent, &m.Partition, &m.Offset, &m.CapturedAt, &m.Status, &m.Replays, &m.Returns, &m.Held, &m.LastReplay)...)
	if err != nil {
		return m, err
	}
	m.Properties = props
	if m.Properties == nil {
		m.Properties = map[string]string{}
	}
	if m.Headers == nil {
		m.Headers = Headers{}
	}
	m.setBody(m.body)
	return m, nil
}

func (m *Message) setBody(b []byte) {
	if utf8.Valid(b) {
		m.Body, m.BodyEncoding = string(b), "text"
	} else {
		m.Body, m.BodyEncoding = base64.StdEncoding.EncodeToString(b), "base64"
	}
}

// Page limits.
const (
	DefaultPage = 50
	MaxPage     = 500
)

// Messages returns a page of dlq's messages matching f, newest first.
func (s *Store) Messages(ctx context.Context, tenant uuid.UUID, dlq string, f Filter, cursor string, limit int) ([]Message, string, error) {
	key, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT ` + messageColumns + ` FROM dlq_messages WHERE tenant_id = $1 AND dlq = $2`
	args := []any{tenant, dlq}
	if key != "" {
		after, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			return nil, "", problem.Invalid(map[string]string{"cursor": "is not a cursor this server issued"})
		}
		args = append(args, after)
		q += ` AND id < $3`
	}
	cond, args := f.where(args)
	q += cond + fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit+1)
	out := make([]Message, 0, limit+1)
	err = s.db.ReadTenant(ctx, tenant, q, args, func(rows pgx.Rows) error {
		m, err := scanMessage(rows)
		out = append(out, m)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("read dead letters: %w", err)
	}
	page, next := database.Page(out, limit, func(m Message) string { return strconv.FormatInt(m.ID, 10) })
	return page, next, nil
}

// Message returns one of dlq's messages.
func (s *Store) Message(ctx context.Context, tenant uuid.UUID, dlq string, id int64) (Message, error) {
	var out []Message
	err := s.db.ReadTenant(ctx, tenant, `SELECT `+messageColumns+` FROM dlq_messages WHERE tenant_id = $1 AND dlq = $2 AND id = $3`,
		[]any{tenant, dlq, id}, func(rows pgx.Rows) error {
			m, err := scanMessage(rows)
			out = append(out, m)
			return err
		})
	if err != nil {
		return Message{}, fmt.Errorf("read dead letter: %w", err)
	}
	if len(out) == 0 {
		return Message{}, problem.NotFound("message", strconv.FormatInt(id, 10))
	}
	return out[0], nil
}

// Groups counts dlq's messages matching f by a group key.
func (s *Store) Groups(ctx context.Context, tenant uuid.UUID, dlq, by string, f Filter) ([]Group, error) {
	expr := groupExpr(by)
	cond, args := f.where([]any{tenant, dlq})
	q := `SELECT ` + expr + `, count(*), min(captured_at), max(captured_at) FROM dlq_messages WHERE tenant_id = $1 AND dlq = $2` + cond +
		` GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 200`
	out := []Group{}
	err := s.db.ReadTenant(ctx, tenant, q, args, func(rows pgx.Rows) error {
		g := Group{By: by}
		err := rows.Scan(&g.Key, &g.Count, &g.Oldest, &g.Newest)
		out = append(out, g)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("group dead letters: %w", err)
	}
	return out, nil
}

// Settings returns dlq's settings.
func (s *Store) Settings(ctx context.Context, tenant uuid.UUID, dlq string) (paused bool, red Redaction, err error) {
	err = s.db.ReadTenant(ctx, tenant, `SELECT paused, redaction FROM dlq_settings WHERE tenant_id = $1 AND dlq = $2`, []any{tenant, dlq},
		func(rows pgx.Rows) error { return rows.Scan(&paused, &red) })
	return paused, red.normalized(), err
}

// SetSettings changes dlq's pause and redaction (nil: unchanged), audited.
func (s *Store) SetSettings(ctx context.Context, tenant uuid.UUID, dlq string, paused *bool, red *Redaction) error {
	return s.ChangeSettings(ctx, tenant, dlq, SettingsChange{Paused: paused, Redaction: red})
}

// SettingsChange changes a DLQ's settings; a nil field is unchanged.
type SettingsChange struct {
	Paused    *bool
	Redaction *Redaction
	Kafka     *KafkaSettings // a topic's only
}

// ChangeSettings changes dlq's settings, audited.
func (s *Store) ChangeSettings(ctx context.Context, tenant uuid.UUID, dlq string, ch SettingsChange) error {
	return s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		var before struct {
			Paused    bool          `json:"paused"`
			Redaction Redaction     `json:"redaction"`
			Kafka     KafkaSettings `json:"kafka"`
		}
		err := tx.QueryRow(ctx, `SELECT paused, redaction, kafka FROM dlq_settings WHERE tenant_id = $1 AND dlq = $2 FOR UPDATE`, tenant, dlq).
			Scan(&before.Paused, &before.Redaction, &before.Kafka)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		after := before
		if ch.Paused != nil {
			after.Paused = *ch.Paused
		}
		if ch.Redaction != nil {
			after.Redaction = *ch.Redaction
		}
		if ch.Kafka != nil {
			after.Kafka = *ch.Kafka
		}
		after.Redaction = after.Redaction.normalized()
		if _, err := tx.Exec(ctx, `INSERT INTO dlq_settings (tenant_id, dlq, paused, redaction, kafka) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, dlq) DO UPDATE SET paused = $3, redaction = $4, kafka = $5, updated_at = now()`,
			tenant, dlq, after.Paused, after.Redaction, after.Kafka); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "dlq.settings_changed", ObjectKind: "dlq", ObjectID: dlq, Before: before, After: after})
	})
}

// Selection picks messages of a DLQ: by id, by filter, or by group. Only
// messages still dead (and not held, for a replay) are taken.
type Selection struct {
	MessageIDs []int64   `json:"message_ids,omitempty"`
	Filter     *Filter   `json:"filter,omitempty"`
	Group      *GroupKey `json:"group,omitempty"`
}

// GroupKey names a group of Groups.
type GroupKey struct {
	By  string `json:"by"`
	Key string `json:"key"`
}

// MaxSelection bounds how many messages one replay or discard takes.
const MaxSelection = 1_000_000

// Validate checks sel.
func (sel *Selection) Validate() error {
	bad := problem.Fields{}
	n := 0
	if len(sel.MessageIDs) > 0 {
		n++
	}
	if sel.Filter != nil {
		n++
		if err := sel.Filter.Validate("filter."); err != nil {
			return err
		}
	}
	if sel.Group != nil {
		n++
		bad.Check(sel.Group.By == ByReason || sel.Group.By == ByException || sel.Group.By == ByOriginal, "group.by", "must be one of "+strings.Join(GroupKeys, ", "))
	}
	bad.Check(n == 1, "message_ids", "give exactly one of message_ids, filter or group")
	bad.Check(len(sel.MessageIDs) <= 10_000, "message_ids", "at most 10000 ids; select more with a filter")
	return bad.Err()
}

// where returns the selection's conditions on dlq_messages.
func (sel *Selection) where(args []any) (string, []any) {
	switch {
	case len(sel.MessageIDs) > 0:
		args = append(args, sel.MessageIDs)
		return fmt.Sprintf(" AND id = ANY($%d)", len(args)), args
	case sel.Group != nil:
		args = append(args, sel.Group.Key)
		return fmt.Sprintf(" AND %s = $%d", groupExpr(sel.Group.By), len(args)), args
	case sel.Filter != nil:
		return sel.Filter.where(args)
	}
	return " AND false", args
}

// takeDead reads sel's messages of dlq that a replay's start or a discard
// may take: dead, and held by no replay. columns are read of each, in id
// order, by scan; id says a row's message. The caller holds lockSelections.
// What other replays hold is read on its own and left out here: a join of
// the messages with the items can be planned badly on tables a replay has
// just filled.
func takeDead[T any](ctx context.Context, tx pgx.Tx, tenant uuid.UUID, dlq string, sel Selection, columns string,
	scan pgx.RowToFunc[T], id func(T) int64) ([]T, error) {
	sel, some := sel.dead()
	if !some {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT i.message_id`+claimsSQL, tenant, dlq)
	if err != nil {
		return nil, err
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	claimed := make(map[int64]bool, len(held))
	for _, id := range held {
		claimed[id] = true
	}
	cond, args := sel.where([]any{tenant, dlq})
	rows, err = tx.Query(ctx, `SELECT `+columns+` FROM dlq_messages WHERE tenant_id = $1 AND dlq = $2 AND status = 'dead'`+cond+
		` ORDER BY id LIMIT `+fmt.Sprint(MaxSelection+1), args...)
	if err != nil {
		return nil, err
	}
	all, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, err
	}
	if len(all) > MaxSelection {
		return nil, problem.Errorf(problem.CodeUnprocessable, "the selection holds more than %d messages; narrow it", MaxSelection)
	}
	return slices.DeleteFunc(all, func(m T) bool { return claimed[id(m)] }), nil
}

// dead is the selection of sel's messages that are dead in the store (what
// replays and discards take); some is false when its filter asks for none.
func (sel Selection) dead() (out Selection, some bool) {
	if sel.Filter == nil || len(sel.Filter.Status) == 0 {
		return sel, true
	}
	if !slices.Contains(sel.Filter.Status, Dead) {
		return sel, false
	}
	f := *sel.Filter
	f.Status = nil
	sel.Filter = &f
	return sel, true
}

// lockSelections serializes, per DLQ, what takes dead messages (a replay's
// start, a discard): the second sees what the first took.
func lockSelections(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, dlq string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+selectionLockClass+`, hashtext($1::text || '/' || $2))`, tenant, dlq)
	return err
}

// selectionLockClass is the first key of lockSelections' advisory locks.
const selectionLockClass = "1145851217" // 0x444C4D51, "DLMQ"

// Discard marks the selected dead messages of dlq discarded (they stay in
// the store, out of replays), audited, and returns how many.
func (s *Store) Discard(ctx context.Context, tenant uuid.UUID, dlq string, sel Selection) (int64, error) {
	if err := sel.Validate(); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		if err := lockSelections(ctx, tx, tenant, dlq); err != nil {
			return err
		}
		ids, err := takeDead(ctx, tx, tenant, dlq, sel, "id", pgx.RowTo[int64], func(id int64) int64 { return id })
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE dlq_messages SET status = 'discarded', updated_at = now()
			WHERE tenant_id = $1 AND id = ANY($2) AND status = 'dead'`, tenant, ids)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		if n == 0 {
			return problem.Errorf(problem.CodeUnprocessable, "the selection holds no dead message of %s", dlq)
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "dlq.discarded", ObjectKind: "dlq", ObjectID: dlq,
			After: map[string]any{"selection": sel, "discarded": n}})
	})
	if err != nil {
		return 0, err
	}
	s.emit(tenant, dlq, Event{Type: "discarded"})
	return n, nil
}

// AnnotateTopology sets, on every DLQ node of t, how many of its messages
// are still dead (and not held by a replay).
func (s *Store) AnnotateTopology(ctx context.Context, tenant uuid.UUID, t *catalog.Topology) error {
	dlqs, err := s.catalog.DeadLetterQueues(ctx, tenant)
	if err != nil || len(dlqs) == 0 {
		return err
	}
	counts := make(map[string]int64, len(dlqs))
	for _, d := range dlqs {
		counts[d.Ref] = 0
	}
	err = s.db.ReadTenant(ctx, tenant, `SELECT dlq, count(*) FROM dlq_messages WHERE tenant_id = $1 AND status = 'dead' GROUP BY dlq
			UNION ALL
			SELECT dlq, -n FROM (`+claimedCountsSQL+`) claimed (dlq, n)`, []any{tenant, ""},
		func(rows pgx.Rows) error {
			var ref string
			var n int64
			if err := rows.Scan(&ref, &n); err != nil {
				return err
			}
			if _, ok := counts[ref]; ok {
				counts[ref] += n
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("count dead letters: %w", err)
	}
	for i := range t.Nodes {
		if n, ok := counts[t.Nodes[i].ID]; ok {
			t.Nodes[i].DeadLetters = &n
		}
	}
	return nil
}
