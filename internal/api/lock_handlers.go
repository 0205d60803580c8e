package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/database"
	"switchboard/internal/live"
	"switchboard/internal/lockd"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
)

// The REST and WebSocket face of internal/lockd: locks, elections, the
// compare-and-set key-value space, and the Raft cluster they run on.
//
// Durations are whole milliseconds in _ms fields. Names (locks, elections,
// owners, candidates, keys) are 1..256 bytes of printable UTF-8; a name that
// holds "/" must be sent percent-encoded (%2F) in the path.
//
// KV values are JSON: PUT {"value": <any JSON value>} stores the value's
// compact JSON text (at most 64 KiB of it) and GET returns the same JSON
// value, so {"value":"on"} reads back as "on" and {"value":{"a":1}} as
// {"a":1}. Binary data must be encoded by the client (a base64 string).
//
// A node that is not the Raft leader forwards writes and linearizable reads
// to the leader's server when SWITCHBOARD_PEER_URLS gives its URL (before it
// authenticates or decodes anything; see forward.go); otherwise it answers
// 503, Retry-After: 1 and the leader's id and Raft address in the detail.
// The cluster status is each node's own view and is never forwarded.

// AcquireLockRequest takes a lock: owner names the holder (for people and
// lists; the token is what proves holding), ttl_ms is the lease, wait_ms how
// long to queue first-come, first-served behind the holder (0 or absent: try
// once).
type AcquireLockRequest struct {
	Owner  string `json:"owner"`
	TTLMs  int64  `json:"ttl_ms"`
	WaitMs int64  `json:"wait_ms,omitempty"`
}

// RenewLockRequest sets a held lock's lease to ttl_ms from now.
type RenewLockRequest struct {
	Token string `json:"token"`
	TTLMs int64  `json:"ttl_ms"`
}

// ReleaseLockRequest frees a held lock.
type ReleaseLockRequest struct {
	Token string `json:"token"`
}

// LockResponse is a granted or renewed lease. token is the secret that renew
// and release present; fencing_token strictly increases with every grant of
// the lock, for protected resources to reject stale holders.
type LockResponse struct {
	Name         string    `json:"name"`
	Owner        string    `json:"owner"`
	Token        string    `json:"token"`
	FencingToken uint64    `json:"fencing_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// LockInfo is a held lock as listed (no token).
type LockInfo struct {
	Name         string    `json:"name"`
	Owner        string    `json:"owner"`
	FencingToken uint64    `json:"fencing_token"`
	ExpiresAt    time.Time `json:"expires_at"`
	Waiters      int       `json:"waiters"`
}

// VerifyLockRequest asks whether a fencing token is the current holder's.
type VerifyLockRequest struct {
	FencingToken uint64 `json:"fencing_token"`
}

// VerifyLockResponse is true only for the current holder's token while its
// lease runs.
type VerifyLockResponse struct {
	Valid bool `json:"valid"`
}

// LockEventMessage is one message of the locks watch stream.
type LockEventMessage struct {
	Type         string    `json:"type"` // acquired, renewed, released or expired
	Name         string    `json:"name"`
	Owner        string    `json:"owner"`
	FencingToken uint64    `json:"fencing_token"`
	ExpiresAt    time.Time `json:"expires_at"`
	// Index is the Raft log index of the change; it grows along a stream.
	Index uint64 `json:"index"`
}

// CampaignRequest asks to lead an election.
type CampaignRequest struct {
	Candidate string `json:"candidate"`
	TTLMs     int64  `json:"ttl_ms"`
	WaitMs    int64  `json:"wait_ms,omitempty"`
}

// RenewLeadershipRequest extends the leader's lease to ttl_ms from now.
type RenewLeadershipRequest struct {
	Token string `json:"token"`
	TTLMs int64  `json:"ttl_ms"`
}

// ResignRequest ends a leadership.
type ResignRequest struct {
	Token string `json:"token"`
}

// LeadershipResponse is a won (or renewed) election. term strictly increases
// with every win and doubles as a fencing token.
type LeadershipResponse struct {
	Name      string    `json:"name"`
	Leader    string    `json:"leader"`
	Token     string    `json:"token"`
	Term      uint64    `json:"term"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ElectionResponse is an election's current leader.
type ElectionResponse struct {
	Name      string    `json:"name"`
	Leader    string    `json:"leader"`
	Term      uint64    `json:"term"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ElectionEventMessage is one message of the observe stream: the leader at
// subscription first, then every change. leader "" means no leader (term is
// then the term that ended, 0 if none).
type ElectionEventMessage struct {
	Leader    string     `json:"leader"`
	Term      uint64     `json:"term"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Index is the Raft log index of the change (for the first message, the
	// answering node's applied index).
	Index uint64 `json:"index"`
}

// ElectionChangeMessage is one message of the elections watch stream: a
// new leader (acquired), a renewal, or the end of a term (released,
// expired).
type ElectionChangeMessage struct {
	Type      string    `json:"type"` // acquired, renewed, released or expired
	Name      string    `json:"name"`
	Leader    string    `json:"leader"`
	Term      uint64    `json:"term"`
	ExpiresAt time.Time `json:"expires_at"`
	Index     uint64    `json:"index"` // Raft log index of the change
}

// PutKVRequest writes a key; value is any JSON value.
type PutKVRequest struct {
	Value json.RawMessage `json:"value"`
}

// KVResponse is a key at a revision (also sent as its ETag).
type KVResponse struct {
	Key            string          `json:"key"`
	Value          json.RawMessage `json:"value"`
	Revision       uint64          `json:"revision"`
	CreateRevision uint64          `json:"create_revision"`
}

// KVEventMessage is one message of the KV watch stream.
type KVEventMessage struct {
	Type     string          `json:"type"` // put or deleted
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value,omitempty"` // absent for deleted
	Revision uint64          `json:"revision"`
}

// ClusterResponse is the answering node's view of the Raft group.
type ClusterResponse struct {
	NodeID       string          `json:"node_id"`
	Addr         string          `json:"addr"`
	State        string          `json:"state"`
	LeaderID     string          `json:"leader_id"`
	LeaderAddr   string          `json:"leader_addr"`
	Term         uint64          `json:"term"`
	CommitIndex  uint64          `json:"commit_index"`
	AppliedIndex uint64          `json:"applied_index"`
	LastIndex    uint64          `json:"last_index"`
	Members      []ClusterMember `json:"members"`
}

// ClusterMember is one server of the Raft configuration.
type ClusterMember struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// AddVoterRequest adds a voting member (or changes its address).
type AddVoterRequest struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// lockRoutes are the routes of the lock, election, KV and cluster services.
func (a *API) lockRoutes() []route {
	t := v1 + "/tenants/:tenant"
	return []route{
		{Method: http.MethodGet, Path: t + "/locks", Summary: "List held locks by name (no tokens)", Tag: "locks", Auth: authTenant, Response: List[LockInfo]{}, Status: 200, Paged: true, handler: a.listLocks},
		{Method: http.MethodGet, Path: t + "/locks/watch", Summary: "WebSocket: a message per change of the tenant's locks (acquired, renewed, released, expired); list first with GET .../locks for the current state", Tag: "locks", Auth: authTenantStream, Response: LockEventMessage{}, Status: http.StatusSwitchingProtocols, handler: a.watchLocks},
		{Method: http.MethodPost, Path: t + "/locks/:name", Summary: "Acquire a lock for ttl_ms, queueing first-come, first-served up to wait_ms; 409 when not acquired in time", Tag: "locks", Auth: authTenant, Request: AcquireLockRequest{}, Response: LockResponse{}, Status: 200, handler: a.acquireLock},
		{Method: http.MethodPut, Path: t + "/locks/:name", Summary: "Renew a held lock's lease to ttl_ms from now; 409 for another holder's token (the lock is untouched), 404 when not held", Tag: "locks", Auth: authTenant, Request: RenewLockRequest{}, Response: LockResponse{}, Status: 200, handler: a.renewLock},
		{Method: http.MethodDelete, Path: t + "/locks/:name", Summary: "Release a held lock (the next waiter gets it); 409 for another holder's token, 404 when not held", Tag: "locks", Auth: authTenant, Request: ReleaseLockRequest{}, Status: 204, handler: a.releaseLock},
		{Method: http.MethodPost, Path: t + "/locks/:name/force-release", Summary: "Free a lock whoever holds it (admins: for a holder that is gone); the next waiter gets it; answers the lease that was ended, and is audited", Tag: "locks", Auth: authTenant, Response: LockInfo{}, Status: 200, handler: a.forceReleaseLock},
		{Method: http.MethodPost, Path: t + "/locks/:name/verify", Summary: "Check that a fencing token is the current holder's and its lease runs", Tag: "locks", Auth: authTenant, Request: VerifyLockRequest{}, Response: VerifyLockResponse{}, Status: 200, handler: a.verifyLock},

		{Method: http.MethodPost, Path: t + "/elections/:name/campaign", Summary: "Campaign to lead an election for ttl_ms, waiting up to wait_ms; 409 when another candidate still leads", Tag: "elections", Auth: authTenant, Request: CampaignRequest{}, Response: LeadershipResponse{}, Status: 200, handler: a.campaign},
		{Method: http.MethodGet, Path: t + "/elections", Summary: "The tenant's elections that have a leader now, by name", Tag: "elections", Auth: authTenant, Response: List[ElectionResponse]{}, Status: 200, Paged: true, handler: a.listElections},
		{Method: http.MethodGet, Path: t + "/elections-watch", Summary: "WebSocket: a message per change of any of the tenant's elections (a new leader, a renewal, the end of a term; apart from /elections so that every election name stays readable); list first with GET .../elections for the current state", Tag: "elections", Auth: authTenantStream, Response: ElectionChangeMessage{}, Status: http.StatusSwitchingProtocols, handler: a.watchElections},
		{Method: http.MethodGet, Path: t + "/elections/:name", Summary: "The election's leader and term; 404 when it has none", Tag: "elections", Auth: authTenant, Response: ElectionResponse{}, Status: 200, handler: a.electionLeader},
		{Method: http.MethodPost, Path: t + "/elections/:name/renew", Summary: "Renew the leader's lease to ttl_ms from now", Tag: "elections", Auth: authTenant, Request: RenewLeadershipRequest{}, Response: LeadershipResponse{}, Status: 200, handler: a.renewLeadership},
		{Method: http.MethodPost, Path: t + "/elections/:name/resign", Summary: "Step down as leader (the next waiting candidate wins)", Tag: "elections", Auth: authTenant, Request: ResignRequest{}, Status: 204, handler: a.resign},
		{Method: http.MethodGet, Path: t + "/elections/:name/observe", Summary: "WebSocket: the election's leader now, then a message per change (leader \"\": none)", Tag: "elections", Auth: authTenantStream, Response: ElectionEventMessage{}, Status: http.StatusSwitchingProtocols, handler: a.observeElection},

		{Method: http.MethodGet, Path: t + "/kv", Summary: "List keys starting with ?prefix=, sorted, with values and revisions", Tag: "kv", Auth: authTenant, Response: List[KVResponse]{}, Status: 200, Paged: true, Query: []queryParam{{"prefix", "string", "only keys starting with this"}}, handler: a.listKV},
		{Method: http.MethodGet, Path: t + "/kv-watch", Summary: "WebSocket: a message per change of keys starting with ?prefix= (apart from /kv so that every key name stays readable); subscribe, then list, and skip events at or below a listed revision", Tag: "kv", Auth: authTenantStream, Response: KVEventMessage{}, Status: http.StatusSwitchingProtocols, Query: []queryParam{{"prefix", "string", "only keys starting with this"}}, handler: a.watchKV},
		{Method: http.MethodGet, Path: t + "/kv/:key", Summary: "Read a key: its JSON value and revision, with the revision as ETag (If-None-Match: 304)", Tag: "kv", Auth: authTenant, Response: KVResponse{}, Status: 200, handler: a.getKV},
		{Method: http.MethodPut, Path: t + "/kv/:key", Summary: "Write a key's value (any JSON value, stored as compact JSON, at most 64 KiB); If-Match: \"<revision>\" writes only at that revision, If-None-Match: * only creates; 412 otherwise", Tag: "kv", Auth: authTenant, Request: PutKVRequest{}, Response: KVResponse{}, Status: 200, IfMatch: true, handler: a.putKV},
		{Method: http.MethodDelete, Path: t + "/kv/:key", Summary: "Delete a key; with If-Match: \"<revision>\" only at that revision (412 otherwise)", Tag: "kv", Auth: authTenant, Status: 204, IfMatch: true, handler: a.deleteKV},

		{Method: http.MethodGet, Path: v1 + "/cluster", Summary: "The Raft group as this node sees it: members, leader, term, commit and applied index (platform operators only)", Tag: "cluster", Auth: authIdentity, Response: ClusterResponse{}, Status: 200, handler: a.cluster},
		{Method: http.MethodPost, Path: v1 + "/cluster/voters", Summary: "Add a voter to the Raft group, or change its address (leader only)", Tag: "cluster", Auth: authIdentity, Request: AddVoterRequest{}, Response: ClusterResponse{}, Status: 200, handler: a.addVoter},
		{Method: http.MethodDelete, Path: v1 + "/cluster/voters/:id", Summary: "Remove a member from the Raft group (leader only; a leader removing itself steps down)", Tag: "cluster", Auth: authIdentity, Status: 204, handler: a.removeVoter},
	}
}

// errNoLockService answers every coordination route of a server started
// without a Raft group.
var errNoLockService = &problem.Error{Code: problem.CodeUnavailable, Message: "the lock service is not running on this server"}

// coord authorizes act on the tenant's object of kind named name and
// returns the caller and the lock service.
// coordNamed reads the path parameter param as an object name of kind and
// authorizes act on it (see coord).
func (a *API) coordNamed(c echo.Context, param, act, kind string) (string, auth.Principal, *lockd.Node, error) {
	name, err := pathName(c, param)
	if err != nil {
		return "", auth.Principal{}, nil, err
	}
	p, node, err := a.coord(c, act, kind, name)
	return name, p, node, err
}

func (a *API) coord(c echo.Context, act, kind, name string) (auth.Principal, *lockd.Node, error) {
	p := principal(c)
	if err := a.rbac.Authorize(c.Request().Context(), p, act, rbac.Of(p, kind, name)); err != nil {
		return p, nil, err
	}
	if a.locks == nil {
		return p, nil, errNoLockService
	}
	return p, a.locks, nil
}

// pathName returns the path parameter param (decoded once by the server),
// refusing names longer than lockd accepts before they reach
// authorization.
func pathName(c echo.Context, param string) (string, error) {
	v := c.Param(param)
	if len(v) > lockd.MaxNameLen {
		return "", problem.Invalid(map[string]string{param: fmt.Sprintf("must be 1..%d bytes of printable UTF-8", lockd.MaxNameLen)})
	}
	return v, nil
}

// millis converts a _ms field. Values that would overflow come out as
// durations lockd refuses (negative or far above its limits), so the field
// error names the field and its range.
func millis(ms int64) time.Duration {
	switch {
	case ms < 0:
		return -1
	case ms > int64(math.MaxInt64/time.Millisecond):
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// lockErr adds what the HTTP layer knows to lockd's errors: the leader's
// address for a node that is not the leader, and no 500 for a caller that
// went away.
func lockErr(err error) error {
	var nl *lockd.ErrNotLeader
	switch {
	case errors.As(err, &nl) && nl.LeaderAddr != "":
		return &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1,
			Message: fmt.Sprintf("this node is not the lock service's leader; the leader is node %s at Raft address %s: send the request to the Switchboard server on that node, or retry", nl.LeaderID, nl.LeaderAddr)}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1, Message: "the request ended before the lock service answered"}
	}
	return err
}

// Locks.

func lockResponse(l lockd.Lock) LockResponse {
	return LockResponse{Name: l.Name, Owner: l.Owner, Token: l.Token, FencingToken: l.FencingToken, ExpiresAt: l.ExpiresAt}
}

func (a *API) listLocks(c echo.Context) error {
	p, node, err := a.coord(c, rbac.Read, "lock", "")
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	locks, err := node.ListLocks(c.Request().Context(), p.Tenant)
	if err != nil {
		return lockErr(err)
	}
	items := make([]LockInfo, len(locks))
	for i, l := range locks {
		items[i] = LockInfo{Name: l.Name, Owner: l.Owner, FencingToken: l.FencingToken, ExpiresAt: l.ExpiresAt, Waiters: l.Waiters}
	}
	page, next, err := pageByName(items, func(l LockInfo) string { return l.Name }, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(page, next))
}

func (a *API) acquireLock(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Use, "lock")
	if err != nil {
		return err
	}
	var in AcquireLockRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	l, err := node.Acquire(c.Request().Context(), p.Tenant, name, in.Owner, millis(in.TTLMs), millis(in.WaitMs))
	if err != nil {
		return lockErr(err)
	}
	return c.JSON(http.StatusOK, lockResponse(l))
}

func (a *API) renewLock(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Use, "lock")
	if err != nil {
		return err
	}
	var in RenewLockRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	l, err := node.Renew(c.Request().Context(), p.Tenant, name, in.Token, millis(in.TTLMs))
	if err != nil {
		return lockErr(err)
	}
	return c.JSON(http.StatusOK, lockResponse(l))
}

func (a *API) releaseLock(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Use, "lock")
	if err != nil {
		return err
	}
	var in ReleaseLockRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := node.Release(c.Request().Context(), p.Tenant, name, in.Token); err != nil {
		return lockErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) forceReleaseLock(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Delete, "lock")
	if err != nil {
		return err
	}
	held, err := node.ForceRelease(c.Request().Context(), p.Tenant, name)
	if err != nil {
		return lockErr(err)
	}
	info := LockInfo{Name: held.Name, Owner: held.Owner, FencingToken: held.FencingToken, ExpiresAt: held.ExpiresAt, Waiters: held.Waiters}
	if err := a.audit.Add(c.Request().Context(), p.Tenant, audit.Change{Action: "lock.force_released", ObjectKind: "lock", ObjectID: name, Before: info}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

func (a *API) verifyLock(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Read, "lock")
	if err != nil {
		return err
	}
	var in VerifyLockRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ok, err := node.Verify(c.Request().Context(), p.Tenant, name, in.FencingToken)
	if err != nil {
		return lockErr(err)
	}
	return c.JSON(http.StatusOK, VerifyLockResponse{Valid: ok})
}

func (a *API) watchLocks(c echo.Context) error {
	return lockStream(a, c, "lock", "", func(ctx context.Context, n *lockd.Node, t uuid.UUID) (<-chan lockd.LockEvent, error) {
		return n.WatchLocks(ctx, t)
	}, func(e lockd.LockEvent) (live.Message, error) {
		m := LockEventMessage{Type: string(e.Type), Name: e.Name, Owner: e.Owner, FencingToken: e.FencingToken, ExpiresAt: e.ExpiresAt, Index: e.Index}
		return live.Message{Type: "lock", Data: m, Seq: e.Index, At: time.Now()}, e.Err
	})
}

// Elections.

func (a *API) listElections(c echo.Context) error {
	p, node, err := a.coord(c, rbac.Read, "election", "")
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	es, err := node.ListElections(c.Request().Context(), p.Tenant)
	if err != nil {
		return lockErr(err)
	}
	items := make([]ElectionResponse, len(es))
	for i, e := range es {
		items[i] = ElectionResponse{Name: e.Name, Leader: e.Leader, Term: e.Term, ExpiresAt: e.ExpiresAt}
	}
	page, next, err := pageByName(items, func(e ElectionResponse) string { return e.Name }, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list(page, next))
}

func leadershipResponse(l lockd.Leadership) LeadershipResponse {
	return LeadershipResponse{Name: l.Name, Leader: l.Leader, Token: l.Token, Term: l.Term, ExpiresAt: l.ExpiresAt}
}

func (a *API) campaign(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Use, "election")
	if err != nil {
		return err
	}
	var in CampaignRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	l, err := node.Campaign(c.Request().Context(), p.Tenant, name, in.Candidate, millis(in.TTLMs), millis(in.WaitMs))
	if err != nil {
		return lockErr(err)
	}
	return c.JSON(http.StatusOK, leadershipResponse(l))
}

func (a *API) electionLeader(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Read, "election")
	if err != nil {
		return err
	}
	l, err := node.Leader(c.Request().Context(), p.Tenant, name)
	if err != nil {
		return lockErr(err)
	}
	return c.JSON(http.StatusOK, ElectionResponse{Name: name, Leader: l.Leader, Term: l.Term, ExpiresAt: l.ExpiresAt})
}

func (a *API) renewLeadership(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Use, "election")
	if err != nil {
		return err
	}
	var in RenewLeadershipRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	l, err := node.RenewLeadership(c.Request().Context(), p.Tenant, name, in.Token, millis(in.TTLMs))
	if err != nil {
		return lockErr(err)
	}
	return c.JSON(http.StatusOK, leadershipResponse(l))
}

func (a *API) resign(c echo.Context) error {
	name, p, node, err := a.coordNamed(c, "name", rbac.Use, "election")
	if err != nil {
		return err
	}
	var in ResignRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := node.Resign(c.Request().Context(), p.Tenant, name, in.Token); err != nil {
		return lockErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) watchElections(c echo.Context) error {
	return lockStream(a, c, "election", "", func(ctx context.Context, n *lockd.Node, t uuid.UUID) (<-chan lockd.LockEvent, error) {
		return n.WatchElections(ctx, t)
	}, func(e lockd.LockEvent) (live.Message, error) {
		m := ElectionChangeMessage{Type: string(e.Type), Name: e.Name, Leader: e.Owner, Term: e.FencingToken, ExpiresAt: e.ExpiresAt, Index: e.Index}
		return live.Message{Type: "election", Data: m, Seq: e.Index, At: time.Now()}, e.Err
	})
}

func (a *API) observeElection(c echo.Context) error {
	name, err := pathName(c, "name")
	if err != nil {
		return err
	}
	return lockStream(a, c, "election", name, func(ctx context.Context, n *lockd.Node, t uuid.UUID) (<-chan lockd.ElectionEvent, error) {
		return n.Observe(ctx, t, name)
	}, func(e lockd.ElectionEvent) (live.Message, error) {
		m := ElectionEventMessage{Leader: e.Leader, Term: e.Term, Index: e.Index}
		if e.Leader != "" {
			m.ExpiresAt = &e.ExpiresAt
		}
		return live.Message{Type: "leader", Data: m, Seq: e.Index, At: time.Now()}, e.Err
	})
}

// Key-value space.

// kvValue returns a stored value as JSON. Values written through this API
// are JSON already; anything else (written by a Go caller of lockd) comes
// back as a JSON string rather than as a broken document.
func kvValue(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b)) // marshalling a string cannot fail
	return s
}

func kvResponse(kv lockd.KV) KVResponse {
	return KVResponse{Key: kv.Key, Value: kvValue(kv.Value), Revision: kv.Revision, CreateRevision: kv.CreateRevision}
}

func revisionETag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// parseRevision reads a conditional header holding one revision ETag ("7",
// W/"7" or 7). star reports "*".
func parseRevision(header, value string) (rev uint64, star bool, err error) {
	v := strings.TrimSpace(value)
	if v == "*" {
		return 0, true, nil
	}
	rev, perr := strconv.ParseUint(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if perr != nil || rev == 0 {
		return 0, false, problem.Invalid(map[string]string{header: `must be one revision ETag this server issued, such as "7"`})
	}
	return rev, false, nil
}

func (a *API) getKV(c echo.Context) error {
	key, err := pathName(c, "key")
	if err != nil {
		return err
	}
	p, node, err := a.coord(c, rbac.Read, "kv", key)
	if err != nil {
		return err
	}
	kv, err := node.Get(c.Request().Context(), p.Tenant, key)
	if err != nil {
		return lockErr(err)
	}
	tag := revisionETag(kv.Revision)
	c.Response().Header().Set("ETag", tag)
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			if t = strings.TrimSpace(t); t == "*" || strings.TrimPrefix(t, "W/") == tag {
				return c.NoContent(http.StatusNotModified)
			}
		}
	}
	return c.JSON(http.StatusOK, kvResponse(kv))
}

func (a *API) putKV(c echo.Context) error {
	key, err := pathName(c, "key")
	if err != nil {
		return err
	}
	p, node, err := a.coord(c, rbac.Use, "kv", key)
	if err != nil {
		return err
	}
	var opts lockd.PutOptions
	if h := c.Request().Header.Get("If-Match"); h != "" {
		rev, star, err := parseRevision("If-Match", h)
		if err != nil {
			return err
		}
		if star {
			return problem.Invalid(map[string]string{"If-Match": `* is not supported on PUT: send the revision's ETag, such as "7"`})
		}
		opts.IfRevision = rev
	}
	if h := c.Request().Header.Get("If-None-Match"); h != "" {
		if strings.TrimSpace(h) != "*" {
			return problem.Invalid(map[string]string{"If-None-Match": "must be * (create only) on PUT"})
		}
		opts.IfAbsent = true
	}
	var in PutKVRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Value == nil {
		return problem.Invalid(map[string]string{"value": "is required: any JSON value"})
	}
	var value bytes.Buffer
	if err := json.Compact(&value, in.Value); err != nil {
		return problem.Invalid(map[string]string{"value": "must be a JSON value"})
	}
	kv, err := node.Put(c.Request().Context(), p.Tenant, key, value.Bytes(), opts)
	if err != nil {
		return lockErr(err)
	}
	c.Response().Header().Set("ETag", revisionETag(kv.Revision))
	return c.JSON(http.StatusOK, kvResponse(kv))
}

func (a *API) deleteKV(c echo.Context) error {
	key, err := pathName(c, "key")
	if err != nil {
		return err
	}
	p, node, err := a.coord(c, rbac.Use, "kv", key)
	if err != nil {
		return err
	}
	var ifRevision uint64
	if h := c.Request().Header.Get("If-Match"); h != "" {
		rev, _, err := parseRevision("If-Match", h) // "*": the key must exist, as for any delete
		if err != nil {
			return err
		}
		ifRevision = rev
	}
	if _, err := node.Delete(c.Request().Context(), p.Tenant, key, ifRevision); err != nil {
		return lockErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) listKV(c echo.Context) error {
	p, node, err := a.coord(c, rbac.Read, "kv", "")
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	kvs, err := node.ListKV(c.Request().Context(), p.Tenant, c.QueryParam("prefix"))
	if err != nil {
		return lockErr(err)
	}
	page, next, err := pageByName(kvs, func(kv lockd.KV) string { return kv.Key }, cursor, limit)
	if err != nil {
		return err
	}
	items := make([]KVResponse, len(page))
	for i, kv := range page {
		items[i] = kvResponse(kv)
	}
	return c.JSON(http.StatusOK, list(items, next))
}

func (a *API) watchKV(c echo.Context) error {
	prefix := c.QueryParam("prefix")
	return lockStream(a, c, "kv", "", func(ctx context.Context, n *lockd.Node, t uuid.UUID) (<-chan lockd.KVEvent, error) {
		return n.Watch(ctx, t, prefix)
	}, func(e lockd.KVEvent) (live.Message, error) {
		m := KVEventMessage{Type: string(e.Type), Key: e.Key, Revision: e.Revision}
		if e.Type == lockd.EventPut {
			m.Value = kvValue(e.Value)
		}
		return live.Message{Type: "kv", Data: m, Seq: e.Revision, At: time.Now()}, e.Err
	})
}

// Cluster.

// authorizeCluster allows seeing and changing the Raft group only to the
// platform's operators (SWITCHBOARD_OPERATORS): the group serves every
// tenant, and anyone can sign up and own a tenant, so no tenant role is
// enough to learn its nodes' addresses or to add or remove a voter.
func (a *API) authorizeCluster(c echo.Context) error {
	id := identity(c)
	if id.Token == nil {
		ok, err := a.auth.IsOperator(c.Request().Context(), id.UserID)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return problem.Errorf(problem.CodeForbidden, "only the platform's operators (SWITCHBOARD_OPERATORS) may see or change the Raft group, once their address is confirmed")
}

func clusterResponse(st lockd.Status) ClusterResponse {
	out := ClusterResponse{NodeID: st.NodeID, Addr: st.Addr, State: st.State, LeaderID: st.LeaderID, LeaderAddr: st.LeaderAddr,
		Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex, Members: []ClusterMember{}}
	for _, m := range st.Members {
		out.Members = append(out.Members, ClusterMember{ID: m.ID, Addr: m.Addr, Suffrage: m.Suffrage, Leader: m.Leader})
	}
	return out
}

func (a *API) cluster(c echo.Context) error {
	if err := a.authorizeCluster(c); err != nil {
		return err
	}
	if a.locks == nil {
		return errNoLockService
	}
	return c.JSON(http.StatusOK, clusterResponse(a.locks.Status()))
}

func (a *API) addVoter(c echo.Context) error {
	if err := a.authorizeCluster(c); err != nil {
		return err
	}
	if a.locks == nil {
		return errNoLockService
	}
	var in AddVoterRequest
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := a.locks.AddVoter(c.Request().Context(), in.ID, in.Addr); err != nil {
		return lockErr(err)
	}
	return c.JSON(http.StatusOK, clusterResponse(a.locks.Status()))
}

func (a *API) removeVoter(c echo.Context) error {
	if err := a.authorizeCluster(c); err != nil {
		return err
	}
	if a.locks == nil {
		return errNoLockService
	}
	id, err := pathName(c, "id")
	if err != nil {
		return err
	}
	if err := a.locks.RemoveServer(c.Request().Context(), id); err != nil {
		return lockErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// Helpers.

// pageByName pages items sorted by name: the cursor is the last name of the
// previous page, opaque to clients.
func pageByName[T any](items []T, name func(T) string, cursor string, limit int) ([]T, string, error) {
	after, err := database.DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if cursor != "" {
		i := 0
		for i < len(items) && name(items[i]) <= after {
			i++
		}
		items = items[i:]
	}
	page, next := database.Page(items, limit, name)
	return page, next, nil
}

// lockStream serves a stream of the lock service through the live hub: the
// right to read kind (named name, or all of them) checked now and whenever
// the caller's rights change, each event converted by conv. A terminal
// event (its error: the reader fell behind, the node reset its state,
// shutdown) ends the stream with that error.
func lockStream[In any](a *API, c echo.Context, kind, name string, open func(ctx context.Context, node *lockd.Node, tenant uuid.UUID) (<-chan In, error), conv func(In) (live.Message, error)) error {
	p := principal(c)
	if a.locks == nil {
		return errNoLockService
	}
	return a.live.Serve(c, live.Stream{Kind: kind, Action: rbac.Read, Object: rbac.Of(p, kind, name),
		Open: func(ctx context.Context, _ live.Resume) (live.Source, error) {
			ctx, cancel := context.WithCancel(ctx)
			events, err := open(ctx, a.locks, p.Tenant)
			if err != nil {
				cancel()
				return live.Source{}, lockErr(err)
			}
			return live.Relay(ctx, events, func(e In) (live.Message, error) {
				m, err := conv(e)
				if errors.Is(err, lockd.ErrSlowConsumer) {
					return m, live.ErrTooSlow
				}
				return m, lockErr(err)
			}, nil, cancel), nil
		}})
}
