package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The lock service: locks with leases and fencing tokens, elections, a
// compare-and-set key-value space, and the Raft group they run on. Writes
// and reads go to the group's leader; a follower redirects them there (see
// the package doc).

// AcquireLock takes the lock name of tenant, waiting up to in.WaitMs for it.
// A lock still held after the wait answers 409 conflict.
func (c *Client) AcquireLock(ctx context.Context, tenant, name string, in AcquireLockRequest) (Lock, error) {
	var out Lock
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "locks", name), in, &out)
	return out, err
}

// RenewLock sets the lease of a held lock to ttlMs milliseconds from now;
// token is the one AcquireLock returned.
func (c *Client) RenewLock(ctx context.Context, tenant, name, token string, ttlMs int64) (Lock, error) {
	var out Lock
	err := c.do(ctx, http.MethodPut, tenantPath(tenant, "locks", name), renewLockRequest{Token: token, TTLMs: ttlMs}, &out)
	return out, err
}

// ReleaseLock frees a held lock; the next waiter, if any, gets it.
func (c *Client) ReleaseLock(ctx context.Context, tenant, name, token string) error {
	return c.do(ctx, http.MethodDelete, tenantPath(tenant, "locks", name), tokenRequest{Token: token}, nil)
}

// VerifyLock reports whether fencingToken is the current holder's token of
// the lock and its lease runs.
func (c *Client) VerifyLock(ctx context.Context, tenant, name string, fencingToken uint64) (bool, error) {
	var out verifyLockResponse
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "locks", name, "verify"), verifyLockRequest{FencingToken: fencingToken}, &out)
	return out.Valid, err
}

// ListLocks returns one page of tenant's held locks, by name.
func (c *Client) ListLocks(ctx context.Context, tenant string, opts ListOptions) (Page[LockInfo], error) {
	var out Page[LockInfo]
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "locks")+opts.query(), nil, &out)
	return out, err
}

// Campaign asks to lead the election name of tenant, waiting up to
// in.WaitMs; 409 conflict when another candidate still leads.
func (c *Client) Campaign(ctx context.Context, tenant, name string, in CampaignRequest) (Leadership, error) {
	var out Leadership
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "elections", name, "campaign"), in, &out)
	return out, err
}

// RenewLeadership extends the leader's lease to ttlMs milliseconds from now.
func (c *Client) RenewLeadership(ctx context.Context, tenant, name, token string, ttlMs int64) (Leadership, error) {
	var out Leadership
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "elections", name, "renew"), renewLockRequest{Token: token, TTLMs: ttlMs}, &out)
	return out, err
}

// Resign ends a leadership; the next waiting candidate, if any, wins.
func (c *Client) Resign(ctx context.Context, tenant, name, token string) error {
	return c.do(ctx, http.MethodPost, tenantPath(tenant, "elections", name, "resign"), tokenRequest{Token: token}, nil)
}

// Election returns the election's leader and term; 404 not_found when it
// has none.
func (c *Client) Election(ctx context.Context, tenant, name string) (Election, error) {
	var out Election
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "elections", name), nil, &out)
	return out, err
}

// ListElections returns one page of tenant's elections that have a leader.
func (c *Client) ListElections(ctx context.Context, tenant string, opts ListOptions) (Page[Election], error) {
	var out Page[Election]
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "elections")+opts.query(), nil, &out)
	return out, err
}

// GetKV reads a key of tenant's key-value space; 404 not_found when absent.
func (c *Client) GetKV(ctx context.Context, tenant, key string) (KV, error) {
	var out KV
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "kv", key), nil, &out)
	return out, err
}

// PutKV writes value (any value that encodes as JSON; a json.RawMessage is
// sent as it is) under key and returns the key at its new revision. opts
// makes the write conditional; a condition that does not hold answers 412
// precondition and writes nothing.
func (c *Client) PutKV(ctx context.Context, tenant, key string, value any, opts PutKVOptions) (KV, error) {
	if opts.IfRevision != 0 && opts.IfAbsent {
		return KV{}, fmt.Errorf("put %s: IfRevision and IfAbsent exclude each other", key)
	}
	h := http.Header{}
	if opts.IfRevision != 0 {
		h.Set("If-Match", revisionETag(opts.IfRevision))
	}
	if opts.IfAbsent {
		h.Set("If-None-Match", "*")
	}
	var out KV
	err := c.send(ctx, http.MethodPut, tenantPath(tenant, "kv", key), h, putKVRequest{Value: value}, &out)
	return out, err
}

// DeleteKV deletes key; with ifRevision not 0, only at that revision (412
// precondition otherwise). A missing key answers 404 not_found.
func (c *Client) DeleteKV(ctx context.Context, tenant, key string, ifRevision uint64) error {
	h := http.Header{}
	if ifRevision != 0 {
		h.Set("If-Match", revisionETag(ifRevision))
	}
	return c.send(ctx, http.MethodDelete, tenantPath(tenant, "kv", key), h, nil, nil)
}

// ListKV returns one page of tenant's keys that start with prefix, sorted,
// with their values.
func (c *Client) ListKV(ctx context.Context, tenant, prefix string, opts ListOptions) (Page[KV], error) {
	q := opts.query()
	if prefix != "" {
		sep := "?"
		if q != "" {
			sep = "&"
		}
		q += sep + "prefix=" + url.QueryEscape(prefix)
	}
	var out Page[KV]
	err := c.do(ctx, http.MethodGet, tenantPath(tenant, "kv")+q, nil, &out)
	return out, err
}

// Cluster returns the Raft group as the server called sees it; for callers
// who are an admin or owner of a tenant.
func (c *Client) Cluster(ctx context.Context) (ClusterStatus, error) {
	var out ClusterStatus
	err := c.do(ctx, http.MethodGet, "/api/v1/cluster", nil, &out)
	return out, err
}

// revisionETag is a KV revision as the entity tag the server sends.
func revisionETag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// AcquireLockRequest takes a lock for TTLMs milliseconds. Owner names the
// holder for people and lists; the token in the answer is what proves
// holding. WaitMs is how long to queue behind the holder (0: try once).
type AcquireLockRequest struct {
	Owner  string `json:"owner"`
	TTLMs  int64  `json:"ttl_ms"`
	WaitMs int64  `json:"wait_ms,omitempty"`
}

type renewLockRequest struct {
	Token string `json:"token"`
	TTLMs int64  `json:"ttl_ms"`
}

type tokenRequest struct {
	Token string `json:"token"`
}

type verifyLockRequest struct {
	FencingToken uint64 `json:"fencing_token"`
}

type verifyLockResponse struct {
	Valid bool `json:"valid"`
}

// Lock is a granted or renewed lease. Token is the secret that renews and
// releases it; FencingToken strictly increases with every grant of the lock
// (it is the Raft index of the grant), so a protected resource can refuse a
// stale holder.
type Lock struct {
	Name         string    `json:"name"`
	Owner        string    `json:"owner"`
	Token        string    `json:"token"`
	FencingToken uint64    `json:"fencing_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// LockInfo is a held lock as listed, without its token.
type LockInfo struct {
	Name         string    `json:"name"`
	Owner        string    `json:"owner"`
	FencingToken uint64    `json:"fencing_token"`
	ExpiresAt    time.Time `json:"expires_at"`
	Waiters      int       `json:"waiters"`
}

// CampaignRequest asks to lead an election for TTLMs milliseconds, waiting
// up to WaitMs for the current leader to go.
type CampaignRequest struct {
	Candidate string `json:"candidate"`
	TTLMs     int64  `json:"ttl_ms"`
	WaitMs    int64  `json:"wait_ms,omitempty"`
}

// Leadership is a won or renewed election. Term strictly increases with
// every win and doubles as a fencing token.
type Leadership struct {
	Name      string    `json:"name"`
	Leader    string    `json:"leader"`
	Token     string    `json:"token"`
	Term      uint64    `json:"term"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Election is an election's current leader.
type Election struct {
	Name      string    `json:"name"`
	Leader    string    `json:"leader"`
	Term      uint64    `json:"term"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PutKVOptions makes a key-value write conditional. The zero value writes
// unconditionally.
type PutKVOptions struct {
	// IfRevision writes only when the key exists at this revision
	// (If-Match); 0: any.
	IfRevision uint64
	// IfAbsent writes only when the key does not exist (If-None-Match: *).
	IfAbsent bool
}

type putKVRequest struct {
	Value any `json:"value"`
}

// KV is a key at a revision. Value is the JSON value written; Revision
// changes with every write, CreateRevision is the revision that created
// the key.
type KV struct {
	Key            string          `json:"key"`
	Value          json.RawMessage `json:"value"`
	Revision       uint64          `json:"revision"`
	CreateRevision uint64          `json:"create_revision"`
}

// ClusterStatus is one server's view of the lock service's Raft group.
type ClusterStatus struct {
	NodeID       string          `json:"node_id"`
	Addr         string          `json:"addr"`  // this node's Raft address
	State        string          `json:"state"` // Leader, Follower, Candidate, Shutdown
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
	Suffrage string `json:"suffrage"` // Voter, Nonvoter, Staging
	Leader   bool   `json:"leader"`
}
