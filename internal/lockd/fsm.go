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
//   - Numbering. Every number a tenant sees (fencing token, term, KV
//     revision, event index) is a value of that tenant's revision, which
//     revise advances once in each entry that changes the tenant's state
//     (each command of a batch entry counts as an entry: applyCommand);
//     every code path that changes a tenant's leases, waiters or keys calls
//     it, and a change takes its number from it. A grant's fencing token
//     is the revision of the entry that made it; every grant of one lease
//     comes in a later entry than the previous one, so fencing tokens of a
//     lease strictly increase. The counters live in the state and its
//     snapshots, so this holds across leaders, restarts and restores.
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
	Fencing   uint64   `json:"f"`   // the tenant's revision at the grant
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
	// batch holds the result of each command of a batch entry, in order
	// (err is then set only when the whole entry was refused).
	batch []applyResult
}

// fsmEvent is a change a subscriber may want to see.
type fsmEvent struct {
	index uint64 // the tenant's revision at the change
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

	mu sync.RWMutex // guards every field below; Apply writes, reads share
	// now is the state clock: the largest leader stamp applied (Unix ns).
	now    int64
	leases map[leaseKey]*lease
	kv     map[uuid.UUID]map[string]*kvEntry
	// revs holds each tenant's revision counter (see revision). A tenant's
	// counter is kept for ever, even when it holds nothing: dropping it
	// would start the tenant's numbers again from the floor and re-issue
	// fencing tokens and revisions handed out before.
	revs map[uuid.UUID]uint64
	// floor is the least revision of every tenant: the highest Raft index
	// that earlier versions, which numbered everything by Raft index, may
	// have handed out (from a snapshot they wrote or a version 1 entry). It
	// is 0 in a group that never ran them.
	floor uint64
	// entry is the log entry being applied; only applyLocked and revise
	// use it.
	entry struct {
		index  uint64
		legacy bool // a version 1 command: numbered by its Raft index
		// revs holds the revision each tenant changed by this entry took,
		// so every change of one tenant in one entry shares it.
		revs map[uuid.UUID]uint64
	}
	// applied is the index of the last log entry applied (or restored),
	// kept in snapshots for whoever reads them. It counts every tenant's
	// writes, so it is never shown to a tenant.
	applied uint64
	// advanced, when not nil, is closed when the state next changes:
	// waitRevision makes it, so Apply pays nothing while no one waits.
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
	f := &fsm{hooks: h, leases: map[leaseKey]*lease{}, kv: map[uuid.UUID]map[string]*kvEntry{}, revs: map[uuid.UUID]uint64{}}
	f.entry.revs = map[uuid.UUID]uint64{}
	return f
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

// advanceLocked wakes the waiters for a revision to grow.
func (f *fsm) advanceLocked() {
	if f.advanced != nil {
		close(f.advanced)
		f.advanced = nil
	}
}

// revision is tenant t's revision: the number of its latest change, or the
// floor when it has changed nothing since. The caller holds f.mu.
func (f *fsm) revision(t uuid.UUID) uint64 { return max(f.revs[t], f.floor) }

// revise advances tenant t's revision for a change the entry being applied
// makes to t's state, and returns the revision the change carries. The
// first change of t in an entry advances the counter; later ones in the
// same entry share its value, so one step of a tenant's state (a release
// and the grant to the next waiter, say) has one number, and the counter
// moves only with the tenant's own changes, never with another tenant's.
//
// A version 1 entry keeps the number earlier versions gave it, its Raft
// index, so a fencing token or revision handed out before an upgrade means
// the same after it; applyLocked then raises the floor to that index. The
// max keeps the counter increasing even if such an entry came after newer
// ones.
func (f *fsm) revise(t uuid.UUID) uint64 {
	if r, ok := f.entry.revs[t]; ok {
		return r
	}
	r := f.revision(t) + 1
	if f.entry.legacy {
		r = max(r, f.entry.index)
	}
	f.revs[t] = r
	f.entry.revs[t] = r
	return r
}

// waitRevision blocks until tenant's revision reaches revision (the state
// then includes the change numbered revision and every earlier change of
// the tenant), ctx ends or stop closes (errShuttingDown).
func (f *fsm) waitRevision(ctx context.Context, tenant uuid.UUID, revision uint64, stop <-chan struct{}) error {
	for {
		f.mu.Lock()
		if f.revision(tenant) >= revision {
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

// leaseEvent publishes a change of the lease at k with the revision it took
// (revise was called for the change; calling it again returns the same).
func (f *fsm) leaseEvent(k leaseKey, typ EventType, ls *lease) {
	f.hooks.event(fsmEvent{index: f.revise(k.Tenant), lease: &leaseEvent{key: k, typ: typ, owner: ls.Owner, fencing: ls.Fencing, expiresAt: ls.ExpiresAt}})
}

func (f *fsm) applyLocked(l *raft.Log) any {
	f.applied = max(f.applied, l.Index)
	if l.Type != raft.LogCommand {
		return nil // configuration changes carry no state of ours
	}
	if len(l.Data) > 0 && l.Data[0] == batchVersion {
		return f.applyBatchLocked(l)
	}
	c, err := decodeCommand(l.Data)
	if err != nil {
		// Only a bug or a corrupt entry gets here (proposers validate). It is
		// rejected the same way on every node, so the state stays identical.
		return applyResult{err: fmt.Errorf("lockd: rejected log entry %d: %w", l.Index, err)}
	}
	return f.applyCommand(l.Index, l.Data[0] == legacyCommandVersion, c)
}

// applyBatchLocked applies the commands of a batch entry (batch.go) in
// order, each checked on its own and numbered as an entry of its own.
func (f *fsm) applyBatchLocked(l *raft.Log) applyResult {
	cmds, err := splitBatch(l.Data)
	if err != nil {
		return applyResult{err: fmt.Errorf("lockd: rejected log entry %d: %w", l.Index, err)}
	}
	out := make([]applyResult, len(cmds))
	for i, data := range cmds {
		var c command
		if len(data) == 0 || data[0] != commandVersion {
			// Batches were never written with legacy or nested entries.
			err = fmt.Errorf("command version %v in a batch", data[:min(len(data), 1)])
		} else {
			c, err = decodeCommand(data)
		}
		if err != nil {
			out[i] = applyResult{err: fmt.Errorf("lockd: rejected command %d of log entry %d: %w", i, l.Index, err)}
			continue
		}
		out[i] = f.applyCommand(l.Index, false, c)
	}
	return applyResult{batch: out}
}

// applyCommand applies one decoded command of entry index; legacy marks a
// version 1 entry.
func (f *fsm) applyCommand(index uint64, legacy bool, c command) applyResult {
	if len(f.entry.revs) > 0 {
		clear(f.entry.revs)
	}
	f.entry.index, f.entry.legacy = index, legacy
	res := f.command(c)
	if legacy {
		// Earlier versions numbered this entry's changes, and any tenant's
		// later ones, with Raft indexes up to this one: no tenant may be
		// given one of those numbers again.
		f.floor = max(f.floor, index)
	}
	return res
}

func (f *fsm) command(c command) applyResult {
	f.now = max(f.now, c.Now)
	switch c.Type {
	case cmdAcquire:
		return f.acquire(c)
	case cmdRenew:
		return f.renew(c)
	case cmdRelease:
		return f.release(c)
	case cmdCancelWait:
		return f.cancelWait(c)
	case cmdExpire:
		for _, r := range c.Keys {
			if ls := f.leases[r.key()]; ls != nil {
				f.settle(r.key(), ls)
			}
		}
		return applyResult{}
	case cmdPromote:
		return f.promote(c)
	case cmdPut:
		return f.put(c)
	case cmdDelete:
		return f.del(c)
	}
	return applyResult{err: fmt.Errorf("lockd: unhandled command %s", c.Type)} // unreachable: check() rejects
}

func (c command) leaseKey() leaseKey { return leaseKey{Kind: c.Kind, Tenant: c.Tenant, Name: c.Name} }

// lookup returns the lease at k settled as of the state clock, or nil.
func (f *fsm) lookup(k leaseKey) *lease {
	ls := f.leases[k]
	if ls == nil {
		return nil
	}
	return f.settle(k, ls)
}

// settle brings the lease at k up to the state clock: a holder whose lease
// has run out ends (the next live waiter is granted in this entry), and
// waiters past their deadline leave the queue. It returns the lease, or nil
// when the entry is gone.
func (f *fsm) settle(k leaseKey, ls *lease) *lease {
	if f.now >= ls.ExpiresAt {
		return f.endHolder(k, ls, EventExpired)
	}
	if n := len(ls.Waiters); n > 0 {
		ls.Waiters = slices.DeleteFunc(ls.Waiters, func(w waiter) bool { return w.Deadline < f.now })
		if len(ls.Waiters) < n {
			f.revise(k.Tenant) // the queue the tenant lists is shorter
		}
	}
	return ls
}

// endHolder ends the current holder and hands the lease to the first waiter
// whose deadline has not passed, with the tenant's revision of this entry as
// fencing token. With no such waiter the entry is removed.
func (f *fsm) endHolder(k leaseKey, ls *lease, why EventType) *lease {
	f.leaseEvent(k, why, ls)
	for len(ls.Waiters) > 0 {
		w := ls.Waiters[0]
		ls.Waiters = ls.Waiters[1:]
		if w.Deadline < f.now {
			continue // its caller has given up; never grant to it
		}
		ls.Owner, ls.Token, ls.Fencing, ls.TTL, ls.ExpiresAt = w.Owner, w.Token, f.revise(k.Tenant), w.TTL, f.now+w.TTL
		ls.Waiters = slices.DeleteFunc(ls.Waiters, func(w waiter) bool { return w.Deadline < f.now })
		if len(ls.Waiters) == 0 {
			ls.Waiters = nil
		}
		g := ls.grant(k)
		f.hooks.granted(w.Request, g)
		f.leaseEvent(k, EventAcquired, ls)
		return ls
	}
	delete(f.leases, k)
	return nil
}

func (ls *lease) grant(k leaseKey) grant {
	return grant{Key: k, Owner: ls.Owner, Token: ls.Token, Fencing: ls.Fencing, ExpiresAt: ls.ExpiresAt}
}

func (f *fsm) acquire(c command) applyResult {
	k := c.leaseKey()
	ls := f.lookup(k)
	if ls == nil {
		ls = &lease{Owner: c.Owner, Token: c.Token, Fencing: f.revise(k.Tenant), TTL: c.TTL, ExpiresAt: f.now + c.TTL}
		f.leases[k] = ls
		f.leaseEvent(k, EventAcquired, ls)
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
	f.revise(k.Tenant) // the queue the tenant lists is longer
	ls.Waiters = append(ls.Waiters, waiter{Owner: c.Owner, Token: c.Token, Request: c.Request, TTL: c.TTL, Deadline: f.now + c.Wait})
	return applyResult{queued: true}
}

func (f *fsm) renew(c command) applyResult {
	k := c.leaseKey()
	ls := f.lookup(k)
	if ls == nil {
		return applyResult{err: problem.Errorf(problem.CodeNotFound, "%s %q is not held (its lease may have expired)", k.Kind, k.Name)}
	}
	if ls.Token != c.Token {
		return applyResult{err: problem.Errorf(problem.CodeConflict, "%s %q is held under another token", k.Kind, k.Name)}
	}
	ls.TTL, ls.ExpiresAt = c.TTL, f.now+c.TTL
	f.leaseEvent(k, EventRenewed, ls)
	g := ls.grant(k)
	return applyResult{grant: &g}
}

func (f *fsm) release(c command) applyResult {
	k := c.leaseKey()
	ls := f.lookup(k)
	if ls == nil {
		return applyResult{err: problem.Errorf(problem.CodeNotFound, "%s %q is not held (its lease may have expired)", k.Kind, k.Name)}
	}
	if ls.Token != c.Token {
		return applyResult{err: problem.Errorf(problem.CodeConflict, "%s %q is held under another token", k.Kind, k.Name)}
	}
	f.endHolder(k, ls, EventReleased)
	return applyResult{}
}

// cancelWait withdraws a waiter. If the waiter was granted before the cancel
// reached the log, the grant stands and is returned: the caller owns it.
func (f *fsm) cancelWait(c command) applyResult {
	k := c.leaseKey()
	notAcquired := applyResult{err: problem.Errorf(problem.CodeConflict, "%s %q was not acquired within the wait", k.Kind, k.Name)}
	ls := f.lookup(k)
	if ls == nil {
		return notAcquired
	}
	if ls.Token == c.Token {
		g := ls.grant(k)
		return applyResult{grant: &g}
	}
	n := len(ls.Waiters)
	ls.Waiters = slices.DeleteFunc(ls.Waiters, func(w waiter) bool { return w.Request == c.Request && w.Token == c.Token })
	if len(ls.Waiters) < n {
		f.revise(k.Tenant) // the queue the tenant lists is shorter
	}
	if len(ls.Waiters) == 0 {
		ls.Waiters = nil
	}
	return notAcquired
}

// promote applies a new leader's grace rule: every lease lasts at least until
// promote time + grace, whatever the old leader's clock said.
func (f *fsm) promote(c command) applyResult {
	floor := f.now + c.Grace
	// Order-independent: each lease changes alone, and a tenant's revision
	// for this entry is the same whichever of its leases comes first. Only
	// tenants with a lease to extend see their revision move: a leader
	// change, not another tenant's write.
	for k, ls := range f.leases {
		if ls.ExpiresAt < floor {
			ls.ExpiresAt = floor
			f.leaseEvent(k, EventRenewed, ls)
		}
	}
	return applyResult{}
}

func (f *fsm) put(c command) applyResult {
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
	rev := f.revise(c.Tenant)
	created := rev
	if e != nil {
		created = e.CreateRevision
	}
	value := c.Value
	if value == nil {
		value = []byte{}
	}
	m[c.Name] = &kvEntry{Value: value, Revision: rev, CreateRevision: created}
	f.hooks.event(fsmEvent{index: rev, kv: &kvEvent{tenant: c.Tenant, key: c.Name, typ: EventPut, value: value, revision: rev}})
	return applyResult{kv: &KV{Key: c.Name, Value: bytes.Clone(value), Revision: rev, CreateRevision: created}}
}

func (f *fsm) del(c command) applyResult {
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
	rev := f.revise(c.Tenant)
	f.hooks.event(fsmEvent{index: rev, kv: &kvEvent{tenant: c.Tenant, key: c.Name, typ: EventDeleted, revision: rev}})
	return applyResult{kv: &KV{Key: c.Name, Revision: rev, CreateRevision: e.CreateRevision}}
}

// Snapshots.

// snapshotVersion is the format of persisted snapshots. Version 2 adds the
// tenants' revisions and the floor; version 1 (earlier versions, which
// numbered everything by Raft index) is still read, see Restore. Earlier
// versions refuse version 2, rather than restore it without the counters.
const (
	snapshotVersion       = 2
	legacySnapshotVersion = 1
)

// fsmState is the canonical, sorted form of the state: snapshots persist it
// and tests compare nodes by it.
type fsmState struct {
	Version int       `json:"version"`
	Now     int64     `json:"now"`
	Index   uint64    `json:"index,omitempty"` // last applied; absent in the oldest version 1 snapshots
	Floor   uint64    `json:"floor,omitempty"`
	Revs    []snapRev `json:"revs"`
	Leases  []snapKey `json:"leases"`
	KV      []snapKV  `json:"kv"`
}

type snapRev struct {
	Tenant   uuid.UUID `json:"ten"`
	Revision uint64    `json:"rev"`
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
	s := &fsmState{Version: snapshotVersion, Now: f.now, Index: f.applied, Floor: f.floor}
	for t, r := range f.revs {
		s.Revs = append(s.Revs, snapRev{Tenant: t, Revision: r})
	}
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
	slices.SortFunc(s.Revs, func(a, b snapRev) int { return bytes.Compare(a.Tenant[:], b.Tenant[:]) })
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
	if s.Version != snapshotVersion && s.Version != legacySnapshotVersion {
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
	revs := make(map[uuid.UUID]uint64, len(s.Revs))
	for _, r := range s.Revs {
		revs[r.Tenant] = r.Revision
	}
	floor := s.Floor
	if s.Version == legacySnapshotVersion {
		floor = legacyFloor(&s)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now, f.leases, f.kv, f.revs, f.floor = s.Now, leases, kv, revs, floor
	f.applied = max(f.applied, s.Index)
	f.advanceLocked()
	f.hooks.reset()
	return nil
}

// legacyFloor is the floor under every tenant's revision after restoring a
// version 1 snapshot, which has no counters: every number it, or any entry
// before it, handed out was a Raft index no greater than the last entry it
// covers (s.Index), whichever tenant it went to. Starting every tenant there,
// rather than at the largest number the tenant still holds, is what keeps a
// tenant whose lock was released before the snapshot (the state keeps no
// trace of its tokens) from being handed one of them again. The cost is one
// fixed number, the length of the log at the upgrade, that every tenant's
// numbers start above: it says nothing about anyone's writes since. The
// oldest version 1 snapshots lack s.Index; for them the largest number the
// state holds is the best bound there is, and the version 1 entries that
// follow such a snapshot in the log raise the floor to their own indexes.
func legacyFloor(s *fsmState) uint64 {
	floor := s.Index
	for _, l := range s.Leases {
		floor = max(floor, l.Fencing)
	}
	for _, e := range s.KV {
		floor = max(floor, e.Revision)
	}
	return floor
}
