package lockd

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"

	"switchboard/internal/problem"
)

// The state machine. Its rules, kept by the code below:
//
//   - Determinism. Apply reads nothing but the log entry and the state: no
//     clock, no randomness, no map iteration order that reaches the state,
//     no configuration. "Now" is the proposing leader's clock stamped into
//     the command; the state's clock is the largest stamp applied so far, so
//     it never runs backwards in log order. Tokens and request ids are drawn
//     by the proposer and travel in the command.
//   - One holder. A lease entry exists only while someone holds it; waiters
//     queue behind a holder and never exist without one. A lease changes
//     holder only inside settle/endHolder, which first ends the old holder.
//   - Fencing. A grant's fencing token is the index of the log entry that
//     made it. Every grant of one lease happens in a later entry than the
//     previous one, so fencing tokens of a lease strictly increase, across
//     leaders and restarts alike (the log is durable and indexes never
//     repeat).
//   - No early end. A holder is ended only by its own release or by settle
//     when state time has reached its ExpiresAt; a new leader's promote entry
//     first moves every ExpiresAt to at least promote time + grace.

// leaseKey names a lock or an election of a tenant.
type leaseKey struct {
	Kind   leaseKind
	Tenant uuid.UUID
	Name   string
}

// lease is a held lock or a won election with its FIFO queue of waiters.
type lease struct {
	Owner     string   `json:"o"`
	Token     string   `json:"tok"`
	Fencing   uint64   `json:"f"`   // index of the granting entry
	TTL       int64    `json:"ttl"` // ns, of the current grant or renewal
	ExpiresAt int64    `json:"exp"` // state-clock ns
	Waiters   []waiter `json:"w,omitempty"`
}

// waiter is a queued acquire; it becomes the holder when the lease is free
// and its Deadline has not passed.
type waiter struct {
	Owner    string `json:"o"`
	Token    string `json:"tok"`
	Request  string `json:"req"`
	TTL      int64  `json:"ttl"`
	Deadline int64  `json:"dl"`
}

type kvEntry struct {
	Value          []byte
	Revision       uint64
	CreateRevision uint64
}

// grant describes a lease holder as an apply result or a waiter wake-up.
type grant struct {
	Key       leaseKey
	Owner     string
	Token     string
	Fencing   uint64
	ExpiresAt int64
}

// applyResult is what Apply returns for a command; the proposer finds it in
// the ApplyFuture's Response.
type applyResult struct {
	err    error  // a *problem.Error for refusals, another error for bad entries
	grant  *grant // acquire granted at once / cancel lost the race / renew
	queued bool   // acquire queued the caller
	kv     *KV    // put or delete
}

// fsmEvent is a change a subscriber may want to see.
type fsmEvent struct {
	index uint64 // of the log entry whose apply made the change
	lease *leaseEvent
	kv    *kvEvent
}

type leaseEvent struct {
	key       leaseKey
	typ       EventType
	owner     string
	fencing   uint64
	expiresAt int64
}

type kvEvent struct {
	tenant   uuid.UUID
	key      string
	typ      EventType
	value    []byte
	revision uint64
}

// fsmHooks lets the node hear about what Apply did. Hooks run with the
// state locked and must not block or call back into the fsm.
type fsmHooks interface {
	// granted wakes the waiter that queued with request.
	granted(request string, g grant)
	// event publishes a change to subscribers.
	event(e fsmEvent)
	// reset tells waiters and subscribers that the state was replaced.
	reset()
}

type nopHooks struct{}

func (nopHooks) granted(string, grant) {}
func (nopHooks) event(fsmEvent)        {}
func (nopHooks) reset()                {}

// fsm is the replicated state machine.
type fsm struct {
	hooks fsmHooks // set before Raft starts; never changes

	mu sync.RWMutex // guards now, leases and kv; Apply writes, reads share
	// now is the state clock: the largest leader stamp applied (Unix ns).
	now    int64
	leases map[leaseKey]*lease
	kv     map[uuid.UUID]map[string]*kvEntry
	// applied is the index of the last log entry applied (or restored).
	applied uint64
	// advanced, when not nil, is closed when applied next grows: waitApplied
	// makes it, so Apply pays nothing while no one waits.
	advanced chan struct{}
}

var (
	_ raft.FSM         = (*fsm)(nil)
	_ raft.BatchingFSM = (*fsm)(nil)
)

func newFSM(h fsmHooks) *fsm {
	if h == nil {
		h = nopHooks{}
	}
	return &fsm{hooks: h, leases: map[leaseKey]*lease{}, kv: map[uuid.UUID]map[string]*kvEntry{}}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.advanceLocked()
	return f.applyLocked(l)
}

// ApplyBatch implements raft.BatchingFSM: one lock round trip per batch.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.advanceLocked()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.applyLocked(l)
	}
	return out
}

// advanceLocked wakes the waiters for applied to grow.
func (f *fsm) advanceLocked() {
	if f.advanced != nil {
		close(f.advanced)
		f.advanced = nil
	}
}

// waitApplied blocks until the state includes log entry index, ctx ends
// or stop closes (errShuttingDown).
func (f *fsm) waitApplied(ctx context.Context, index uint64, stop <-chan struct{}) error {
	for {
		f.mu.Lock()
		if f.applied >= index {
			f.mu.Unlock()
			return nil
		}
		if f.advanced == nil {
			f.advanced = make(chan struct{})
		}
		advanced := f.advanced
		f.mu.Unlock()
		select {
		case <-advanced:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errShuttingDown
		}
	}
}

// event stamps e with the entry being applied and publishes it.
func (f *fsm) event(e fsmEvent) {
	e.index = f.applied
	f.hooks.event(e)
}

func (f *fsm) applyLocked(l *raft.Log) any {
	f.applied = max(f.applied, l.Index)
	if l.Type != raft.LogCommand {
		return nil // configuration changes carry no state of ours
	}
	c, err := decodeCommand(l.Data)
	if err != nil {
		// Only a bug or a corrupt entry gets here (proposers validate). It is
		// rejected the same way on every node, so the state stays identical.
		return applyResult{err: fmt.Errorf("lockd: rejected log entry %d: %w", l.Index, err)}
	}
	f.now = max(f.now, c.Now)
	switch c.Type {
	case cmdAcquire:
		return f.acquire(c, l.Index)
	case cmdRenew:
		return f.renew(c, l.Index)
	case cmdRelease:
		return f.release(c, l.Index)
	case cmdCancelWait:
		return f.cancelWait(c, l.Index)
	case cmdExpire:
		for _, r := range c.Keys {
			if ls := f.leases[r.key()]; ls != nil {
				f.settle(r.key(), ls, l.Index)
			}
		}
		return applyResult{}
	case cmdPromote:
		return f.promote(c)
	case cmdPut:
		return f.put(c, l.Index)
	case cmdDelete:
		return f.del(c, l.Index)
	}
	return applyResult{err: fmt.Errorf("lockd: unhandled command %s", c.Type)} // unreachable: check() rejects
}

func (c command) leaseKey() leaseKey { return leaseKey{Kind: c.Kind, Tenant: c.Tenant, Name: c.Name} }

// lookup returns the lease at k settled as of the state clock, or nil.
func (f *fsm) lookup(k leaseKey, index uint64) *lease {
	ls := f.leases[k]
	if ls == nil {
		return nil
	}
	return f.settle(k, ls, index)
}

// settle brings the lease at k up to the state clock: a holder whose lease
// has run out ends (the next live waiter is granted in this entry), and
// waiters past their deadline leave the queue. It returns the lease, or nil
// when the entry is gone.
func (f *fsm) settle(k leaseKey, ls *lease, index uint64) *lease {
	if f.now >= ls.ExpiresAt {
		return f.endHolder(k, ls, EventExpired, index)
	}
	ls.Waiters = slices.DeleteFunc(ls.Waiters, func(w waiter) bool { return w.Deadline < f.now })
	return ls
}

// endHolder ends the current holder and hands the lease to the first waiter
// whose deadline has not passed, with this entry's index as fencing token.
// With no such waiter the entry is removed.
func (f *fsm) endHolder(k leaseKey, ls *lease, why EventType, index uint64) *lease {
	f.event(fsmEvent{lease: &leaseEvent{key: k, typ: why, owner: ls.Owner, fencing: ls.Fencing, expiresAt: ls.ExpiresAt}})
	for len(ls.Waiters) > 0 {
		w := ls.Waiters[0]
		ls.Waiters = ls.Waiters[1:]
		if w.Deadline < f.now {
			continue // its caller has given up; never grant to it
		}
		ls.Owner, ls.Token, ls.Fencing, ls.TTL, ls.ExpiresAt = w.Owner, w.Token, index, w.TTL, f.now+w.TTL
		ls.Waiters = slices.DeleteFunc(ls.Waiters, func(w waiter) bool { return w.Deadline < f.now })
		if len(ls.Waiters) == 0 {
			ls.Waiters = nil
		}
		g := ls.grant(k)
		f.hooks.granted(w.Request, g)
		f.event(fsmEvent{lease: &leaseEvent{key: k, typ: EventAcquired, owner: ls.Owner, fencing: ls.Fencing, expiresAt: ls.ExpiresAt}})
		return ls
	}
	delete(f.leases, k)
	return nil
}

func (ls *lease) grant(k leaseKey) grant {
	return grant{Key: k, Owner: ls.Owner, Token: ls.Token, Fencing: ls.Fencing, ExpiresAt: ls.ExpiresAt}
}

func (f *fsm) acquire(c command, index uint64) applyResult {
	k := c.leaseKey()
	ls := f.lookup(k, index)
	if ls == nil {
		ls = &lease{Owner: c.Owner, Token: c.Token, Fencing: index, TTL: c.TTL, ExpiresAt: f.now + c.TTL}
		f.leases[k] = ls
		f.event(fsmEvent{lease: &leaseEvent{key: k, typ: EventAcquired, owner: ls.Owner, fencing: ls.Fencing, expiresAt: ls.ExpiresAt}})
		g := ls.grant(k)
		return applyResult{grant: &g}
	}
	if ls.Token == c.Token || slices.ContainsFunc(ls.Waiters, func(w waiter) bool { return w.Token == c.Token || w.Request == c.Request }) {
		// Tokens are 128 random bits; a repeat means a replayed proposal.
		return applyResult{err: problem.Errorf(problem.CodeConflict, "duplicate token")}
	}
	if c.Wait == 0 {
		return applyResult{err: problem.Errorf(problem.CodeConflict, "%s %q is held by %q", k.Kind, k.Name, ls.Owner)}
	}
	if len(ls.Waiters) >= MaxWaiters {
		return applyResult{err: problem.Errorf(problem.CodeConflict, "%s %q has %d waiters already", k.Kind, k.Name, len(ls.Waiters))}
	}
	ls.Waiters = append(ls.Waiters, waiter{Owner: c.Owner, Token: c.Token, Request: c.Request, TTL: c.TTL, Deadline: f.now + c.Wait})
	return applyResult{queued: true}
}

func (f *fsm) renew(c command, index uint64) applyResult {
	k := c.leaseKey()
	ls := f.lookup(k, index)
	if ls == nil {
		return applyResult{err: problem.Errorf(problem.CodeNotFound, "%s %q is not held (its lease may have expired)", k.Kind, k.Name)}
	}
	if ls.Token != c.Token {
		return applyResult{err: problem.Errorf(problem.CodeConflict, "%s %q is held under another token", k.Kind, k.Name)}
	}
	ls.TTL, ls.ExpiresAt = c.TTL, f.now+c.TTL
	f.event(fsmEvent{lease: &leaseEvent{key: k, typ: EventRenewed, owner: ls.Owner, fencing: ls.Fencing, expiresAt: ls.ExpiresAt}})
	g := ls.grant(k)
	return applyResult{grant: &g}
}

func (f *fsm) release(c command, index uint64) applyResult {
	k := c.leaseKey()
	ls := f.lookup(k, index)
	if ls == nil {
		return applyResult{err: problem.Errorf(problem.CodeNotFound, "%s %q is not held (its lease may have expired)", k.Kind, k.Name)}
	}
	if ls.Token != c.Token {
		return applyResult{err: problem.Errorf(problem.CodeConflict, "%s %q is held under another token", k.Kind, k.Name)}
	}
	f.endHolder(k, ls, EventReleased, index)
	return applyResult{}
}

// cancelWait withdraws a waiter. If the waiter was granted before the cancel
// reached the log, the grant stands and is returned: the caller owns it.
func (f *fsm) cancelWait(c command, index uint64) applyResult {
	k := c.leaseKey()
	notAcquired := applyResult{err: problem.Errorf(problem.CodeConflict, "%s %q was not acquired within the wait", k.Kind, k.Name)}
	ls := f.lookup(k, index)
	if ls == nil {
		return notAcquired
	}
	if ls.Token == c.Token {
		g := ls.grant(k)
		return applyResult{grant: &g}
	}
	ls.Waiters = slices.DeleteFunc(ls.Waiters, func(w waiter) bool { return w.Request == c.Request && w.Token == c.Token })
	if len(ls.Waiters) == 0 {
		ls.Waiters = nil
	}
	return notAcquired
}

// promote applies a new leader's grace rule: every lease lasts at least until
// promote time + grace, whatever the old leader's clock said.
func (f *fsm) promote(c command) applyResult {
	floor := f.now + c.Grace
	for k, ls := range f.leases { // order-independent: each lease changes alone
		if ls.ExpiresAt < floor {
			ls.ExpiresAt = floor
			f.event(fsmEvent{lease: &leaseEvent{key: k, typ: EventRenewed, owner: ls.Owner, fencing: ls.Fencing, expiresAt: ls.ExpiresAt}})
		}
	}
	return applyResult{}
}

func (f *fsm) put(c command, index uint64) applyResult {
	m := f.kv[c.Tenant]
	e := m[c.Name]
	switch {
	case c.IfAbsent && e != nil:
		return applyResult{err: problem.Errorf(problem.CodePrecondition, "key %q exists (revision %d)", c.Name, e.Revision)}
	case c.IfRevision != 0 && e == nil:
		return applyResult{err: problem.Errorf(problem.CodePrecondition, "key %q does not exist", c.Name)}
	case c.IfRevision != 0 && e.Revision != c.IfRevision:
		return applyResult{err: problem.Errorf(problem.CodePrecondition, "key %q is at revision %d, not %d", c.Name, e.Revision, c.IfRevision)}
	}
	if m == nil {
		m = map[string]*kvEntry{}
		f.kv[c.Tenant] = m
	}
	created := index
	if e != nil {
		created = e.CreateRevision
	}
	value := c.Value
	if value == nil {
		value = []byte{}
	}
	m[c.Name] = &kvEntry{Value: value, Revision: index, CreateRevision: created}
	f.event(fsmEvent{kv: &kvEvent{tenant: c.Tenant, key: c.Name, typ: EventPut, value: value, revision: index}})
	return applyResult{kv: &KV{Key: c.Name, Value: bytes.Clone(value), Revision: index, CreateRevision: created}}
}

func (f *fsm) del(c command, index uint64) applyResult {
	m := f.kv[c.Tenant]
	e := m[c.Name]
	switch {
	case e == nil:
		return applyResult{err: problem.NotFound("key", c.Name)}
	case c.IfRevision != 0 && e.Revision != c.IfRevision:
		return applyResult{err: problem.Errorf(problem.CodePrecondition, "key %q is at revision %d, not %d", c.Name, e.Revision, c.IfRevision)}
	}
	delete(m, c.Name)
	if len(m) == 0 {
		delete(f.kv, c.Tenant)
	}
	f.event(fsmEvent{kv: &kvEvent{tenant: c.Tenant, key: c.Name, typ: EventDeleted, revision: index}})
	return applyResult{kv: &KV{Key: c.Name, Revision: index, CreateRevision: e.CreateRevision}}
}

// Snapshots.

// snapshotVersion is the format of persisted snapshots.
const snapshotVersion = 1

// fsmState is the canonical, sorted form of the state: snapshots persist it
// and tests compare nodes by it.
type fsmState struct {
	Version int       `json:"version"`
	Now     int64     `json:"now"`
	Index   uint64    `json:"index,omitempty"` // last applied; absent before it was kept
	Leases  []snapKey `json:"leases"`
	KV      []snapKV  `json:"kv"`
}

type snapKey struct {
	Kind   leaseKind `json:"k"`
	Tenant uuid.UUID `json:"ten"`
	Name   string    `json:"n"`
	lease
}

type snapKV struct {
	Tenant         uuid.UUID `json:"ten"`
	Key            string    `json:"key"`
	Value          []byte    `json:"v"`
	Revision       uint64    `json:"rev"`
	CreateRevision uint64    `json:"crev"`
}

// stateLocked copies the state; values and waiter slices are copied so the
// copy stays valid while Apply goes on. The caller holds f.mu.
func (f *fsm) stateLocked() *fsmState {
	s := &fsmState{Version: snapshotVersion, Now: f.now, Index: f.applied}
	for k, ls := range f.leases {
		cp := *ls
		cp.Waiters = slices.Clone(ls.Waiters)
		s.Leases = append(s.Leases, snapKey{Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, lease: cp})
	}
	for t, m := range f.kv {
		for key, e := range m {
			// Values are never mutated in place (put stores a new entry), so
			// sharing the slice is safe.
			s.KV = append(s.KV, snapKV{Tenant: t, Key: key, Value: e.Value, Revision: e.Revision, CreateRevision: e.CreateRevision})
		}
	}
	return s
}

// sort puts the state in canonical order.
func (s *fsmState) sort() {
	slices.SortFunc(s.Leases, func(a, b snapKey) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), bytes.Compare(a.Tenant[:], b.Tenant[:]), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(s.KV, func(a, b snapKV) int {
		return cmp.Or(bytes.Compare(a.Tenant[:], b.Tenant[:]), cmp.Compare(a.Key, b.Key))
	})
}

// Snapshot implements raft.FSM. It copies under the read lock; encoding
// happens in Persist, off the apply path.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{state: f.stateLocked()}, nil
}

type fsmSnapshot struct{ state *fsmState }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	s.state.sort()
	if err := json.NewEncoder(sink).Encode(s.state); err != nil {
		_ = sink.Cancel() // the encode error is the one to report
		return fmt.Errorf("lockd: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

// Restore implements raft.FSM: it replaces the whole state.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s fsmState
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("lockd: restore snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("lockd: restore snapshot: unknown version %d", s.Version)
	}
	leases := make(map[leaseKey]*lease, len(s.Leases))
	for _, l := range s.Leases {
		ls := l.lease
		leases[leaseKey{Kind: l.Kind, Tenant: l.Tenant, Name: l.Name}] = &ls
	}
	kv := map[uuid.UUID]map[string]*kvEntry{}
	for _, e := range s.KV {
		m := kv[e.Tenant]
		if m == nil {
			m = map[string]*kvEntry{}
			kv[e.Tenant] = m
		}
		v := e.Value
		if v == nil {
			v = []byte{}
		}
		m[e.Key] = &kvEntry{Value: v, Revision: e.Revision, CreateRevision: e.CreateRevision}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now, f.leases, f.kv = s.Now, leases, kv
	f.applied = max(f.applied, s.Index)
	f.advanceLocked()
	f.hooks.reset()
	return nil
}
