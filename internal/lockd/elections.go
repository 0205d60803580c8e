package lockd

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// An election is a lease like a lock, in its own name space, whose holder is
// public: anyone may read or observe the leader. The term is the tenant's
// revision at the win (as a lock's fencing token is), so terms of one
// election strictly increase and double as fencing tokens for whatever the
// leader does.

// Campaign makes candidate the leader of election name with a lease of ttl,
// waiting up to wait (first-come, first-served) while another candidate
// leads. It answers CodeConflict if leadership did not come free in time.
// The leader keeps its lease with RenewLeadership and steps down with
// Resign.
func (n *Node) Campaign(ctx context.Context, tenant uuid.UUID, name, candidate string, ttl, wait time.Duration) (Leadership, error) {
	if err := newRequest().tenant(tenant).name("name", name).name("candidate", candidate).ttl(ttl).wait(wait).err(); err != nil {
		return Leadership{}, err
	}
	g, err := n.acquire(ctx, leaseKey{Kind: kindElection, Tenant: tenant, Name: name}, candidate, ttl, wait)
	if err != nil {
		return Leadership{}, err
	}
	return leadership(tenant, name, g), nil
}

// RenewLeadership extends the leader's lease to ttl from now. Errors as for
// Renew.
func (n *Node) RenewLeadership(ctx context.Context, tenant uuid.UUID, name, token string, ttl time.Duration) (Leadership, error) {
	if err := newRequest().tenant(tenant).name("name", name).token("token", token).ttl(ttl).err(); err != nil {
		return Leadership{}, err
	}
	g, err := n.renew(ctx, leaseKey{Kind: kindElection, Tenant: tenant, Name: name}, token, ttl)
	if err != nil {
		return Leadership{}, err
	}
	return leadership(tenant, name, g), nil
}

// Resign ends the leadership held under token; the next waiting candidate,
// if any, wins in the same step. Errors as for Release.
func (n *Node) Resign(ctx context.Context, tenant uuid.UUID, name, token string) error {
	if err := newRequest().tenant(tenant).name("name", name).token("token", token).err(); err != nil {
		return err
	}
	return n.release(ctx, leaseKey{Kind: kindElection, Tenant: tenant, Name: name}, token)
}

// Leader returns the current leader of an election (linearizable), or
// CodeNotFound when it has none.
func (n *Node) Leader(ctx context.Context, tenant uuid.UUID, name string) (ElectionLeader, error) {
	if err := newRequest().tenant(tenant).name("name", name).err(); err != nil {
		return ElectionLeader{}, err
	}
	if err := n.linearizable(ctx); err != nil {
		return ElectionLeader{}, err
	}
	return n.leader(tenant, name)
}

// AppliedLeader is Leader as this node has applied the log, as AppliedLocks
// is for locks.
func (n *Node) AppliedLeader(tenant uuid.UUID, name string) (ElectionLeader, error) {
	if err := newRequest().tenant(tenant).name("name", name).err(); err != nil {
		return ElectionLeader{}, err
	}
	return n.leader(tenant, name)
}

func (n *Node) leader(tenant uuid.UUID, name string) (ElectionLeader, error) {
	now := n.clock().UnixNano()
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	ls := n.fsm.leases[leaseKey{Kind: kindElection, Tenant: tenant, Name: name}]
	if ls == nil || now >= ls.ExpiresAt {
		return ElectionLeader{}, problem.Errorf(problem.CodeNotFound, "election %q has no leader", name)
	}
	return ElectionLeader{Leader: ls.Owner, Term: ls.Fencing, ExpiresAt: nsToTime(ls.ExpiresAt)}, nil
}

// ListElections returns the tenant's elections that have a leader, by name
// (linearizable, like Leader).
func (n *Node) ListElections(ctx context.Context, tenant uuid.UUID) ([]ElectionInfo, error) {
	if err := newRequest().tenant(tenant).err(); err != nil {
		return nil, err
	}
	if err := n.linearizable(ctx); err != nil {
		return nil, err
	}
	return n.elections(tenant), nil
}

// AppliedElections is ListElections as this node has applied the log, as
// AppliedLocks is for locks.
func (n *Node) AppliedElections(tenant uuid.UUID) ([]ElectionInfo, error) {
	if err := newRequest().tenant(tenant).err(); err != nil {
		return nil, err
	}
	return n.elections(tenant), nil
}

func (n *Node) elections(tenant uuid.UUID) []ElectionInfo {
	now := n.clock().UnixNano()
	n.fsm.mu.RLock()
	var out []ElectionInfo
	for k, ls := range n.fsm.leases {
		if k.Kind != kindElection || k.Tenant != tenant || now >= ls.ExpiresAt {
			continue
		}
		out = append(out, ElectionInfo{Name: k.Name, ElectionLeader: ElectionLeader{Leader: ls.Owner, Term: ls.Fencing, ExpiresAt: nsToTime(ls.ExpiresAt)}})
	}
	n.fsm.mu.RUnlock()
	slices.SortFunc(out, func(a, b ElectionInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Observe streams the leader of an election: first the state this node has
// applied, then every change (a new leader, a renewal, the end of a term).
// It works on any node and is not linearizable: a follower may lag, but it
// never reorders. The channel is bounded; a reader that falls behind gets a
// last event with Err = ErrSlowConsumer. The stream ends when ctx does.
func (n *Node) Observe(ctx context.Context, tenant uuid.UUID, name string) (<-chan ElectionEvent, error) {
	if err := newRequest().tenant(tenant).name("name", name).err(); err != nil {
		return nil, err
	}
	k := leaseKey{Kind: kindElection, Tenant: tenant, Name: name}
	s := newStream(func(e fsmEvent) (ElectionEvent, bool) {
		l := e.lease
		if l == nil || l.key != k {
			return ElectionEvent{}, false
		}
		if l.typ == EventReleased || l.typ == EventExpired {
			// A successor, if any, follows as its own event.
			return ElectionEvent{Term: l.fencing, Index: e.index}, true
		}
		return ElectionEvent{Leader: l.owner, Term: l.fencing, ExpiresAt: nsToTime(l.expiresAt), Index: e.index}, true
	}, func(err error) ElectionEvent { return ElectionEvent{Err: err} })

	// Hold the state while subscribing so no change falls between the first
	// event and the live ones.
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	n.hub.mu.Lock()
	defer n.hub.mu.Unlock()
	first := ElectionEvent{Index: n.fsm.revision(tenant)}
	if ls := n.fsm.leases[k]; ls != nil {
		first = ElectionEvent{Leader: ls.Owner, Term: ls.Fencing, ExpiresAt: nsToTime(ls.ExpiresAt), Index: first.Index}
	}
	s.push(first)
	n.hub.addLocked(ctx, s)
	return s.ch, nil
}

func leadership(tenant uuid.UUID, name string, g grant) Leadership {
	return Leadership{Tenant: tenant, Name: name, Leader: g.Owner, Token: g.Token, Term: g.Fencing, ExpiresAt: nsToTime(g.ExpiresAt)}
}
