package lockd

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// Acquire takes the lock name of tenant for owner with a lease of ttl. When
// the lock is held it waits up to wait, in first-come, first-served order
// behind earlier waiters, and answers CodeConflict if the lock did not come
// free in time (wait 0: try once). Locks are not reentrant: the holder
// acquiring again waits like anyone else.
//
// If ctx ends while waiting the call withdraws from the queue and returns
// ctx.Err(); a grant that raced the withdrawal is released again.
func (n *Node) Acquire(ctx context.Context, tenant uuid.UUID, name, owner string, ttl, wait time.Duration) (Lock, error) {
	if err := newRequest().tenant(tenant).name("name", name).name("owner", owner).ttl(ttl).wait(wait).err(); err != nil {
		return Lock{}, err
	}
	g, err := n.acquire(ctx, leaseKey{Kind: kindLock, Tenant: tenant, Name: name}, owner, ttl, wait)
	if err != nil {
		return Lock{}, err
	}
	return Lock{Tenant: tenant, Name: name, Owner: g.Owner, Token: g.Token, FencingToken: g.Fencing, ExpiresAt: nsToTime(g.ExpiresAt)}, nil
}

// Renew sets the lease of a held lock to ttl from now. A token that is not
// the holder's answers CodeConflict (the lock is untouched); a lock that is
// not held, or whose lease already ran out, answers CodeNotFound.
func (n *Node) Renew(ctx context.Context, tenant uuid.UUID, name, token string, ttl time.Duration) (Lock, error) {
	if err := newRequest().tenant(tenant).name("name", name).token("token", token).ttl(ttl).err(); err != nil {
		return Lock{}, err
	}
	g, err := n.renew(ctx, leaseKey{Kind: kindLock, Tenant: tenant, Name: name}, token, ttl)
	if err != nil {
		return Lock{}, err
	}
	return Lock{Tenant: tenant, Name: name, Owner: g.Owner, Token: g.Token, FencingToken: g.Fencing, ExpiresAt: nsToTime(g.ExpiresAt)}, nil
}

// Release frees a held lock; the next waiter, if any, gets it in the same
// step. Errors as for Renew. CodeNotFound after a lease ran out tells the
// caller its critical section may have overlapped with a successor's.
func (n *Node) Release(ctx context.Context, tenant uuid.UUID, name, token string) error {
	if err := newRequest().tenant(tenant).name("name", name).token("token", token).err(); err != nil {
		return err
	}
	return n.release(ctx, leaseKey{Kind: kindLock, Tenant: tenant, Name: name}, token)
}

// ForceRelease frees the lock name of tenant whoever holds it — an
// administrator's remedy for a holder that is gone and would otherwise keep
// the lock until its lease runs out — and returns who held it. The next
// waiter, if any, gets the lock in the same step, as with Release. It reads
// the holder on the leader (linearizable) and releases with the holder's
// token, so it goes through the same command as Release and needs nothing
// new in the log; if another holder took the lock in between, it frees that
// one. CodeNotFound when the lock is not held.
func (n *Node) ForceRelease(ctx context.Context, tenant uuid.UUID, name string) (LockInfo, error) {
	if err := newRequest().tenant(tenant).name("name", name).err(); err != nil {
		return LockInfo{}, err
	}
	k := leaseKey{Kind: kindLock, Tenant: tenant, Name: name}
	for {
		if err := n.linearizable(ctx); err != nil {
			return LockInfo{}, err
		}
		now := n.clock().UnixNano()
		n.fsm.mu.RLock()
		ls := n.fsm.leases[k]
		var held LockInfo
		var token string
		if ls != nil && now < ls.ExpiresAt {
			held = LockInfo{Name: name, Owner: ls.Owner, FencingToken: ls.Fencing, ExpiresAt: nsToTime(ls.ExpiresAt), Waiters: len(ls.Waiters)}
			token = ls.Token
		}
		n.fsm.mu.RUnlock()
		if token == "" {
			return LockInfo{}, problem.Errorf(problem.CodeNotFound, "lock %q is not held (its lease may have expired)", name)
		}
		err := n.release(ctx, k, token)
		if problem.Code(err) == problem.CodeConflict {
			continue // handed on between the read and the release: free the new holder
		}
		return held, err
	}
}

// ListLocks lists the tenant's held locks by name (linearizable).
func (n *Node) ListLocks(ctx context.Context, tenant uuid.UUID) ([]LockInfo, error) {
	if err := newRequest().tenant(tenant).err(); err != nil {
		return nil, err
	}
	if err := n.linearizable(ctx); err != nil {
		return nil, err
	}
	return n.locks(tenant), nil
}

// AppliedLocks is ListLocks as this node has applied the log: on any node,
// with no round to the leader, and possibly behind it. It is for displays
// that a WatchLocks stream keeps current; decisions need ListLocks.
func (n *Node) AppliedLocks(tenant uuid.UUID) ([]LockInfo, error) {
	if err := newRequest().tenant(tenant).err(); err != nil {
		return nil, err
	}
	return n.locks(tenant), nil
}

func (n *Node) locks(tenant uuid.UUID) []LockInfo {
	now := n.clock().UnixNano()
	n.fsm.mu.RLock()
	var out []LockInfo
	for k, ls := range n.fsm.leases {
		if k.Kind != kindLock || k.Tenant != tenant || now >= ls.ExpiresAt {
			continue
		}
		out = append(out, LockInfo{Name: k.Name, Owner: ls.Owner, FencingToken: ls.Fencing, ExpiresAt: nsToTime(ls.ExpiresAt), Waiters: len(ls.Waiters)})
	}
	n.fsm.mu.RUnlock()
	slices.SortFunc(out, func(a, b LockInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Verify reports whether fencingToken is the current holder's token of the
// lock, with a lease that has not run out on the leader's clock
// (linearizable). A protected resource calls it before accepting a write
// stamped with the token; any other answer, including an error, means no.
func (n *Node) Verify(ctx context.Context, tenant uuid.UUID, name string, fencingToken uint64) (bool, error) {
	if err := newRequest().tenant(tenant).name("name", name).check(fencingToken > 0, "fencing_token", "must be positive").err(); err != nil {
		return false, err
	}
	if err := n.linearizable(ctx); err != nil {
		return false, err
	}
	now := n.clock().UnixNano()
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	ls := n.fsm.leases[leaseKey{Kind: kindLock, Tenant: tenant, Name: name}]
	return ls != nil && ls.Fencing == fencingToken && now < ls.ExpiresAt, nil
}

// WatchLocks streams changes of the tenant's locks as this node applies
// them (not linearizable: a follower may lag). The channel is bounded; a
// reader that falls behind gets a last event with Err = ErrSlowConsumer. The
// stream ends when ctx does.
func (n *Node) WatchLocks(ctx context.Context, tenant uuid.UUID) (<-chan LockEvent, error) {
	return n.watchLeases(ctx, tenant, kindLock)
}

// WatchElections is WatchLocks for all of the tenant's elections: a new
// leader is EventAcquired with Owner the leader and FencingToken the term; a
// term ends with EventReleased or EventExpired.
func (n *Node) WatchElections(ctx context.Context, tenant uuid.UUID) (<-chan LockEvent, error) {
	return n.watchLeases(ctx, tenant, kindElection)
}

func (n *Node) watchLeases(ctx context.Context, tenant uuid.UUID, kind leaseKind) (<-chan LockEvent, error) {
	if err := newRequest().tenant(tenant).err(); err != nil {
		return nil, err
	}
	s := newStream(func(e fsmEvent) (LockEvent, bool) {
		l := e.lease
		if l == nil || l.key.Kind != kind || l.key.Tenant != tenant {
			return LockEvent{}, false
		}
		return LockEvent{Type: l.typ, Name: l.key.Name, Owner: l.owner, FencingToken: l.fencing, ExpiresAt: nsToTime(l.expiresAt), Index: e.index}, true
	}, func(err error) LockEvent { return LockEvent{Err: err} })
	n.hub.mu.Lock()
	n.hub.addLocked(ctx, s)
	n.hub.mu.Unlock()
	return s.ch, nil
}

// acquire runs the lease acquire protocol shared by locks and elections.
func (n *Node) acquire(ctx context.Context, k leaseKey, owner string, ttl, wait time.Duration) (g grant, err error) {
	ctx, done := traceOp(ctx, k, "acquire")
	defer func() { done(err) }()
	if err := ctx.Err(); err != nil {
		return grant{}, err
	}
	c := command{Type: cmdAcquire, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, Owner: owner, Token: newToken(), TTL: int64(ttl), Wait: int64(wait)}
	var woken chan waitNote
	if wait > 0 {
		// Register before proposing: the grant may be applied before the
		// proposal's own result comes back.
		c.Request = newToken()
		woken = n.registerWaiter(c.Request)
		defer n.unregisterWaiter(c.Request)
	}
	deadline := time.Now().Add(wait)
	res, err := n.propose(c)
	if err != nil {
		return grant{}, err
	}
	if res.err != nil {
		return grant{}, res.err
	}
	if res.grant != nil {
		return n.keepOrGiveBack(ctx, *res.grant)
	}
	if !res.queued {
		return grant{}, problem.Errorf(problem.CodeInternal, "acquire neither granted nor queued")
	}

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case note := <-woken:
		if note.reset {
			// The queue we were in was replaced wholesale; we may or may
			// not be in the new one.
			return grant{}, &ErrOutcomeUnknown{cause: errStateReset}
		}
		return n.keepOrGiveBack(ctx, note.g)
	case <-timer.C:
	case <-ctx.Done():
	case <-n.closing:
	}
	// Withdraw from the queue. If the state machine granted us the lease
	// first, the withdrawal reports the grant instead.
	res, err = n.propose(command{Type: cmdCancelWait, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, Token: c.Token, Request: c.Request})
	if err != nil {
		select {
		case note := <-woken:
			if !note.reset {
				return n.keepOrGiveBack(ctx, note.g)
			}
		default:
		}
		// The waiter stays queued until its deadline and may still be
		// granted before it (an orphan that ends with its TTL).
		var unknown *ErrOutcomeUnknown
		if !errors.As(err, &unknown) {
			err = &ErrOutcomeUnknown{cause: err}
		}
		return grant{}, err
	}
	if res.grant != nil {
		return n.keepOrGiveBack(ctx, *res.grant)
	}
	if err := ctx.Err(); err != nil {
		return grant{}, err
	}
	return grant{}, problem.Errorf(problem.CodeConflict, "%s %q is held; not acquired within %s", k.Kind, k.Name, wait)
}

// keepOrGiveBack returns g, unless the caller has gone away: then nobody
// would ever release it, so it is released at once.
func (n *Node) keepOrGiveBack(ctx context.Context, g grant) (grant, error) {
	if err := ctx.Err(); err != nil {
		if rerr := n.release(context.Background(), g.Key, g.Token); rerr != nil {
			n.log.Warn("lockd: could not give back a lease granted after the caller left", "kind", g.Key.Kind.String(), "name", g.Key.Name, "err", rerr)
		}
		return grant{}, err
	}
	return g, nil
}

func (n *Node) renew(ctx context.Context, k leaseKey, token string, ttl time.Duration) (g grant, err error) {
	ctx, done := traceOp(ctx, k, "renew")
	defer func() { done(err) }()
	if err := ctx.Err(); err != nil {
		return grant{}, err
	}
	res, err := n.propose(command{Type: cmdRenew, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, Token: token, TTL: int64(ttl)})
	if err != nil {
		return grant{}, err
	}
	if res.err != nil {
		return grant{}, res.err
	}
	return *res.grant, nil
}

func (n *Node) release(ctx context.Context, k leaseKey, token string) (err error) {
	ctx, done := traceOp(ctx, k, "release")
	defer func() { done(err) }()
	if err := ctx.Err(); err != nil {
		return err
	}
	res, err := n.propose(command{Type: cmdRelease, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, Token: token})
	if err != nil {
		return err
	}
	return res.err
}
