package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"switchboard/e2e/client"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/mail/mailtest"
)

// clusterBaseURL is the public URL every node of a test cluster shares, as
// replicas behind one load balancer would: it is the issuer of access
// tokens, so a token one node issued is good on the others (they share the
// signing key too). Nothing dials it.
const clusterBaseURL = "http://switchboard.test"

// cluster is a group of server processes on one database, each a voter of
// one Raft group, each told the others' URLs so that followers forward
// lock-service requests to the leader.
// clusterRaftTimeout is the nodes' SWITCHBOARD_RAFT_TIMEOUT.
const clusterRaftTimeout = 2 * time.Second

type cluster struct {
	ids   []string  // node ids, node1...
	raft  []string  // Raft address of each node, host:port
	nodes []*server // the process now running as each node

	mu  sync.Mutex // guards all
	all []*server  // every process started, restarts included, for the cleanup
}

// startCluster starts n servers sharing a fresh database and forming one
// n-voter Raft group, waits until every one is ready, and stops them all
// when the test ends. The ports are found by listening and closing, so when
// a server finds one taken the whole cluster starts again on new ports and
// new data dirs (the Raft configuration names every port).
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	start := time.Now()
	dbURL := dbtest.NewURL(t)
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		t.Fatal(err)
	}
	jwtKey := base64.StdEncoding.EncodeToString(seed)
	smtp := mailtest.New(t)
	cl := &cluster{}
	t.Cleanup(func() { cl.stopAll(t) })

	for attempt := 1; ; attempt++ {
		opts := make([]launchOptions, n)
		var peers, urls []string
		cl.ids, cl.raft = make([]string, n), make([]string, n)
		for i := range opts {
			var err error
			if opts[i].Port, err = freePort(); err != nil {
				t.Fatal(err)
			}
			if opts[i].RaftPort, err = freePort(); err != nil {
				t.Fatal(err)
			}
			cl.ids[i] = fmt.Sprintf("node%d", i+1)
			cl.raft[i] = "127.0.0.1:" + opts[i].RaftPort
			peers = append(peers, cl.ids[i]+"="+cl.raft[i])
			urls = append(urls, cl.ids[i]+"=http://127.0.0.1:"+opts[i].Port)
		}
		for i := range opts {
			opts[i].Env = []string{
				"SWITCHBOARD_NODE_ID=" + cl.ids[i],
				"SWITCHBOARD_RAFT_PEERS=" + strings.Join(peers, ","),
				"SWITCHBOARD_PEER_URLS=" + strings.Join(urls, ","),
				"SWITCHBOARD_JWT_KEY=" + jwtKey,
				"SWITCHBOARD_BASE_URL=" + clusterBaseURL,
				// Three race-instrumented processes share two cores with the
				// rest of the suite: stalls of a few hundred milliseconds
				// would depose leaders at the default 500ms mid-test.
				"SWITCHBOARD_RAFT_TIMEOUT=" + clusterRaftTimeout.String(),
			}
			opts[i].Mail = smtp
		}

		// Every node waits for a leader to be ready, and a leader needs a
		// quorum, so the nodes start together.
		nodes := make([]*server, n)
		errs := make([]error, n)
		dirs := make([]string, n)
		for i := range dirs {
			dirs[i] = t.TempDir()
		}
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() { nodes[i], errs[i] = launch(dbURL, dirs[i], opts[i]) })
		}
		wg.Wait()
		err := errors.Join(errs...)
		if err == nil {
			cl.nodes = nodes
			cl.mu.Lock()
			cl.all = append(cl.all, nodes...)
			cl.mu.Unlock()
			t.Logf("%d-node cluster ready in %s", n, time.Since(start).Round(time.Millisecond))
			return cl
		}
		for _, s := range nodes {
			if s != nil {
				s.killed = true // discarded, not under test
				_ = s.cmd.Process.Kill()
				<-s.exited
			}
		}
		if attempt < 3 && slices.ContainsFunc(errs, func(err error) bool { return errors.Is(err, errPortTaken) }) {
			t.Logf("start cluster (attempt %d): %v; retrying", attempt, err)
			continue
		}
		t.Fatalf("start cluster: %v", err)
	}
}

// restart starts node i again after a crash: the same data dir, ports and
// settings, so it comes back as the same Raft member at the same address.
func (cl *cluster) restart(t *testing.T, i int) *server {
	t.Helper()
	old := cl.nodes[i]
	start := time.Now()
	for attempt := 1; ; attempt++ {
		s, err := launch(old.dbURL, old.DataDir, old.opts)
		if err == nil {
			cl.nodes[i] = s
			cl.mu.Lock()
			cl.all = append(cl.all, s)
			cl.mu.Unlock()
			t.Logf("%s restarted at %s, ready in %s", cl.ids[i], s.URL, time.Since(start).Round(time.Millisecond))
			return s
		}
		// The ports cannot change, so a port someone took meanwhile can
		// only be waited for.
		if attempt < 3 && errors.Is(err, errPortTaken) {
			t.Logf("restart %s (attempt %d): %v; retrying", cl.ids[i], attempt, err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		t.Fatalf("restart %s: %v", cl.ids[i], err)
	}
}

// stopAll stops every process of the cluster at once.
func (cl *cluster) stopAll(t *testing.T) {
	cl.mu.Lock()
	all := slices.Clone(cl.all)
	cl.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.stop(t) })
	}
	wg.Wait()
}

// index returns the position of node id in the cluster.
func (cl *cluster) index(t *testing.T, id string) int {
	t.Helper()
	i := slices.Index(cl.ids, id)
	if i < 0 {
		t.Fatalf("%q is not a node of the cluster %v", id, cl.ids)
	}
	return i
}

// agreement polls the cluster view of the nodes at indexes live (through
// clients) until each of them names every node of the cluster as a voter
// at its Raft address, and all agree on one leader among live and on the
// term; then it returns the leader's index and the views. When wantApplied
// is not 0, every live node must also have applied the log that far.
func (cl *cluster) agreement(t *testing.T, ctx context.Context, clients []*client.Client, live []int, wantApplied uint64, within time.Duration) (int, []client.ClusterStatus) {
	t.Helper()
	var want []client.ClusterMember
	for i, id := range cl.ids {
		want = append(want, client.ClusterMember{ID: id, Addr: cl.raft[i], Suffrage: "Voter"})
	}
	deadline := time.Now().Add(within)
	for {
		views, why := cl.views(ctx, clients, live, want, wantApplied)
		if why == "" {
			return cl.index(t, views[0].LeaderID), views
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes %v did not agree on the cluster within %s: %s", live, within, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// views reads the cluster view of each live node and says what is not yet
// as agreement wants ("" when all is).
func (cl *cluster) views(ctx context.Context, clients []*client.Client, live []int, want []client.ClusterMember, wantApplied uint64) ([]client.ClusterStatus, string) {
	var views []client.ClusterStatus
	for _, i := range live {
		st, err := clients[i].Cluster(ctx)
		if err != nil {
			return nil, fmt.Sprintf("GET /api/v1/cluster on %s: %v", cl.ids[i], err)
		}
		views = append(views, st)
		members := make([]client.ClusterMember, len(st.Members))
		leaders := 0
		for j, m := range st.Members {
			if m.Leader {
				leaders++
				if m.ID != st.LeaderID {
					return nil, fmt.Sprintf("%s marks %s the leader in members but names %q", cl.ids[i], m.ID, st.LeaderID)
				}
			}
			m.Leader = false
			members[j] = m
		}
		slices.SortFunc(members, func(a, b client.ClusterMember) int { return strings.Compare(a.ID, b.ID) })
		switch {
		case st.NodeID != cl.ids[i] || st.Addr != cl.raft[i]:
			return nil, fmt.Sprintf("the server of %s says it is %s at %s", cl.ids[i], st.NodeID, st.Addr)
		case !reflect.DeepEqual(members, want):
			return nil, fmt.Sprintf("%s sees members %+v, want %+v", cl.ids[i], st.Members, want)
		case st.LeaderID == "" || leaders != 1:
			return nil, fmt.Sprintf("%s sees leader %q, %d members marked leader", cl.ids[i], st.LeaderID, leaders)
		case !slices.ContainsFunc(live, func(j int) bool { return cl.ids[j] == st.LeaderID }):
			return nil, fmt.Sprintf("%s names %s the leader, which is not running", cl.ids[i], st.LeaderID)
		case st.LeaderID != views[0].LeaderID || st.Term != views[0].Term:
			return nil, fmt.Sprintf("%s sees leader %s in term %d, %s sees %s in term %d",
				cl.ids[i], st.LeaderID, st.Term, views[0].NodeID, views[0].LeaderID, views[0].Term)
		case (st.State == "Leader") != (st.NodeID == st.LeaderID):
			return nil, fmt.Sprintf("%s is in state %s while it names %s the leader", cl.ids[i], st.State, st.LeaderID)
		case st.AppliedIndex < wantApplied:
			return nil, fmt.Sprintf("%s has applied the log to %d, want at least %d", cl.ids[i], st.AppliedIndex, wantApplied)
		}
	}
	return views, ""
}

// redirectLog records the redirects a client follows.
type redirectLog struct {
	mu   sync.Mutex // guards seen
	seen []client.Redirect
}

func recordRedirects(c *client.Client) *redirectLog {
	l := &redirectLog{}
	c.OnRedirect(func(r client.Redirect) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.seen = append(l.seen, r)
	})
	return l
}

// take returns the redirects seen since the last take.
func (l *redirectLog) take() []client.Redirect {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := l.seen
	l.seen = nil
	return seen
}

// wantForwarded fails the test if the calls since the last take were
// redirected: a follower forwards what the leader serves, so the client
// talks to the node it chose and nothing else.
func (l *redirectLog) wantForwarded(t *testing.T) {
	t.Helper()
	if seen := l.take(); len(seen) != 0 {
		t.Fatalf("the client was redirected %v; want the node to forward", seen)
	}
}

// sameJSON reports whether two JSON documents hold the same value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// A three-node cluster: lock-service writes sent to a follower reach the
// leader through the follower, and locks, elections
// and keys outlive a crash of the leader and the crashed node's restart.
func TestCluster_LocksAndKVSurviveLeaderCrash(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, 3)
	ctx := t.Context()
	const tenant = "acme"
	ada := signupAndLogin(t, ctx, cl.nodes[0], "ada@example.com", tenant)

	// A client of each node, all signed in as Ada with the token node1
	// issued, each with a record of the redirects it followed.
	clients := make([]*client.Client, 3)
	redirects := make([]*redirectLog, 3)
	newNodeClient := func(i int) {
		clients[i] = cl.nodes[i].newClient(t)
		clients[i].SetToken(ada.Token())
		redirects[i] = recordRedirects(clients[i])
	}
	for i := range clients {
		newNodeClient(i)
	}
	all := []int{0, 1, 2}
	var leader, follower int

	run(t, "every node sees the same three voters and one leader", func(t *testing.T) {
		var views []client.ClusterStatus
		leader, views = cl.agreement(t, ctx, clients, all, 0, 10*time.Second)
		follower = (leader + 1) % 3
		t.Logf("leader %s in term %d, commit index %d", views[0].LeaderID, views[0].Term, views[0].CommitIndex)

		// The view of the Raft group is for the platform's operators.
		bob := cl.nodes[1].newClient(t)
		_, err := bob.Signup(ctx, client.SignupRequest{Email: "bob@example.com", Password: testPassword, Name: "Bob"})
		mustOK(t, "signup bob", err)
		_, err = bob.Login(ctx, "bob@example.com", testPassword)
		mustOK(t, "login bob", err)
		_, err = bob.Cluster(ctx)
		wantProblem(t, err, 403, "forbidden")
		_, err = cl.nodes[2].newClient(t).Cluster(ctx)
		wantProblem(t, err, 401, "unauthenticated")
	})

	var fencing []uint64 // every fencing token granted so far
	var held client.Lock // held through the crash
	var flag client.KV   // written before the crash
	var chair client.Leadership
	flagValue := json.RawMessage(`{"enabled":true,"percent":25,"note":"ünïcode"}`)
	const flagKey = "flags/checkout" // "/" travels as %2F, through the forward too

	run(t, "writes sent to a follower are forwarded to the leader", func(t *testing.T) {
		fc, fr := clients[follower], redirects[follower]

		warm, err := fc.AcquireLock(ctx, tenant, "warmup", client.AcquireLockRequest{Owner: "worker-w", TTLMs: 30_000})
		mustOK(t, "acquire warmup", err)
		fr.wantForwarded(t)
		if warm.Token == "" || warm.FencingToken == 0 || warm.Owner != "worker-w" || warm.Name != "warmup" {
			t.Fatalf("acquire answered %+v", warm)
		}
		if d := time.Until(warm.ExpiresAt); d < 20*time.Second || d > 40*time.Second {
			t.Errorf("expires_at %s is not about 30s away", warm.ExpiresAt)
		}
		fencing = append(fencing, warm.FencingToken)

		renewed, err := fc.RenewLock(ctx, tenant, "warmup", warm.Token, 90_000)
		mustOK(t, "renew warmup", err)
		fr.wantForwarded(t)
		if renewed.FencingToken != warm.FencingToken || time.Until(renewed.ExpiresAt) < 60*time.Second {
			t.Fatalf("renew answered %+v after %+v: want the same fencing token and a lease of about 90s", renewed, warm)
		}
		mustOK(t, "release warmup", fc.ReleaseLock(ctx, tenant, "warmup", warm.Token))
		fr.wantForwarded(t)

		held, err = fc.AcquireLock(ctx, tenant, "orders-migration", client.AcquireLockRequest{Owner: "worker-a", TTLMs: 120_000})
		mustOK(t, "acquire orders-migration", err)
		fr.wantForwarded(t)
		if held.FencingToken <= warm.FencingToken {
			t.Fatalf("fencing token %d after %d: want it higher", held.FencingToken, warm.FencingToken)
		}
		fencing = append(fencing, held.FencingToken)

		chair, err = fc.Campaign(ctx, tenant, "scheduler", client.CampaignRequest{Candidate: "node-a", TTLMs: 120_000})
		mustOK(t, "campaign", err)
		fr.wantForwarded(t)
		if chair.Leader != "node-a" || chair.Term == 0 || chair.Token == "" {
			t.Fatalf("campaign answered %+v", chair)
		}

		flag, err = fc.PutKV(ctx, tenant, flagKey, flagValue, client.PutKVOptions{IfAbsent: true})
		mustOK(t, "put "+flagKey, err)
		fr.wantForwarded(t)
		if flag.Key != flagKey || flag.Revision == 0 || flag.CreateRevision != flag.Revision || !sameJSON(t, flag.Value, flagValue) {
			t.Fatalf("put answered %+v", flag)
		}
	})

	// checkState reads the state written before the crash through node i.
	checkState := func(t *testing.T, i int) {
		t.Helper()
		c := clients[i]
		ok, err := c.VerifyLock(ctx, tenant, "orders-migration", held.FencingToken)
		mustOK(t, "verify through "+cl.ids[i], err)
		if !ok {
			t.Errorf("%s: the holder's fencing token %d does not verify", cl.ids[i], held.FencingToken)
		}
		if ok, err := c.VerifyLock(ctx, tenant, "warmup", fencing[0]); err != nil || ok {
			t.Errorf("%s: the released lock's fencing token verifies: %v, %v", cl.ids[i], ok, err)
		}
		locks, err := c.ListLocks(ctx, tenant, client.ListOptions{})
		mustOK(t, "list locks through "+cl.ids[i], err)
		byName := map[string]client.LockInfo{}
		for _, l := range locks.Items {
			byName[l.Name] = l
		}
		if l, ok := byName["orders-migration"]; !ok || l.Owner != "worker-a" || l.FencingToken != held.FencingToken {
			t.Errorf("%s lists locks %+v, want orders-migration held by worker-a with fencing token %d", cl.ids[i], locks.Items, held.FencingToken)
		}
		if _, ok := byName["warmup"]; ok {
			t.Errorf("%s lists the released lock warmup: %+v", cl.ids[i], locks.Items)
		}
		kv, err := c.GetKV(ctx, tenant, flagKey)
		mustOK(t, "get through "+cl.ids[i], err)
		if kv.Key != flagKey || kv.Revision != flag.Revision || kv.CreateRevision != flag.CreateRevision || !sameJSON(t, kv.Value, flagValue) {
			t.Errorf("%s reads %+v, want %+v", cl.ids[i], kv, flag)
		}
		e, err := c.Election(ctx, tenant, "scheduler")
		mustOK(t, "election through "+cl.ids[i], err)
		if e.Leader != "node-a" || e.Term != chair.Term {
			t.Errorf("%s sees election %+v, want node-a in term %d", cl.ids[i], e, chair.Term)
		}
	}

	run(t, "every node reads the same state", func(t *testing.T) {
		for _, i := range all {
			checkState(t, i)
			// Reads are linearizable, so followers forward them to the
			// leader too; no client is sent elsewhere.
			if seen := redirects[i].take(); len(seen) != 0 {
				t.Errorf("%s redirected %v; want it to forward", cl.ids[i], seen)
			}
		}
	})

	crashed := leader
	var survivors []int
	for _, i := range all {
		if i != crashed {
			survivors = append(survivors, i)
		}
	}
	var oldTerm uint64
	// The in-process cluster tests hold failover to the 5 s bound; here three
	// race-instrumented processes share two cores with the rest of the
	// suite, and run with a longer Raft timeout, so the bound only catches a
	// failover that does not happen (it takes a few seconds; the log says
	// how long).
	run(t, "a new leader serves after the leader's crash", func(t *testing.T) {
		st, err := clients[crashed].Cluster(ctx)
		mustOK(t, "cluster before the crash", err)
		oldTerm = st.Term

		cl.nodes[crashed].kill(t)
		killedAt := time.Now()
		// Poll the survivors until one answers a linearizable read of the
		// held lock: only a leader that took over can.
		var last error
		for served := false; !served; {
			if time.Since(killedAt) > 30*time.Second {
				t.Fatalf("no node served the lock 30s after the leader's crash; last: %v", last)
			}
			for _, i := range survivors {
				ok, err := clients[i].VerifyLock(ctx, tenant, "orders-migration", held.FencingToken)
				if err == nil {
					if !ok {
						t.Fatalf("%s: after the crash the holder's fencing token %d no longer verifies", cl.ids[i], held.FencingToken)
					}
					served = true
					break
				}
				// Until a leader is elected: 503 asking to retry, from a
				// node without a leader or from one that still forwards to
				// the dead leader.
				pe, isProblem := client.AsError(err)
				if isProblem && (pe.Status != 503 || pe.Code != "unavailable" || pe.RetryAfter <= 0) {
					t.Fatalf("%s: verify during the failover: %v (Retry-After %s), want 503 unavailable with Retry-After", cl.ids[i], err, pe.RetryAfter)
				}
				last = err
			}
			if !served {
				time.Sleep(20 * time.Millisecond)
			}
		}
		t.Logf("a new leader served %s after the crash", time.Since(killedAt).Round(time.Millisecond))

		var views []client.ClusterStatus
		leader, views = cl.agreement(t, ctx, clients, survivors, 0, 5*time.Second)
		if leader == crashed || views[0].Term <= oldTerm {
			t.Fatalf("leader %s in term %d after the crash of %s in term %d", views[0].LeaderID, views[0].Term, cl.ids[crashed], oldTerm)
		}
		follower = survivors[0]
		if follower == leader {
			follower = survivors[1]
		}
		for _, r := range redirects {
			r.take()
		}
	})

	var fresh client.Lock
	run(t, "after the crash the state is intact and fencing tokens still grow", func(t *testing.T) {
		for _, i := range survivors {
			checkState(t, i)
			_, err := clients[i].AcquireLock(ctx, tenant, "orders-migration", client.AcquireLockRequest{Owner: "worker-b", TTLMs: 10_000})
			wantProblem(t, err, 409, "conflict")
		}
		var err error
		fresh, err = clients[follower].AcquireLock(ctx, tenant, "reports", client.AcquireLockRequest{Owner: "worker-c", TTLMs: 120_000})
		mustOK(t, "acquire reports", err)
		if fresh.FencingToken <= slices.Max(fencing) {
			t.Fatalf("fencing token %d after the crash, want above every earlier one %v", fresh.FencingToken, fencing)
		}
		fencing = append(fencing, fresh.FencingToken)
		for _, r := range redirects {
			r.take()
		}
	})

	run(t, "the crashed node restarts on its data and rejoins", func(t *testing.T) {
		st, err := clients[leader].Cluster(ctx)
		mustOK(t, "cluster on the leader", err)
		cl.restart(t, crashed)
		newNodeClient(crashed)
		// It is a member again, follows the new leader, and has caught up
		// with what was written while it was down.
		_, views := cl.agreement(t, ctx, clients, all, st.CommitIndex, 10*time.Second)
		if views[0].LeaderID != cl.ids[leader] {
			t.Fatalf("leader %s after the restart, want %s still", views[0].LeaderID, cl.ids[leader])
		}
		checkState(t, crashed)
		ok, err := clients[crashed].VerifyLock(ctx, tenant, "reports", fresh.FencingToken)
		if err != nil || !ok {
			t.Fatalf("the lock taken while %s was down does not verify through it: %v, %v", cl.ids[crashed], ok, err)
		}
	})

	run(t, "the Locks & elections page works live on a follower", func(t *testing.T) {
		// The nodes share their public URL (the token issuer and the only
		// origin the UI accepts posts from), as behind a load balancer; the
		// browser's resolver sends that name to the follower.
		f := cl.nodes[follower]
		if st, err := clients[follower].Cluster(ctx); err != nil || st.State != "Follower" {
			t.Fatalf("%s is %q (%v), want a follower for this check", cl.ids[follower], st.State, err)
		}
		b := newBrowser(t, f, chromedp.Flag("host-resolver-rules", "MAP "+strings.TrimPrefix(clusterBaseURL, "http://")+" "+strings.TrimPrefix(f.URL, "http://")))
		b.do(t, "log in on the follower",
			chromedp.Navigate(clusterBaseURL+"/t/"+tenant+"/coordination"),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-locks"]`)),
		)
		b.waitFor(t, "the locks' live view to connect",
			`document.querySelector('[data-testid="coordination-locks"]').getAttribute('data-live') === 'on'`)
		b.waitFor(t, "the lock held through the crash", `document.querySelector('tr[data-lock="orders-migration"]')`)
		l, err := clients[leader].AcquireLock(ctx, tenant, "from-the-leader", client.AcquireLockRequest{Owner: "worker-d", TTLMs: 60_000})
		mustOK(t, "acquire on the leader", err)
		b.waitFor(t, "the lock taken on the leader", `document.querySelector('tr[data-lock="from-the-leader"]')`)
		mustOK(t, "release on the leader", clients[leader].ReleaseLock(ctx, tenant, "from-the-leader", l.Token))
		b.waitFor(t, "the released lock to go", `!document.querySelector('tr[data-lock="from-the-leader"]')`)
		b.screenshot(t, "follower-locks")
		for _, r := range redirects {
			r.take()
		}
	})

	run(t, "compare-and-set refuses stale writes", func(t *testing.T) {
		c := clients[crashed] // a follower now
		redirects[crashed].take()
		next, err := c.PutKV(ctx, tenant, flagKey, map[string]any{"enabled": false}, client.PutKVOptions{IfRevision: flag.Revision})
		mustOK(t, "put at the current revision", err)
		redirects[crashed].wantForwarded(t)
		if next.Revision <= flag.Revision || next.CreateRevision != flag.CreateRevision || !sameJSON(t, next.Value, []byte(`{"enabled":false}`)) {
			t.Fatalf("put at revision %d answered %+v", flag.Revision, next)
		}

		_, err = c.PutKV(ctx, tenant, flagKey, "lost update", client.PutKVOptions{IfRevision: flag.Revision})
		wantProblem(t, err, 412, "precondition")
		_, err = c.PutKV(ctx, tenant, flagKey, "created twice", client.PutKVOptions{IfAbsent: true})
		wantProblem(t, err, 412, "precondition")
		err = c.DeleteKV(ctx, tenant, flagKey, flag.Revision)
		wantProblem(t, err, 412, "precondition")
		for _, i := range all {
			kv, err := clients[i].GetKV(ctx, tenant, flagKey)
			mustOK(t, "get through "+cl.ids[i], err)
			if kv.Revision != next.Revision || !sameJSON(t, kv.Value, next.Value) {
				t.Errorf("%s reads %+v after the refused writes, want %+v", cl.ids[i], kv, next)
			}
		}

		mustOK(t, "delete at the current revision", c.DeleteKV(ctx, tenant, flagKey, next.Revision))
		_, err = clients[leader].GetKV(ctx, tenant, flagKey)
		wantProblem(t, err, 404, "not_found")
		page, err := c.ListKV(ctx, tenant, "flags/", client.ListOptions{})
		mustOK(t, "list keys", err)
		if len(page.Items) != 0 {
			t.Fatalf("keys under flags/ after the delete: %+v", page.Items)
		}
	})

	run(t, "the leader of the election resigns through a follower", func(t *testing.T) {
		mustOK(t, "resign", clients[follower].Resign(ctx, tenant, "scheduler", chair.Token))
		_, err := clients[crashed].Election(ctx, tenant, "scheduler")
		wantProblem(t, err, 404, "not_found")
	})
}
