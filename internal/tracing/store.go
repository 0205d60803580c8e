package tracing

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"switchboard/internal/audit"
	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// DefaultIndexedKeys are the attribute keys whose values are indexed for
// search: those people look spans up by.
var DefaultIndexedKeys = []string{
	"http.route", "http.request.method", "http.response.status_code", "url.path",
	"rpc.service", "rpc.method", "messaging.system", "messaging.destination.name",
	"messaging.message.id", "db.system", "db.namespace", "peer.service", "server.address",
	"error.type", "exception.type", "switchboard.replay_id",
}

// Store keeps spans in PostgreSQL (see migrations/00014_spans.sql).
type Store struct {
	db *database.DB
	// Indexed are the attribute keys whose "key=value" pairs are indexed.
	Indexed map[string]bool
	// Tail fans new spans out to live subscribers.
	Tail *Tail
	// relay carries the tail to and from the other replicas (StartRelay).
	relay *Relay
	// Now is the clock (tests set it); nil: time.Now.
	Now func() time.Time

	mu        sync.Mutex
	parts     map[string]bool // partitions known to exist
	retention map[uuid.UUID]retentionEntry
	ops       map[opKey]time.Time // operations written, and when
}

type retentionEntry struct {
	days int
	read time.Time
}

type opKey struct {
	tenant        uuid.UUID
	service, name string
	kind          int16
}

// retentionTTL is how long a tenant's retention is taken from memory; a
// change made on another replica applies to spans after at most this.
const retentionTTL = 30 * time.Second

// opsEvery is how often an operation's last_seen is written while it keeps
// arriving.
const opsEvery = time.Minute

// NewStore returns a store over db.
func NewStore(db *database.DB) *Store {
	s := &Store{db: db, Indexed: map[string]bool{}, Tail: NewTail(), parts: map[string]bool{},
		retention: map[uuid.UUID]retentionEntry{}, ops: map[opKey]time.Time{}}
	for _, k := range DefaultIndexedKeys {
		s.Indexed[k] = true
	}
	return s
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Decode decodes OTLP traces for tenant, under its retention (see Decode).
func (s *Store) Decode(ctx context.Context, tenant uuid.UUID, td ptrace.Traces) (*Batch, error) {
	days, err := s.Retention(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return Decode(td, s.now(), days, s.Indexed), nil
}

// Retention returns how many days tenant keeps spans.
func (s *Store) Retention(ctx context.Context, tenant uuid.UUID) (int, error) {
	now := s.now()
	s.mu.Lock()
	e, ok := s.retention[tenant]
	s.mu.Unlock()
	if ok && now.Sub(e.read) < retentionTTL {
		return e.days, nil
	}
	set, err := s.Settings(ctx, tenant)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.retention[tenant] = retentionEntry{days: set.RetentionDays, read: now}
	s.mu.Unlock()
	return set.RetentionDays, nil
}

// Settings returns tenant's tracing settings.
func (s *Store) Settings(ctx context.Context, tenant uuid.UUID) (Settings, error) {
	set := Settings{RetentionDays: DefaultRetentionDays}
	err := s.db.ReadTenant(ctx, tenant, `SELECT retention_days FROM tracing_settings WHERE tenant_id = $1`, []any{tenant},
		func(rows pgx.Rows) error { return rows.Scan(&set.RetentionDays) })
	if err != nil {
		return Settings{}, fmt.Errorf("read tracing settings: %w", err)
	}
	return set, nil
}

// SetSettings changes tenant's tracing settings and audits the change.
func (s *Store) SetSettings(ctx context.Context, tenant uuid.UUID, set Settings) (Settings, error) {
	if set.RetentionDays < 1 || set.RetentionDays > 90 {
		return Settings{}, problem.Invalid(map[string]string{"retention_days": "must be from 1 to 90"})
	}
	err := s.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		before := Settings{RetentionDays: DefaultRetentionDays}
		if err := tx.QueryRow(ctx, `SELECT retention_days FROM tracing_settings WHERE tenant_id = $1 FOR UPDATE`, tenant).Scan(&before.RetentionDays); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tracing_settings (tenant_id, retention_days) VALUES ($1, $2)
			ON CONFLICT (tenant_id) DO UPDATE SET retention_days = EXCLUDED.retention_days, updated_at = now()`, tenant, set.RetentionDays); err != nil {
			return err
		}
		return audit.Record(ctx, tx, tenant, audit.Change{Action: "tracing.updated", ObjectKind: "trace", ObjectID: "settings", Before: before, After: set})
	})
	if err != nil {
		return Settings{}, fmt.Errorf("save tracing settings: %w", err)
	}
	s.mu.Lock()
	s.retention[tenant] = retentionEntry{days: set.RetentionDays, read: s.now()}
	s.mu.Unlock()
	return set, nil
}

var spanColumns = []string{"tenant_id", "expires_on", "trace_id", "span_id", "parent_span_id", "service", "name", "kind", "start_time",
	"duration_ns", "status_code", "status_message", "trace_state", "scope", "attributes", "resource", "events", "links", "attr_index"}

// Write stores b's spans for tenant in one COPY (all or none), then hands
// them to the live tail.
func (s *Store) Write(ctx context.Context, tenant uuid.UUID, b *Batch) error {
	if len(b.rows) == 0 {
		return nil
	}
	if err := s.ensurePartitions(ctx, b.rows); err != nil {
		return err
	}
	ops := s.staleOperations(tenant, b.rows)
	rows := b.rows
	copyRows := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		return []any{tenant, r.expiresOn, r.traceID, r.spanID, r.parentID, r.service, r.name, r.kind, r.start,
			r.durationNs, r.status, r.statusMessage, r.traceState, r.scope, json.RawMessage(r.attributes), json.RawMessage(r.resource),
			json.RawMessage(r.events), json.RawMessage(r.links), r.attrIndex}, nil
	})
	var err error
	if len(ops) == 0 {
		_, err = s.db.Pool.CopyFrom(ctx, pgx.Identifier{"spans"}, spanColumns, copyRows)
	} else {
		err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"spans"}, spanColumns, copyRows); err != nil {
				return err
			}
			return s.writeOperations(ctx, tx, tenant, ops)
		})
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23514" { // no partition for a row: one was dropped behind our back
			s.mu.Lock()
			s.parts = map[string]bool{}
			s.mu.Unlock()
		}
		return fmt.Errorf("write spans: %w", err)
	}
	now := s.now()
	s.mu.Lock()
	for _, k := range ops {
		s.ops[k.opKey] = now
	}
	s.mu.Unlock()
	s.Tail.publish(tenant, rows)
	if s.relay != nil {
		s.relay.send(ctx, tenant, rows)
	}
	return nil
}

type staleOp struct {
	opKey
	last time.Time
}

// staleOperations returns the batch's operations not written in the last
// opsEvery, with the latest start of each.
func (s *Store) staleOperations(tenant uuid.UUID, rows []row) []staleOp {
	now := s.now()
	var out []staleOp
	seen := map[opKey]int{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range rows {
		r := &rows[i]
		k := opKey{tenant, r.service, r.name, r.kind}
		if at, ok := s.ops[k]; ok && now.Sub(at) < opsEvery {
			continue
		}
		if j, ok := seen[k]; ok {
			if r.start.After(out[j].last) {
				out[j].last = r.start
			}
			continue
		}
		seen[k] = len(out)
		out = append(out, staleOp{k, r.start})
	}
	return out
}

func (s *Store) writeOperations(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, ops []staleOp) error {
	services, names, kinds, lasts := make([]string, len(ops)), make([]string, len(ops)), make([]int16, len(ops)), make([]time.Time, len(ops))
	for i, o := range ops {
		services[i], names[i], kinds[i], lasts[i] = o.service, o.name, o.kind, o.last
	}
	_, err := tx.Exec(ctx, `INSERT INTO trace_operations (tenant_id, service, name, kind, last_seen)
		SELECT $1, s, n, k, l FROM unnest($2::text[], $3::text[], $4::smallint[], $5::timestamptz[]) AS u(s, n, k, l)
		ORDER BY s, n, k
		ON CONFLICT (tenant_id, service, name, kind) DO UPDATE SET last_seen = greatest(trace_operations.last_seen, EXCLUDED.last_seen)`,
		tenant, services, names, kinds, lasts)
	return err
}

func partitionName(day time.Time) string { return "spans_" + day.Format("20060102") }

// ensurePartitions creates the day partitions rows go to that do not exist
// yet.
func (s *Store) ensurePartitions(ctx context.Context, rows []row) error {
	var missing []time.Time
	s.mu.Lock()
	for i := range rows {
		d := rows[i].expiresOn
		if !s.parts[partitionName(d)] && !slices.ContainsFunc(missing, d.Equal) {
			missing = append(missing, d)
		}
	}
	s.mu.Unlock()
	for _, d := range missing {
		if err := s.createPartition(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// createPartition creates day's partition if it is not there, under a lock
// every replica takes for it.
func (s *Store) createPartition(ctx context.Context, day time.Time) error {
	name := partitionName(day)
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('switchboard.spans.partitions'))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF spans FOR VALUES FROM ('%s') TO ('%s')`,
			pgx.Identifier{name}.Sanitize(), day.Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly)))
		return err
	})
	if err != nil {
		return fmt.Errorf("create span partition %s: %w", name, err)
	}
	s.mu.Lock()
	s.parts[name] = true
	s.mu.Unlock()
	return nil
}

// DropExpired drops the day partitions whose day has passed (their spans
// expired under their tenants' retention) and returns their names.
func (s *Store) DropExpired(ctx context.Context) ([]string, error) {
	today := s.now().UTC().Truncate(24 * time.Hour)
	var names []string
	rows, err := s.db.Pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'spans'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list span partitions: %w", err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list span partitions: %w", err)
	}
	for _, p := range parts {
		day, err := time.Parse("20060102", strings.TrimPrefix(p, "spans_"))
		if err != nil || !day.Before(today) {
			continue
		}
		if _, err := s.db.Pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{p}.Sanitize()); err != nil {
			return names, fmt.Errorf("drop span partition %s: %w", p, err)
		}
		s.mu.Lock()
		delete(s.parts, p)
		s.mu.Unlock()
		names = append(names, p)
	}
	return names, nil
}

const readColumns = `trace_id, span_id, parent_span_id, service, name, kind, start_time, duration_ns, status_code, status_message,
	trace_state, scope, attributes, resource, events, links`

func scanSpan(rows pgx.Rows) (Span, error) {
	var sp Span
	var tid, sid, pid []byte
	var kind, status int16
	var events, links []byte
	if err := rows.Scan(&tid, &sid, &pid, &sp.Service, &sp.Name, &kind, &sp.Start, &sp.DurationNs, &status, &sp.StatusMessage,
		&sp.TraceState, &sp.Scope, &sp.Attributes, &sp.Resource, &events, &links); err != nil {
		return Span{}, err
	}
	sp.TraceID, sp.SpanID, sp.ParentSpanID = hexID(tid), hexID(sid), hexID(pid)
	sp.Kind, sp.Status = kindName(kind), statusName(status)
	if err := json.Unmarshal(events, &sp.Events); err != nil {
		return Span{}, err
	}
	if err := json.Unmarshal(links, &sp.Links); err != nil {
		return Span{}, err
	}
	return sp, nil
}

// ParseTraceID reads a trace id of 32 hex digits (not all zero).
func ParseTraceID(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 || allZero(b) {
		return nil, problem.Invalid(map[string]string{"trace_id": "must be 32 hex digits, not all zero"})
	}
	return b, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Trace returns every span of a trace, by start time (a span sent twice is
// answered once).
func (s *Store) Trace(ctx context.Context, tenant uuid.UUID, traceID string) ([]Span, error) {
	id, err := ParseTraceID(traceID)
	if err != nil {
		return nil, err
	}
	var out []Span
	seen := map[string]bool{}
	err = s.db.ReadTenant(ctx, tenant, `SELECT `+readColumns+` FROM spans WHERE tenant_id = $1 AND trace_id = $2 ORDER BY start_time, span_id`,
		[]any{tenant, id}, func(rows pgx.Rows) error {
			sp, err := scanSpan(rows)
			if err != nil {
				return err
			}
			if !seen[sp.SpanID] {
				seen[sp.SpanID] = true
				out = append(out, sp)
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	if len(out) == 0 {
		return nil, problem.NotFound("trace", traceID)
	}
	return out, nil
}

// Services returns the services that sent spans, by name.
func (s *Store) Services(ctx context.Context, tenant uuid.UUID) ([]Service, error) {
	out := []Service{}
	err := s.db.ReadTenant(ctx, tenant, `SELECT service, max(last_seen) FROM trace_operations WHERE tenant_id = $1 GROUP BY service ORDER BY service`,
		[]any{tenant}, func(rows pgx.Rows) error {
			var sv Service
			err := rows.Scan(&sv.Name, &sv.LastSeen)
			out = append(out, sv)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("read traced services: %w", err)
	}
	return out, nil
}

// Operations returns a service's operations (span names by kind); a
// service that never sent a span is not found.
func (s *Store) Operations(ctx context.Context, tenant uuid.UUID, service string) ([]Operation, error) {
	out := []Operation{}
	err := s.db.ReadTenant(ctx, tenant, `SELECT service, name, kind, last_seen FROM trace_operations WHERE tenant_id = $1 AND service = $2 ORDER BY name, kind`,
		[]any{tenant, service}, func(rows pgx.Rows) error {
			var o Operation
			var kind int16
			err := rows.Scan(&o.Service, &o.Name, &kind, &o.LastSeen)
			o.Kind = kindName(kind)
			out = append(out, o)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("read operations: %w", err)
	}
	if len(out) == 0 {
		return nil, problem.NotFound("traced service", service)
	}
	return out, nil
}

// Query is a search for traces: those with a span matching every field set.
type Query struct {
	Service   string
	Operation string // the span's name
	// Status: unset, ok or error.
	Status      string
	MinDuration time.Duration
	MaxDuration time.Duration
	// Attributes: the span has each key with its value as text.
	Attributes map[string]string
	// Since and Until bound the span's start (default: the last hour).
	Since, Until time.Time
}

// Validate checks q and fills its defaults.
func (q *Query) Validate(now time.Time) error {
	f := problem.Fields{}
	if q.Status != "" {
		_, ok := statusNumber(q.Status)
		f.Check(ok, "status", "must be unset, ok or error")
	}
	f.Check(q.MinDuration >= 0, "min_duration", "must not be negative")
	f.Check(q.MaxDuration >= 0, "max_duration", "must not be negative")
	f.Check(q.MaxDuration == 0 || q.MaxDuration >= q.MinDuration, "max_duration", "must not be less than min_duration")
	f.Check(len(q.Attributes) <= 8, "attributes", "at most 8")
	if q.Until.IsZero() {
		q.Until = now.Add(MaxAhead)
	}
	if q.Since.IsZero() {
		q.Since = now.Add(-time.Hour)
	}
	f.Check(q.Since.Before(q.Until), "since", "must be before until")
	return f.Err()
}

// scanFactor is how many matching spans a search reads for each trace it
// answers (a trace may have several matching spans).
const scanFactor = 8

// Search returns traces with a span matching q, those with the newest
// matching spans first, with the cursor of the next page ("": none).
func (s *Store) Search(ctx context.Context, tenant uuid.UUID, q Query, cursor string, limit int) ([]Trace, string, error) {
	if err := q.Validate(s.now()); err != nil {
		return nil, "", err
	}
	key, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	args := []any{tenant, q.Since, q.Until}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where := `tenant_id = $1 AND start_time >= $2 AND start_time < $3`
	if key != "" {
		at, sid, ok := strings.Cut(key, "/")
		t, err1 := time.Parse(time.RFC3339Nano, at)
		id, err2 := hex.DecodeString(sid)
		if !ok || err1 != nil || err2 != nil {
			return nil, "", problem.Invalid(map[string]string{"cursor": "is not a cursor this server issued"})
		}
		where += ` AND (start_time, span_id) < (` + arg(t) + `, ` + arg(id) + `)`
	}
	if q.Service != "" {
		where += ` AND service = ` + arg(q.Service)
	}
	if q.Operation != "" {
		where += ` AND name = ` + arg(q.Operation)
	}
	if q.Status != "" {
		n, _ := statusNumber(q.Status)
		where += ` AND status_code = ` + arg(n)
	}
	if q.MinDuration > 0 {
		where += ` AND duration_ns >= ` + arg(q.MinDuration.Nanoseconds())
	}
	if q.MaxDuration > 0 {
		where += ` AND duration_ns <= ` + arg(q.MaxDuration.Nanoseconds())
	}
	var pairs []string
	for _, k := range slices.Sorted(mapKeys(q.Attributes)) {
		v := q.Attributes[k]
		if s.Indexed[k] {
			pairs = append(pairs, k+"="+v)
			continue
		}
		where += ` AND attributes ->> ` + arg(k) + ` = ` + arg(v)
	}
	if len(pairs) > 0 {
		where += ` AND attr_index @> ` + arg(pairs) + `::text[]`
	}
	scan := limit * scanFactor
	type hit struct {
		trace []byte
		start time.Time
		span  []byte
	}
	var hits []hit
	err = s.db.ReadTenant(ctx, tenant, fmt.Sprintf(`SELECT trace_id, start_time, span_id FROM spans WHERE %s ORDER BY start_time DESC, span_id DESC LIMIT %d`, where, scan),
		args, func(rows pgx.Rows) error {
			var h hit
			err := rows.Scan(&h.trace, &h.start, &h.span)
			hits = append(hits, h)
			return err
		})
	if err != nil {
		return nil, "", fmt.Errorf("search spans: %w", err)
	}
	// The page ends before the first span of a trace past limit; the next
	// one starts there.
	var ids [][]byte
	seen := map[string]bool{}
	used := 0
	for _, h := range hits {
		if !seen[string(h.trace)] {
			if len(ids) == limit {
				break
			}
			seen[string(h.trace)] = true
			ids = append(ids, h.trace)
		}
		used++
	}
	next := ""
	if used < len(hits) || len(hits) == scan {
		h := hits[used-1]
		next = database.EncodeCursor(h.start.UTC().Format(time.RFC3339Nano) + "/" + hex.EncodeToString(h.span))
	}
	traces, err := s.summaries(ctx, tenant, ids)
	return traces, next, err
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// summaries sums up the traces ids, in their order.
func (s *Store) summaries(ctx context.Context, tenant uuid.UUID, ids [][]byte) ([]Trace, error) {
	out := []Trace{}
	if len(ids) == 0 {
		return out, nil
	}
	byID := map[string]Trace{}
	err := s.db.ReadTenant(ctx, tenant, `SELECT trace_id, min(start_time),
			max(start_time + duration_ns * interval '1 microsecond' / 1000),
			count(DISTINCT span_id), count(DISTINCT span_id) FILTER (WHERE status_code = 2),
			array_agg(DISTINCT service ORDER BY service),
			(array_agg(service ORDER BY parent_span_id IS NOT NULL, start_time))[1],
			(array_agg(name ORDER BY parent_span_id IS NOT NULL, start_time))[1]
		FROM spans WHERE tenant_id = $1 AND trace_id = ANY($2) GROUP BY trace_id`,
		[]any{tenant, ids}, func(rows pgx.Rows) error {
			var t Trace
			var id []byte
			var end time.Time
			if err := rows.Scan(&id, &t.Start, &end, &t.Spans, &t.Errors, &t.Services, &t.RootService, &t.RootName); err != nil {
				return err
			}
			t.TraceID = hexID(id)
			t.DurationNs = end.Sub(t.Start).Nanoseconds()
			byID[t.TraceID] = t
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sum up traces: %w", err)
	}
	for _, id := range ids {
		if t, ok := byID[hexID(id)]; ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// ParseQuery reads a search (or a live tail's filter) from URL query
// parameters: service, operation, status, min_duration and max_duration
// (250ms, 2s), attr (key=value, repeated), since and until (RFC 3339).
func ParseQuery(v url.Values) (Query, error) {
	var q Query
	bad := problem.Fields{}
	text := func(name string) string {
		s := v.Get(name)
		bad.Check(utf8.ValidString(s) && !strings.ContainsRune(s, 0), name, "must be UTF-8 text without NUL")
		bad.Check(len(s) <= MaxNameBytes, name, fmt.Sprintf("is at most %d bytes", MaxNameBytes))
		return s
	}
	q.Service, q.Operation, q.Status = text("service"), text("operation"), v.Get("status")
	dur := func(name string) time.Duration {
		s := v.Get(name)
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		bad.Check(err == nil, name, "must be a duration such as 250ms or 2s")
		return d
	}
	q.MinDuration, q.MaxDuration = dur("min_duration"), dur("max_duration")
	when := func(name string) time.Time {
		s := v.Get(name)
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		bad.Check(err == nil, name, "must be an RFC 3339 time, such as 2026-12-01T10:00:00Z")
		return t
	}
	q.Since, q.Until = when("since"), when("until")
	for _, a := range v["attr"] {
		k, val, ok := strings.Cut(a, "=")
		if !ok || k == "" || !utf8.ValidString(a) || strings.ContainsRune(a, 0) || len(a) > MaxNameBytes {
			bad.Add("attr", "each must be key=value (UTF-8 text)")
			continue
		}
		if q.Attributes == nil {
			q.Attributes = map[string]string{}
		}
		q.Attributes[k] = val
	}
	return q, bad.Err()
}

// Filter is q's span filter, for the live tail.
func (q Query) Filter() Filter {
	return Filter{Service: q.Service, Operation: q.Operation, Status: q.Status, MinDuration: q.MinDuration, MaxDuration: q.MaxDuration, Attributes: q.Attributes}
}
