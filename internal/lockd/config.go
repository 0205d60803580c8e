package lockd

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Peer is one voter of the initial cluster configuration.
type Peer struct {
	ID   string // stable node id, unique in the cluster
	Addr string // Raft TCP address other nodes dial (host:port)
}

// Config configures one node of the Raft group. The zero value plus DataDir
// is a valid single-node group that bootstraps itself on first start.
type Config struct {
	// NodeID is this node's stable Raft id. Default "node1".
	NodeID string
	// BindAddr is the TCP address the Raft transport listens on. Port 0 picks
	// a free port (tests); the bound address is then what peers must dial.
	// Default "127.0.0.1:7946".
	BindAddr string
	// AdvertiseAddr is the address peers dial to reach this node when it
	// differs from BindAddr (e.g. BindAddr 0.0.0.0:7946). Default: the bound
	// address.
	AdvertiseAddr string
	// DataDir holds the log and stable store (wal/), the file snapshots
	// (snapshots/) and a lock file that keeps a second node out. Required.
	DataDir string

	// Join makes a node with no Raft state wait to be added to an existing
	// cluster (AddVoter on its leader) instead of bootstrapping. When Join is
	// false and the node has no state, it bootstraps a new cluster made of
	// Peers, or of itself alone when Peers is empty (the default single-node
	// group). Every node of a new multi-node cluster may bootstrap with the
	// same Peers list; hashicorp/raft accepts identical bootstraps. Existing
	// state always wins: Join and Peers are ignored on restart.
	Join bool
	// Peers lists the initial voters, this node included.
	Peers []Peer

	// HeartbeatTimeout is how long a follower waits without contact from the
	// leader before it starts an election. Default 500ms.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits for votes. Default 500ms.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without reaching a
	// quorum; a partitioned leader steps down after it. Must not exceed
	// HeartbeatTimeout. Default 250ms.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a follower may wait to learn a new commit
	// index when no writes flow. Default 10ms.
	CommitTimeout time.Duration
	// LeaseGrace is the grace period a new leader adds to every existing lease
	// before it may expire it. It is raised to ElectionTimeout when smaller.
	// Default: ElectionTimeout. See doc.go for the exact rule.
	LeaseGrace time.Duration
	// ApplyTimeout bounds how long a write waits to be queued to Raft and how
	// long admin calls may take. Default 5s.
	ApplyTimeout time.Duration

	// SnapshotInterval, SnapshotThreshold, SnapshotRetain and TrailingLogs
	// control compaction. Defaults 30s, 8192 entries, 2 snapshots, 10240 logs.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	SnapshotRetain    int
	TrailingLogs      uint64
}

// Limits enforced on every request and again when a command is applied.
// They are part of the replicated state machine's definition: changing them
// changes how old log entries replay, so only ever relax them.
const (
	MinTTL       = 100 * time.Millisecond
	MaxTTL       = time.Hour
	MaxWait      = time.Minute
	MaxNameLen   = 256
	MaxValueLen  = 64 << 10
	MaxWaiters   = 1024 // queued acquirers per lock or election
	maxExpireSet = 512  // keys per expiry command
)

const (
	defaultNodeID   = "node1"
	defaultBindAddr = "127.0.0.1:7946"
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		c.NodeID = defaultNodeID
	}
	if c.BindAddr == "" {
		c.BindAddr = defaultBindAddr
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 500 * time.Millisecond
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = 500 * time.Millisecond
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = min(250*time.Millisecond, c.HeartbeatTimeout)
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = 10 * time.Millisecond
	}
	if c.LeaseGrace < c.ElectionTimeout {
		c.LeaseGrace = c.ElectionTimeout
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 5 * time.Second
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = 2
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	return c
}

// validate reports every problem with a defaulted config at once.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DataDir == "" {
		bad("DataDir is required")
	}
	if len(c.NodeID) > MaxNameLen || !printable(c.NodeID) {
		bad("NodeID %q must be 1..%d printable bytes", c.NodeID, MaxNameLen)
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		bad("BindAddr %q: %v", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if err := checkDialable(c.AdvertiseAddr); err != nil {
			bad("AdvertiseAddr %q: %v", c.AdvertiseAddr, err)
		}
	}
	if c.Join && len(c.Peers) > 0 {
		bad("Join and Peers exclude each other: a joining node learns its peers from the leader")
	}
	ids, addrs := map[string]bool{}, map[string]bool{}
	self := false
	for i, p := range c.Peers {
		if p.ID == "" || len(p.ID) > MaxNameLen || !printable(p.ID) {
			bad("Peers[%d].ID %q must be 1..%d printable bytes", i, p.ID, MaxNameLen)
		}
		if err := checkDialable(p.Addr); err != nil {
			bad("Peers[%d].Addr %q: %v", i, p.Addr, err)
		}
		if ids[p.ID] || addrs[p.Addr] {
			bad("Peers[%d] repeats an id or address", i)
		}
		ids[p.ID], addrs[p.Addr] = true, true
		if p.ID == c.NodeID {
			self = true
		}
	}
	if len(c.Peers) > 0 && !self {
		bad("Peers must include this node (%q)", c.NodeID)
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond {
		bad("HeartbeatTimeout and ElectionTimeout must be at least 5ms")
	}
	if c.LeaderLeaseTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("LeaderLeaseTimeout must be between 5ms and HeartbeatTimeout")
	}
	if c.CommitTimeout < time.Millisecond {
		bad("CommitTimeout must be at least 1ms")
	}
	if c.ApplyTimeout < 10*time.Millisecond {
		bad("ApplyTimeout must be at least 10ms")
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		bad("SnapshotInterval must be at least 5ms")
	}
	if c.SnapshotRetain < 1 {
		bad("SnapshotRetain must be at least 1")
	}
	return errors.Join(errs...)
}

// checkDialable accepts host:port with a non-empty host and a non-zero port.
func checkDialable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || port == "" || port == "0" {
		return errors.New("need a host and a non-zero port")
	}
	return nil
}
