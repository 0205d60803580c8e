package lockd

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

// Get returns a key of the tenant's key-value space (linearizable), or
// CodeNotFound.
func (n *Node) Get(ctx context.Context, tenant uuid.UUID, key string) (KV, error) {
	if err := newRequest().tenant(tenant).name("key", key).err(); err != nil {
		return KV{}, err
	}
	if err := n.linearizable(ctx); err != nil {
		return KV{}, err
	}
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	e := n.fsm.kv[tenant][key]
	if e == nil {
		return KV{}, problem.NotFound("key", key)
	}
	return KV{Key: key, Value: bytes.Clone(e.Value), Revision: e.Revision, CreateRevision: e.CreateRevision}, nil
}

// Put writes value under key. With opts.IfRevision the key must exist at
// that revision, with opts.IfAbsent it must not exist; otherwise it answers
// CodePrecondition and writes nothing. It returns the key at its new
// revision.
func (n *Node) Put(ctx context.Context, tenant uuid.UUID, key string, value []byte, opts PutOptions) (KV, error) {
	if err := newRequest().tenant(tenant).name("key", key).
		check(len(value) <= MaxValueLen, "value", fmt.Sprintf("must be at most %d bytes", MaxValueLen)).
		check(!(opts.IfAbsent && opts.IfRevision != 0), "if_revision", "cannot be combined with create-only").err(); err != nil {
		return KV{}, err
	}
	if err := ctx.Err(); err != nil {
		return KV{}, err
	}
	res, err := n.propose(command{Type: cmdPut, Tenant: tenant, Name: key, Value: value, IfRevision: opts.IfRevision, IfAbsent: opts.IfAbsent})
	if err != nil {
		return KV{}, err
	}
	if res.err != nil {
		return KV{}, res.err
	}
	return *res.kv, nil
}

// Delete removes key, if ifRevision is zero or the key's revision. It
// answers CodeNotFound for a missing key and CodePrecondition for a
// revision mismatch, and returns the revision of the deletion.
func (n *Node) Delete(ctx context.Context, tenant uuid.UUID, key string, ifRevision uint64) (uint64, error) {
	if err := newRequest().tenant(tenant).name("key", key).err(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	res, err := n.propose(command{Type: cmdDelete, Tenant: tenant, Name: key, IfRevision: ifRevision})
	if err != nil {
		return 0, err
	}
	if res.err != nil {
		return 0, res.err
	}
	return res.kv.Revision, nil
}

// ListKV returns the tenant's keys that start with prefix, sorted
// (linearizable). An empty prefix lists every key.
func (n *Node) ListKV(ctx context.Context, tenant uuid.UUID, prefix string) ([]KV, error) {
	if err := newRequest().tenant(tenant).check(validPrefix(prefix), "prefix", fmt.Sprintf("must be at most %d bytes of printable UTF-8", MaxNameLen)).err(); err != nil {
		return nil, err
	}
	if err := n.linearizable(ctx); err != nil {
		return nil, err
	}
	return n.kvs(tenant, prefix), nil
}

// AppliedKV is ListKV as this node has applied the log: on any node, with
// no round to the leader, and possibly behind it. It is for displays that a
// Watch stream keeps current; decisions (compare-and-set) need ListKV or
// Get.
func (n *Node) AppliedKV(tenant uuid.UUID, prefix string) ([]KV, error) {
	if err := newRequest().tenant(tenant).check(validPrefix(prefix), "prefix", fmt.Sprintf("must be at most %d bytes of printable UTF-8", MaxNameLen)).err(); err != nil {
		return nil, err
	}
	return n.kvs(tenant, prefix), nil
}

func (n *Node) kvs(tenant uuid.UUID, prefix string) []KV {
	n.fsm.mu.RLock()
	var out []KV
	for k, e := range n.fsm.kv[tenant] {
		if strings.HasPrefix(k, prefix) {
			out = append(out, KV{Key: k, Value: bytes.Clone(e.Value), Revision: e.Revision, CreateRevision: e.CreateRevision})
		}
	}
	n.fsm.mu.RUnlock()
	slices.SortFunc(out, func(a, b KV) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// Watch streams changes of the tenant's keys under prefix as this node
// applies them, in log order, starting after the subscription. To see a
// consistent picture, subscribe first, then ListKV, and ignore events whose
// Revision is not above the listed key's. The channel is bounded; a reader
// that falls behind gets a last event with Err = ErrSlowConsumer. The stream
// ends when ctx does.
func (n *Node) Watch(ctx context.Context, tenant uuid.UUID, prefix string) (<-chan KVEvent, error) {
	if err := newRequest().tenant(tenant).check(validPrefix(prefix), "prefix", fmt.Sprintf("must be at most %d bytes of printable UTF-8", MaxNameLen)).err(); err != nil {
		return nil, err
	}
	s := newStream(func(e fsmEvent) (KVEvent, bool) {
		kv := e.kv
		if kv == nil || kv.tenant != tenant || !strings.HasPrefix(kv.key, prefix) {
			return KVEvent{}, false
		}
		return KVEvent{Type: kv.typ, Key: kv.key, Value: bytes.Clone(kv.value), Revision: kv.revision}, true
	}, func(err error) KVEvent { return KVEvent{Err: err} })
	n.hub.mu.Lock()
	n.hub.addLocked(ctx, s)
	n.hub.mu.Unlock()
	return s.ch, nil
}

func validPrefix(p string) bool { return p == "" || validName(p) }
