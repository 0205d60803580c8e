package tracing

import (
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Tail fans spans out, as they are stored, to live subscribers in memory.
// Publishing never waits for a subscriber: one whose buffer is full skips
// the batch and is told how many spans it skipped with its next one.
type Tail struct {
	mu   sync.RWMutex
	subs map[uuid.UUID]map[*TailSub]struct{}
	// onChange is told that a tenant's subscribers on this replica changed
	// (called with mu held: it must not block).
	onChange func(tenant uuid.UUID)
}

// setOnChange sets the tail's onChange.
func (t *Tail) setOnChange(fn func(tenant uuid.UUID)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onChange = fn
}

// NewTail returns a tail with no subscribers.
func NewTail() *Tail { return &Tail{subs: map[uuid.UUID]map[*TailSub]struct{}{}} }

// TailBuffer is how many batches wait for a subscriber before it skips.
const TailBuffer = 64

// TailSub is one live subscription.
type TailSub struct {
	f Filter
	// C carries batches of encoded spans (each a JSON object) that passed
	// the filter.
	C       chan [][]byte
	skipped atomic.Int64
}

// TakeSkipped returns how many spans were skipped since the last call.
func (s *TailSub) TakeSkipped() int64 { return s.skipped.Swap(0) }

// Filter is what a live subscriber wants: spans matching every field set.
type Filter struct {
	Service     string            `json:"service,omitempty"`
	Operation   string            `json:"operation,omitempty"`
	Status      string            `json:"status,omitempty"`
	MinDuration time.Duration     `json:"min_ns,omitempty"`
	MaxDuration time.Duration     `json:"max_ns,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
}

// Validate checks f.
func (f Filter) Validate() error {
	q := Query{Status: f.Status, MinDuration: f.MinDuration, MaxDuration: f.MaxDuration, Attributes: f.Attributes}
	return q.Validate(time.Now())
}

// Subscribe adds a subscriber of tenant's spans matching f; Unsubscribe it
// when done.
func (t *Tail) Subscribe(tenant uuid.UUID, f Filter) *TailSub {
	s := &TailSub{f: f, C: make(chan [][]byte, TailBuffer)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.subs[tenant] == nil {
		t.subs[tenant] = map[*TailSub]struct{}{}
	}
	t.subs[tenant][s] = struct{}{}
	if t.onChange != nil {
		t.onChange(tenant)
	}
	return s
}

// Unsubscribe removes s.
func (t *Tail) Unsubscribe(tenant uuid.UUID, s *TailSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subs[tenant], s)
	if len(t.subs[tenant]) == 0 {
		delete(t.subs, tenant)
	}
	if t.onChange != nil {
		t.onChange(tenant)
	}
}

// filters returns the filters of tenant's subscribers on this replica, each
// once.
func (t *Tail) filters(tenant uuid.UUID) []Filter {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Filter
	seen := map[string]bool{}
	for s := range t.subs[tenant] {
		k, _ := json.Marshal(s.f)
		if !seen[string(k)] {
			seen[string(k)] = true
			out = append(out, s.f)
		}
	}
	return out
}

// addSkipped tells each of tenant's subscribers that n spans were skipped
// before they reached this replica.
func (t *Tail) addSkipped(tenant uuid.UUID, n int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for s := range t.subs[tenant] {
		s.skipped.Add(n)
	}
}

// publish hands rows to tenant's subscribers; each row is encoded once,
// when the first subscriber wants it.
func (t *Tail) publish(tenant uuid.UUID, rows []row) {
	t.fanOut(tenant, len(rows), func(f *Filter, i int) bool { return f.match(&rows[i]) }, func(i int) []byte { return rows[i].summary() })
}

// fanOut hands n spans to tenant's subscribers whose filter match says
// they want them, each encoded (by encode) once, never waiting for one.
func (t *Tail) fanOut(tenant uuid.UUID, n int, match func(f *Filter, i int) bool, encode func(i int) []byte) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	subs := t.subs[tenant]
	if len(subs) == 0 {
		return
	}
	encoded := make([][]byte, n)
	for s := range subs {
		var batch [][]byte
		for i := range n {
			if !match(&s.f, i) {
				continue
			}
			if encoded[i] == nil {
				encoded[i] = encode(i)
			}
			batch = append(batch, encoded[i])
		}
		if len(batch) == 0 {
			continue
		}
		select {
		case s.C <- batch:
		default:
			s.skipped.Add(int64(len(batch)))
		}
	}
}

// tenants returns the tenants with subscribers on this replica.
func (t *Tail) tenants() []uuid.UUID {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]uuid.UUID, 0, len(t.subs))
	for id := range t.subs {
		out = append(out, id)
	}
	return out
}

func (f *Filter) match(r *row) bool {
	return f.matchFields(r.service, r.name, statusName(r.status), r.durationNs, func(k string) (string, bool) {
		v, ok := r.attrs.Get(k)
		if !ok {
			return "", false
		}
		return scalarText(v)
	})
}

// matchFields is the filter on a span's fields; attr reads an attribute's
// value as text.
func (f *Filter) matchFields(service, name, status string, durationNs int64, attr func(k string) (string, bool)) bool {
	if f.Service != "" && service != f.Service || f.Operation != "" && name != f.Operation {
		return false
	}
	if f.Status != "" && status != f.Status {
		return false
	}
	if f.MinDuration > 0 && durationNs < f.MinDuration.Nanoseconds() || f.MaxDuration > 0 && durationNs > f.MaxDuration.Nanoseconds() {
		return false
	}
	for k, want := range f.Attributes {
		if got, ok := attr(k); !ok || got != want {
			return false
		}
	}
	return true
}

// summary is the row as the live tail sends it: a Span without resource,
// events and links (the trace page reads those).
func (r *row) summary() []byte {
	b := make([]byte, 0, 256+len(r.attributes))
	b = append(b, `{"trace_id":"`...)
	b = appendHex(b, r.traceID)
	b = append(b, `","span_id":"`...)
	b = appendHex(b, r.spanID)
	b = append(b, '"')
	if r.parentID != nil {
		b = append(b, `,"parent_span_id":"`...)
		b = appendHex(b, r.parentID)
		b = append(b, '"')
	}
	b = append(b, `,"service":`...)
	b = appendString(b, r.service)
	b = append(b, `,"name":`...)
	b = appendString(b, r.name)
	b = append(b, `,"kind":"`...)
	b = append(b, kindName(r.kind)...)
	b = append(b, `","start":"`...)
	b = r.start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","duration_ns":`...)
	b = strconv.AppendInt(b, r.durationNs, 10)
	b = append(b, `,"status":"`...)
	b = append(b, statusName(r.status)...)
	b = append(b, '"')
	if r.statusMessage != "" {
		b = append(b, `,"status_message":`...)
		b = appendString(b, r.statusMessage)
	}
	b = append(b, `,"attributes":`...)
	b = append(b, r.attributes...)
	return append(b, '}')
}

func appendHex(b, id []byte) []byte {
	for _, c := range id {
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}
