package tracing

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"switchboard/internal/live"
)

// The live tail across replicas. A span is stored by the replica its
// exporter reached; a browser may follow the tail on another. Each replica
// tells the others, through the live hub, which tenants it has tail
// subscribers for and with which filters (when that changes, and again
// every interestEvery; an announcement lapses after interestTTL). The
// replica that stores spans sends those matching another replica's
// filters to the tenant's hub topic, a few spans a note; the replicas with
// subscribers follow that topic and hand the spans on to their own
// subscribers as if stored there. Nothing crosses replicas for a tenant
// nobody elsewhere watches.
const (
	interestTopic = "trace-tail-interest"
	spansTopic    = "trace-tail"
	interestEvery = 20 * time.Second
	interestTTL   = 3 * interestEvery
	// relayNote is the most span summaries a note carries, in bytes
	// (the hub's limit is a little under 8,000 with the envelope).
	relayNote = 6500
	// RelayPerSecond bounds the spans a replica relays for one tenant: a
	// tail is for people to read; the rest are counted as skipped.
	RelayPerSecond = 2000
)

// interest is one replica's announcement.
type interest struct {
	Replica string    `json:"r"`
	Tenant  uuid.UUID `json:"t"`
	Filters []Filter  `json:"f"` // none: it has no subscribers any more
}

// relayed is a note of relayed spans.
type relayed struct {
	Replica string            `json:"r"`
	Spans   []json.RawMessage `json:"s"`
	// Skipped is how many matching spans were not relayed (over the rate).
	Skipped int64 `json:"k,omitempty"`
}

type remoteFilters struct {
	filters []Filter
	until   time.Time
}

// Relay carries the live tail between replicas; see above. Start it with
// StartRelay and Close it on shutdown.
type Relay struct {
	hub     *live.Hub
	tail    *Tail
	replica string
	log     *slog.Logger

	mu      sync.Mutex
	remote  map[uuid.UUID]map[string]remoteFilters // tenant → replica → filters
	follow  map[uuid.UUID]func()                   // tenants whose spans topic this replica follows: stop
	limits  map[uuid.UUID]*rate.Limiter
	changed map[uuid.UUID]bool
	wake    chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartRelay starts relaying s's live tail through hub.
func (s *Store) StartRelay(hub *live.Hub, log *slog.Logger) *Relay {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{hub: hub, tail: s.Tail, replica: uuid.NewString(), log: log,
		remote: map[uuid.UUID]map[string]remoteFilters{}, follow: map[uuid.UUID]func(){}, limits: map[uuid.UUID]*rate.Limiter{},
		changed: map[uuid.UUID]bool{}, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	s.Tail.setOnChange(r.localChanged)
	s.relay = r
	r.wg.Add(2)
	go r.readInterest()
	go r.announce()
	return r
}

// Close stops the relay.
func (r *Relay) Close() {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, stop := range r.follow {
		stop()
		delete(r.follow, t)
	}
}

// localChanged is told that tenant's local subscribers changed (called
// with the tail's lock held: it only marks and wakes).
func (r *Relay) localChanged(tenant uuid.UUID) {
	r.mu.Lock()
	r.changed[tenant] = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// announce tells the other replicas of this one's tail subscribers when
// they change and every interestEvery, and follows the spans topic of
// each tenant that has some.
func (r *Relay) announce() {
	defer r.wg.Done()
	tick := time.NewTicker(interestEvery)
	defer tick.Stop()
	for {
		all := false
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		case <-tick.C:
			all = true
		}
		r.mu.Lock()
		tenants := r.changed
		r.changed = map[uuid.UUID]bool{}
		r.mu.Unlock()
		if all {
			for _, t := range r.tail.tenants() {
				tenants[t] = true
			}
		}
		for t := range tenants {
			fs := r.tail.filters(t)
			r.setFollow(t, len(fs) > 0)
			in := interest{Replica: r.replica, Tenant: t, Filters: fs}
			if raw, _ := json.Marshal(in); len(raw) > relayNote && len(fs) > 0 {
				// Too many filters for a note: ask for every span, and
				// filter here, as for any relayed span.
				in.Filters = []Filter{{}}
			}
			// One note a tenant: one that fails does not silence the others.
			ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
			if err := r.hub.Publish(ctx, interestTopic, uuid.Nil, "interest", 0, in); err != nil && r.ctx.Err() == nil {
				r.log.Warn("trace tail: announcing subscribers to the other replicas failed", "tenant", t, "err", err)
			}
			cancel()
		}
	}
}

// readInterest keeps what the other replicas announce.
func (r *Relay) readInterest() {
	defer r.wg.Done()
	for r.ctx.Err() == nil {
		src := r.hub.Subscribe(interestTopic, uuid.Nil)
		r.drain(r.ctx, src, func(m live.Message) {
			var in interest
			if raw, ok := m.Data.(json.RawMessage); !ok || json.Unmarshal(raw, &in) != nil || in.Replica == r.replica {
				return
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(in.Filters) == 0 {
				delete(r.remote[in.Tenant], in.Replica)
				return
			}
			if r.remote[in.Tenant] == nil {
				r.remote[in.Tenant] = map[string]remoteFilters{}
			}
			r.remote[in.Tenant][in.Replica] = remoteFilters{filters: in.Filters, until: time.Now().Add(interestTTL)}
		})
		src.Close()
	}
}

// drain hands src's messages to fn until it ends or ctx does.
func (r *Relay) drain(ctx context.Context, src live.Source, fn func(live.Message)) {
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-src.C:
			if !ok {
				return
			}
			fn(m)
		}
	}
}

// setFollow follows (or stops following) tenant's relayed spans.
func (r *Relay) setFollow(tenant uuid.UUID, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	stop, following := r.follow[tenant]
	switch {
	case on && !following:
		ctx, cancel := context.WithCancel(r.ctx)
		r.follow[tenant] = cancel
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for ctx.Err() == nil {
				src := r.hub.Subscribe(spansTopic, tenant)
				r.drain(ctx, src, func(m live.Message) { r.received(ctx, tenant, m) })
				src.Close()
			}
		}()
	case !on && following:
		stop()
		delete(r.follow, tenant)
	}
}

// received hands relayed spans to this replica's subscribers.
func (r *Relay) received(ctx context.Context, tenant uuid.UUID, m live.Message) {
	if ctx.Err() != nil {
		return
	}
	var in relayed
	if raw, ok := m.Data.(json.RawMessage); !ok || json.Unmarshal(raw, &in) != nil || in.Replica == r.replica {
		return
	}
	spans := make([]relaySpan, len(in.Spans))
	for i, raw := range in.Spans {
		if json.Unmarshal(raw, &spans[i]) != nil {
			spans[i].bad = true
		}
	}
	r.tail.fanOut(tenant, len(spans), func(f *Filter, i int) bool { return !spans[i].bad && spans[i].matches(f) },
		func(i int) []byte { return in.Spans[i] })
	if in.Skipped > 0 {
		r.tail.addSkipped(tenant, in.Skipped)
	}
}

// relaySpan is a relayed span's summary, read for the filters.
type relaySpan struct {
	Service    string                     `json:"service"`
	Name       string                     `json:"name"`
	Status     string                     `json:"status"`
	DurationNs int64                      `json:"duration_ns"`
	Attributes map[string]json.RawMessage `json:"attributes"`
	bad        bool
}

func (s *relaySpan) matches(f *Filter) bool {
	return f.matchFields(s.Service, s.Name, s.Status, s.DurationNs, func(k string) (string, bool) {
		raw, ok := s.Attributes[k]
		if !ok {
			return "", false
		}
		var str string
		if json.Unmarshal(raw, &str) == nil {
			return str, true
		}
		if len(raw) > 0 && (raw[0] == '{' || raw[0] == '[') {
			return "", false // not a scalar: no filter matches it
		}
		return string(raw), true // a number or a boolean, as written
	})
}

// encodedLen is how long raw (JSON) is once the hub has encoded it again:
// encoding/json writes <, > and & as \u003c and the like, and U+2028 and
// U+2029 escaped.
func encodedLen(raw []byte) int {
	n := len(raw)
	for i, c := range raw {
		switch {
		case c == '<' || c == '>' || c == '&':
			n += 5
		case c == 0xe2 && i+2 < len(raw) && raw[i+1] == 0x80 && (raw[i+2] == 0xa8 || raw[i+2] == 0xa9):
			n += 3
		}
	}
	return n
}

// send relays tenant's just-stored rows that another replica's
// subscribers want.
func (r *Relay) send(ctx context.Context, tenant uuid.UUID, rows []row) {
	r.mu.Lock()
	var filters []Filter
	now := time.Now()
	for rep, rf := range r.remote[tenant] {
		if now.After(rf.until) {
			delete(r.remote[tenant], rep)
			continue
		}
		filters = append(filters, rf.filters...)
	}
	lim := r.limits[tenant]
	if lim == nil && len(filters) > 0 {
		lim = rate.NewLimiter(RelayPerSecond, RelayPerSecond)
		r.limits[tenant] = lim
	}
	r.mu.Unlock()
	if len(filters) == 0 {
		return
	}
	var notes []live.Note
	cur := relayed{Replica: r.replica}
	size := 0
	var skipped int64
	for i := range rows {
		wanted := false
		for j := range filters {
			if filters[j].match(&rows[i]) {
				wanted = true
				break
			}
		}
		if !wanted {
			continue
		}
		if !lim.AllowN(now, 1) {
			skipped++
			continue
		}
		sum := rows[i].summary()
		n := encodedLen(sum)
		if n > relayNote {
			skipped++
			continue
		}
		if size+n > relayNote {
			notes = append(notes, live.Note{Topic: spansTopic, Tenant: tenant, Type: "spans", Data: cur})
			cur, size = relayed{Replica: r.replica}, 0
		}
		cur.Spans = append(cur.Spans, sum)
		size += n + 1
	}
	cur.Skipped = skipped
	if len(cur.Spans) > 0 || skipped > 0 {
		notes = append(notes, live.Note{Topic: spansTopic, Tenant: tenant, Type: "spans", Data: cur})
	}
	if len(notes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.hub.PublishAll(ctx, notes); err != nil {
		r.log.Warn("trace tail: relaying spans to the other replicas failed", "tenant", tenant, "spans", strconv.Itoa(len(rows)), "err", err)
	}
}
