package lockd

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"switchboard/internal/problem"
)

// ErrNotLeader is returned (as *ErrNotLeader; match it with errors.As) when a
// write or a linearizable read reaches a node that is not the leader. Its problem code
// is CodeUnavailable with RetryAfter 1, so a caller that only knows the
// problem vocabulary still answers 503. LeaderAddr is the leader's Raft
// address and LeaderID its node id (empty when no leader is known); mapping
// them to an HTTP address is the caller's job.
//
// The node itself never forwards: the HTTP layer forwards a request it
// knows the leader must serve before it gets here (LeaderID), so the node
// keeps one RPC channel (Raft's) and a request that still reaches a
// follower, because leadership moved meanwhile, ends here visibly.
type ErrNotLeader struct {
	LeaderID   string
	LeaderAddr string
}

func (e *ErrNotLeader) Error() string {
	if e.LeaderAddr == "" {
		return "lockd: not the leader, and no leader is known"
	}
	return fmt.Sprintf("lockd: not the leader; the leader is %s at %s", e.LeaderID, e.LeaderAddr)
}

// Unwrap exposes the problem form so problem.Code and problem.As see it.
func (e *ErrNotLeader) Unwrap() error {
	msg := "no leader is elected; retry shortly"
	if e.LeaderAddr != "" {
		msg = fmt.Sprintf("this node is not the leader; the leader is %s", e.LeaderID)
	}
	return &problem.Error{Code: problem.CodeUnavailable, Message: msg, RetryAfter: 1}
}

// ErrOutcomeUnknown wraps the CodeUnavailable error returned when a write was
// handed to Raft but its fate is not known: leadership was lost or the node
// shut down before the entry committed. It may still commit. Callers that
// retry must tolerate that (a lock acquired this way is orphaned until its
// lease runs out).
type ErrOutcomeUnknown struct{ cause error }

func (e *ErrOutcomeUnknown) Error() string {
	return "lockd: outcome unknown: " + e.cause.Error()
}

// Unwrap exposes the problem form.
func (e *ErrOutcomeUnknown) Unwrap() error {
	return &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1,
		Message: "leadership changed before the request committed; it may or may not have taken effect"}
}

var (
	errShuttingDown = &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1, Message: "the lock service is shutting down"}
	errNotReady     = &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1, Message: "the leader is still taking over; retry shortly"}
	errStateReset   = &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1, Message: "the node installed a snapshot while the request waited; retry"}
	// ErrSlowConsumer ends a watch or observe stream whose reader fell behind.
	ErrSlowConsumer = &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1, Message: "the stream reader fell behind and was dropped; resubscribe"}
	// ErrStreamReset ends a stream when the node replaced its state from a
	// snapshot (a lagging follower catching up); the reader must re-read.
	ErrStreamReset = &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1, Message: "the node's state was replaced from a snapshot; resubscribe"}
)

// notLeader builds the redirect error from what Raft knows now.
func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	return &ErrNotLeader{LeaderID: string(id), LeaderAddr: string(addr)}
}

// raftErr maps an error from a Raft future. proposed tells whether the entry
// may have reached the log, which decides between "did not happen" and
// "outcome unknown".
func (n *Node) raftErr(err error, proposed bool) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Raft checked leadership before appending: nothing was written.
		return n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return &problem.Error{Code: problem.CodeUnavailable, RetryAfter: 1, Message: "the leader is overloaded; retry"}
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrAbortedByRestore):
		if proposed {
			return &ErrOutcomeUnknown{cause: err}
		}
		return n.notLeader()
	}
	return fmt.Errorf("lockd: raft: %w", err)
}
