package lockd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/raft"

	"switchboard/internal/problem"
)

// expiryTick is how often the leader looks for leases that ran out. A lease
// ends at most one tick (plus one commit) after its ExpiresAt: late, never
// early.
const expiryTick = 50 * time.Millisecond

// waiterSlack lets a waiting caller withdraw itself before the leader's
// expiry sweep removes a waiter whose deadline passed.
const waiterSlack = 500 * time.Millisecond

// Node is one member of the lock service's Raft group.
type Node struct {
	cfg   Config
	addr  string // the Raft address peers dial
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm
	hub   *hub
	store logStore

	// clockBase carries a monotonic reading: clock() is wall time at start
	// plus monotonic time since, so a wall-clock step on the leader cannot
	// shorten a lease it stamps.
	clockBase time.Time

	waitMu  sync.Mutex               // guards waiting
	waiting map[string]chan waitNote // queued acquires by request id

	leaderMu sync.Mutex // guards ready
	// ready is true on the leader once its barrier and promote entry are
	// applied: only then may it serve linearizable reads or expire leases.
	ready bool

	closeMu sync.RWMutex // guards closed against inflight.Add
	closed  bool
	// inflight counts Raft futures being waited on. Close waits for it to
	// drain before shutting Raft down, because Raft leaves some futures
	// unanswered when it shuts down under them.
	inflight sync.WaitGroup

	// proposals queues commands for runProposer, which batches them into
	// log entries (batch.go); nil when every command is its own entry.
	proposals chan *proposal
	// slots holds a token for each entry of commands in flight, at most
	// maxInflightEntries: runProposer's batches and lone commands alike.
	slots chan struct{}
	// proposerStop ends runProposer; proposerDone closes when it has.
	proposerStop, proposerDone chan struct{}
	// delivering counts the goroutines that wait for an entry's commit to
	// hand its commands their results.
	delivering sync.WaitGroup

	notifyCh chan bool // Raft's leadership notifications
	closing  chan struct{}
	ctx      context.Context // cancelled by Close; parent of leader sessions
	cancel   context.CancelFunc
	wg       sync.WaitGroup // goroutines this node started

	closeOnce sync.Once
	closeErr  error
}

// waitNote wakes a queued acquire: granted, or told the state was replaced.
type waitNote struct {
	g     grant
	reset bool
}

// nodeOptions are test hooks.
type nodeOptions struct {
	// wrapStream wraps the TCP stream layer (tests inject partitions).
	wrapStream func(raft.StreamLayer) raft.StreamLayer
	// walSegmentSize overrides the log's segment size (small segments let
	// tests see compaction drop entries).
	walSegmentSize int
	// unbatched proposes every command as an entry of its own (benchmarks
	// compare the two).
	unbatched bool
}

// New starts a node: it opens the log store in cfg.DataDir, listens on
// cfg.BindAddr, bootstraps a new cluster when the node has no state and
// cfg.Join is false, and runs until Close. log receives Raft's own logs.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	return newNode(cfg, log, nodeOptions{})
}

func newNode(cfg Config, log *slog.Logger, opts nodeOptions) (_ *Node, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("lockd: config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "lockd", "node", cfg.NodeID)
	hlog := newHclog(log)

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("lockd: data dir: %w", err)
	}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	store, err := openLogStore(cfg.DataDir, hlog.Named("log"), opts.walSegmentSize)
	if err != nil {
		return nil, fmt.Errorf("lockd: open log store: %w", err)
	}
	cleanup = append(cleanup, func() { store.Close() })
	logs, err := raft.NewLogCache(1024, store)
	if err != nil {
		return nil, fmt.Errorf("lockd: log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("lockd: snapshot store: %w", err)
	}
	if err := checkFiles(cfg.DataDir, cfg.Join, store, snaps); err != nil {
		return nil, fmt.Errorf("lockd: %w", err)
	}

	tcp, err := listenTCP(cfg.BindAddr, cfg.AdvertiseAddr)
	if err != nil {
		return nil, fmt.Errorf("lockd: listen: %w", err)
	}
	var stream raft.StreamLayer = tcp
	if opts.wrapStream != nil {
		stream = opts.wrapStream(tcp)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 4,
		Timeout: 5 * time.Second,
		Logger:  hlog.Named("transport"),
	})
	cleanup = append(cleanup, func() { trans.Close() })

	n := &Node{
		cfg:       cfg,
		addr:      string(trans.LocalAddr()),
		log:       log,
		hub:       newHub(),
		store:     store,
		clockBase: time.Now(),
		waiting:   map[string]chan waitNote{},
		notifyCh:  make(chan bool, 16),
		closing:   make(chan struct{}),
	}
	n.fsm = newFSM(nodeHooks{n})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	// Buffer the apply channel so concurrent writers queue while the leader
	// writes the previous batch: one fsync then covers many commands.
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 128
	// The state lives only in memory, so it must be rebuilt from the last
	// snapshot plus the log on every start.
	rc.NoSnapshotRestoreOnStart = false
	rc.NotifyCh = n.notifyCh
	rc.Logger = hlog.Named("raft")
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("lockd: raft config: %w", err)
	}

	// checkFiles has read what these calls read; the recovers are for what
	// it cannot foresee (a disk failing between the two reads), so that a
	// node answers its files with an error, never a crash.
	if !cfg.Join {
		var has bool
		if err := recovered(func() (err error) { has, err = raft.HasExistingState(logs, store, snaps); return err }); err != nil {
			return nil, fmt.Errorf("lockd: read state: %w", damaged(cfg.DataDir, filepath.Join(cfg.DataDir, walDir), err))
		}
		if !has {
			servers := []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr(), Suffrage: raft.Voter}}
			if len(cfg.Peers) > 0 {
				servers = servers[:0]
				for _, p := range cfg.Peers {
					servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr), Suffrage: raft.Voter})
				}
			}
			if err := recovered(func() error {
				return raft.BootstrapCluster(rc, logs, store, snaps, trans, raft.Configuration{Servers: servers})
			}); err != nil {
				return nil, fmt.Errorf("lockd: bootstrap: %w", err)
			}
		}
	}

	var r *raft.Raft
	if err := recovered(func() (err error) { r, err = raft.NewRaft(rc, n.fsm, logs, store, snaps, trans); return err }); err != nil {
		return nil, fmt.Errorf("lockd: start raft on the files in %s: %w", cfg.DataDir, err)
	}
	n.raft = r
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.proposerStop, n.proposerDone = make(chan struct{}), make(chan struct{})
	if !opts.unbatched {
		// Bounded: a full queue makes callers wait, as Raft's own apply
		// queue would.
		n.proposals = make(chan *proposal, 4*maxBatchCommands)
		n.slots = make(chan struct{}, maxInflightEntries)
		n.wg.Add(1)
		go n.runProposer(n.proposerStop)
	} else {
		close(n.proposerDone)
	}
	n.wg.Add(1)
	go n.watchLeadership()
	log.Info("lockd node started", "addr", string(trans.LocalAddr()), "data_dir", cfg.DataDir)
	return n, nil
}

// Close stops the node: it refuses new requests, waits for the ones already
// handed to Raft to resolve (commit, or leadership loss within
// LeaderLeaseTimeout), shuts Raft and the transport down, ends every stream
// and closes the log store. It is safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closing)
		n.closeMu.Lock()
		n.closed = true
		n.closeMu.Unlock()
		n.cancel()

		drained := make(chan struct{})
		go func() { n.inflight.Wait(); close(drained) }()
		ok := true
		select {
		case <-drained:
		case <-time.After(2*n.cfg.ApplyTimeout + n.cfg.LeaderLeaseTimeout):
			// Raft answers every future while it runs, so this is a bug
			// guard: shut down anyway; a stuck caller stays stuck.
			n.log.Error("lockd: requests still waiting on raft at close")
			ok = false
		}
		if err := n.raft.Shutdown().Error(); err != nil { // also closes the transport
			n.closeErr = fmt.Errorf("lockd: shutdown raft: %w", err)
		}
		close(n.proposerStop)
		if ok {
			// Every proposal was answered, so these are returning.
			n.delivering.Wait()
		}
		n.wg.Wait()
		n.hub.endAll(errShuttingDown, true)
		if err := n.store.Close(); err != nil && n.closeErr == nil {
			n.closeErr = fmt.Errorf("lockd: close log store: %w", err)
		}
	})
	return n.closeErr
}

// enter registers one Raft wait; false once Close has begun.
func (n *Node) enter() bool {
	n.closeMu.RLock()
	defer n.closeMu.RUnlock()
	if n.closed {
		return false
	}
	n.inflight.Add(1)
	return true
}

// clock is the leader's "now" as stamped into commands.
func (n *Node) clock() time.Time { return n.clockBase.Add(time.Since(n.clockBase)) }

// propose stamps c with the leader's clock, replicates it and returns what
// Apply returned. The wait is not cut short by a context: once an entry may
// be in the log, only Raft knows its fate, and Raft answers within
// LeaderLeaseTimeout of losing the quorum.
func (n *Node) propose(c command) (applyResult, error) {
	if !n.enter() {
		return applyResult{}, errShuttingDown
	}
	defer n.inflight.Done()
	if n.raft.State() != raft.Leader {
		return applyResult{}, n.notLeader()
	}
	c.Now = n.clock().UnixNano()
	data, err := encodeCommand(c)
	if err != nil {
		return applyResult{}, fmt.Errorf("lockd: encode %s: %w", c.Type, err)
	}
	if n.proposals == nil { // one entry per command
		return n.apply(data)
	}
	if len(n.proposals) == 0 {
		// Nothing queued and an entry slot free: this command goes alone,
		// straight to Raft, with no hand-off to the proposer (batch.go).
		select {
		case n.slots <- struct{}{}:
			defer func() { <-n.slots }()
			return n.apply(data)
		default:
		}
	}
	p := &proposal{data: data, done: make(chan proposed, 1)}
	select {
	case n.proposals <- p:
	case <-n.proposerDone:
		return applyResult{}, errShuttingDown
	}
	select {
	case r := <-p.done:
		if r.err != nil {
			return applyResult{}, n.raftErr(r.err, true)
		}
		return r.res, nil
	case <-n.proposerDone:
		// Close gave up waiting for Raft (a bug guard, see Close).
		return applyResult{}, &ErrOutcomeUnknown{cause: raft.ErrRaftShutdown}
	}
}

// apply proposes one encoded command as an entry of its own and waits for
// its result.
func (n *Node) apply(data []byte) (applyResult, error) {
	f := n.raft.Apply(data, n.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return applyResult{}, n.raftErr(err, true)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return applyResult{}, fmt.Errorf("lockd: unexpected apply response %T", f.Response())
	}
	return res, nil
}

// linearizable makes the next local read reflect every write acknowledged
// before it started (the Raft ReadIndex method): it takes the commit index,
// confirms leadership with a quorum round, then waits for the state machine
// to reach that index. A leader that has not yet applied its own barrier may
// not know the latest commit index, so it answers "not ready" instead.
func (n *Node) linearizable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.enter() {
		return errShuttingDown
	}
	defer n.inflight.Done()
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if !n.isReady() {
		return errNotReady
	}
	idx := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return n.raftErr(err, false)
	}
	// Raft's applied index counts entries handed to the state machine, which
	// may still be applying them. That is enough here: every command this
	// leader acknowledged was applied before its answer, and every earlier
	// one before the leader's barrier (isReady). The state machine's own
	// index cannot serve: no-op and barrier entries never reach it.
	for n.raft.AppliedIndex() < idx {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.closing:
			return errShuttingDown
		case <-time.After(200 * time.Microsecond):
		}
	}
	return nil
}

// WaitApplied blocks until this node's state includes the change of tenant
// numbered revision (the Index of a watch or observe event, a fencing
// token, a term or a KV revision of that tenant) and every earlier change of
// the tenant, or ctx ends. A display served by one node after an event seen
// on another waits here, so it never shows the state from before the event.
// Revisions are per tenant: another tenant's changes never end the wait.
// A node that is shutting down answers CodeUnavailable.
func (n *Node) WaitApplied(ctx context.Context, tenant uuid.UUID, revision uint64) error {
	if err := newRequest().tenant(tenant).err(); err != nil {
		return err
	}
	return n.fsm.waitRevision(ctx, tenant, revision, n.closing)
}

func (n *Node) isReady() bool {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.ready
}

// watchLeadership runs one leader session per term in which this node leads.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	var stop context.CancelFunc
	var done chan struct{}
	endSession := func() {
		if stop != nil {
			stop()
			<-done
			stop, done = nil, nil
		}
		n.leaderMu.Lock()
		n.ready = false
		n.leaderMu.Unlock()
	}
	for {
		select {
		case <-n.ctx.Done():
			endSession()
			return
		case leader := <-n.notifyCh:
			endSession()
			if leader {
				ctx, cancel := context.WithCancel(n.ctx)
				stop, done = cancel, make(chan struct{})
				go func() {
					defer close(done)
					n.lead(ctx)
				}()
			}
		}
	}
}

// lead is the leader's session: barrier, promote, then sweep expired leases
// until leadership or the node ends.
func (n *Node) lead(ctx context.Context) {
	retry := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
			return true
		}
	}
	// 1. Apply every entry of earlier terms, so the state we read and the
	//    leases we are about to extend are the committed ones.
	for {
		err := n.barrier()
		if err == nil {
			break
		}
		if !retry() {
			return
		}
	}
	// 2. The grace rule (doc.go): every lease lasts at least until now+grace.
	for {
		res, err := n.propose(command{Type: cmdPromote, Grace: int64(n.cfg.LeaseGrace)})
		if err == nil && res.err == nil {
			break
		}
		if !retry() {
			return
		}
	}
	n.leaderMu.Lock()
	if ctx.Err() == nil {
		n.ready = true
	}
	n.leaderMu.Unlock()
	n.log.Info("lockd leader ready", "term", n.raft.CurrentTerm(), "grace", n.cfg.LeaseGrace)

	// 3. Expire what runs out, late rather than early.
	t := time.NewTicker(expiryTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.expireDue()
		}
	}
}

func (n *Node) barrier() error {
	if !n.enter() {
		return errShuttingDown
	}
	defer n.inflight.Done()
	return n.raft.Barrier(n.cfg.ApplyTimeout).Error()
}

// expireDue proposes expiry for every lease the leader's clock says ran out
// and every lease with waiters past their deadline.
func (n *Node) expireDue() {
	keys := n.fsm.due(n.clock().UnixNano(), int64(waiterSlack))
	for len(keys) > 0 {
		batch := keys[:min(len(keys), maxExpireSet)]
		keys = keys[len(batch):]
		if _, err := n.propose(command{Type: cmdExpire, Keys: batch}); err != nil {
			n.log.Debug("lockd expiry not proposed", "err", err)
			return
		}
	}
}

// due lists the leases that settle would change at time now. Leader only.
func (f *fsm) due(now, slack int64) []leaseRef {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []leaseRef
	for k, ls := range f.leases {
		late := now >= ls.ExpiresAt
		for _, w := range ls.Waiters {
			late = late || w.Deadline+slack < now
		}
		if late {
			out = append(out, leaseRef(k))
		}
	}
	return out
}

// Ready reports whether the node can serve requests now: it is the ready
// leader, or it knows a leader to send callers to. For /readyz.
func (n *Node) Ready() error {
	if n.raft.State() == raft.Leader {
		if n.isReady() {
			return nil
		}
		return errNotReady
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return n.notLeader()
	}
	return nil
}

// Status reports the node's view of the cluster, for operators: its
// indexes are Raft log indexes, which count every tenant's writes, so they
// must not reach a tenant.
func (n *Node) Status() Status {
	addr, id := n.raft.LeaderWithID()
	st := Status{
		NodeID:       n.cfg.NodeID,
		Addr:         n.addr,
		State:        n.raft.State().String(),
		LeaderID:     string(id),
		LeaderAddr:   string(addr),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		LastIndex:    n.raft.LastIndex(),
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Members = append(st.Members, Member{ID: string(s.ID), Addr: string(s.Address), Suffrage: s.Suffrage.String(), Leader: s.ID == id})
		}
	}
	return st
}

// AddVoter adds a voting member (or updates its address). Leader only.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if err := newRequest().check(nodeIDRE.MatchString(id), "id", "must be 1-64 letters, digits, dots, dashes or underscores").
		check(checkDialable(addr) == nil, "addr", "must be host:port").err(); err != nil {
		return err
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	// A voter that cannot be reached counts toward the quorum all the same:
	// added to a small group it would stop every write. Refuse it.
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return problem.Invalid(map[string]string{"addr": fmt.Sprintf("cannot be reached from this node (%v); start the node first", err)})
	}
	conn.Close()
	return n.membership(ctx, func() raft.IndexFuture {
		return n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, n.cfg.ApplyTimeout)
	})
}

// nodeIDRE is what a node id may be.
var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RemoveServer removes a member. Leader only; a leader may remove itself, and
// then steps down.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := newRequest().name("id", id).err(); err != nil {
		return err
	}
	return n.membership(ctx, func() raft.IndexFuture {
		return n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout)
	})
}

func (n *Node) membership(ctx context.Context, change func() raft.IndexFuture) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.enter() {
		return errShuttingDown
	}
	defer n.inflight.Done()
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if err := change().Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return n.raftErr(err, true)
		}
		return problem.Errorf(problem.CodeConflict, "membership change refused: %v", err)
	}
	return nil
}

// nodeHooks connects the state machine to the node's waiters and streams.
type nodeHooks struct{ n *Node }

func (h nodeHooks) granted(request string, g grant) {
	h.n.waitMu.Lock()
	ch := h.n.waiting[request]
	h.n.waitMu.Unlock()
	if ch != nil {
		select {
		case ch <- waitNote{g: g}:
		default: // one grant per request; a second cannot happen
		}
	}
}

func (h nodeHooks) event(e fsmEvent) { h.n.hub.publish(e) }

func (h nodeHooks) reset() {
	h.n.hub.endAll(ErrStreamReset, false)
	h.n.waitMu.Lock()
	defer h.n.waitMu.Unlock()
	for _, ch := range h.n.waiting {
		select {
		case ch <- waitNote{reset: true}:
		default:
		}
	}
}

func (n *Node) registerWaiter(request string) chan waitNote {
	ch := make(chan waitNote, 1)
	n.waitMu.Lock()
	n.waiting[request] = ch
	n.waitMu.Unlock()
	return ch
}

func (n *Node) unregisterWaiter(request string) {
	n.waitMu.Lock()
	delete(n.waiting, request)
	n.waitMu.Unlock()
}

// newToken returns 128 random bits in hex: lease tokens and request ids.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
