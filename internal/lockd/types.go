package lockd

import (
	"time"

	"github.com/google/uuid"
)

// Lock is a granted lock lease.
type Lock struct {
	Tenant uuid.UUID
	Name   string
	Owner  string
	// Token is the secret lease id: renew and release present it. It is
	// never listed.
	Token string
	// FencingToken is the tenant's revision at the grant (see doc.go,
	// "Fencing monotonic"): a counter of this tenant's changes, which no
	// other tenant's writes move. It is strictly greater than every earlier
	// grant of the same lock, across leader changes, restarts and snapshot
	// restores; protected resources reject smaller ones.
	FencingToken uint64
	// ExpiresAt is the end of the lease on the leader's clock. A holder must
	// treat the lock as lost at its own send time + ttl at the latest.
	ExpiresAt time.Time
}

// LockInfo is a lock as listed: no token.
type LockInfo struct {
	Name         string
	Owner        string
	FencingToken uint64
	ExpiresAt    time.Time
	Waiters      int
}

// LockEvent is one change of a tenant's locks, for live views.
type LockEvent struct {
	Type         EventType // EventAcquired, EventRenewed, EventReleased or EventExpired
	Name         string
	Owner        string
	FencingToken uint64
	ExpiresAt    time.Time
	// Index is the tenant's revision at the change: it grows along a stream,
	// and a node that has reached it (WaitApplied with the tenant) shows the
	// change. Changes made together (a release and the grant to the next
	// waiter) share it.
	Index uint64
	// Err is set on the last event of a stream that ended for a reason other
	// than the caller's context (ErrSlowConsumer, ErrStreamReset, shutdown);
	// the channel is closed after it.
	Err error
}

// EventType names what happened to a lease or a key.
type EventType string

// Event types.
const (
	EventAcquired EventType = "acquired"
	EventRenewed  EventType = "renewed"
	EventReleased EventType = "released"
	EventExpired  EventType = "expired"
	EventPut      EventType = "put"
	EventDeleted  EventType = "deleted"
)

// Leadership is a won election: the caller is the leader until it resigns or
// its lease (renewed with RenewLeadership) runs out.
type Leadership struct {
	Tenant    uuid.UUID
	Name      string
	Leader    string
	Token     string // secret: renew and resign present it
	Term      uint64 // the tenant's revision at the win; strictly increasing per election
	ExpiresAt time.Time
}

// ElectionLeader is the current leader of an election as anyone may read it.
type ElectionLeader struct {
	Leader    string
	Term      uint64
	ExpiresAt time.Time
}

// ElectionInfo is an election that has a leader now.
type ElectionInfo struct {
	Name string
	ElectionLeader
}

// ElectionEvent reports the leader of an election; the first event of an
// Observe stream is the state at subscription (Leader empty: no leader).
type ElectionEvent struct {
	Leader    string
	Term      uint64
	ExpiresAt time.Time
	// Index is the tenant's revision at the change, or, for the first event,
	// the tenant's revision on this node when the stream began.
	Index uint64
	// Err is set on the last event of a stream that ended for a reason other
	// than the caller's context; the channel is closed after it.
	Err error
}

// KV is one key of the compare-and-set key-value space.
type KV struct {
	Key   string
	Value []byte
	// Revision is the tenant's revision at the last write of the key: it only
	// grows, and is the value to pass as PutOptions.IfRevision. No other
	// tenant's writes move it.
	Revision uint64
	// CreateRevision is the tenant's revision at the write that created the
	// key.
	CreateRevision uint64
}

// PutOptions are the preconditions of Put. The zero value writes
// unconditionally.
type PutOptions struct {
	// IfRevision, when non-zero, requires the key to exist at exactly this
	// revision (HTTP If-Match).
	IfRevision uint64
	// IfAbsent requires the key not to exist (HTTP If-None-Match: *).
	IfAbsent bool
}

// KVEvent is one change under a watched prefix.
type KVEvent struct {
	Type     EventType // EventPut or EventDeleted
	Key      string
	Value    []byte // nil for EventDeleted
	Revision uint64 // the tenant's revision at the change
	// Err is set on the last event of a stream that ended for a reason other
	// than the caller's context; the channel is closed after it.
	Err error
}

// Status is the node's view of the cluster, for operators only: Term and
// the indexes are Raft's, shared by every tenant, and unlike a tenant's
// revision they move with every tenant's writes.
type Status struct {
	NodeID       string
	Addr         string // this node's Raft address
	State        string // Leader, Follower, Candidate or Shutdown
	LeaderID     string
	LeaderAddr   string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	LastIndex    uint64
	Members      []Member
}

// Member is one server of the Raft configuration.
type Member struct {
	ID       string
	Addr     string
	Suffrage string // Voter, Nonvoter or Staging
	Leader   bool
}
