package lockd

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Batched proposals. Concurrent writes on the leader share one log entry:
// the leader keeps at most maxInflightEntries entries of its own commands
// in flight, and the commands that arrive while they commit go into the
// next entry together. One entry costs Raft one append, one replication
// message per follower, one future and one apply call, however many
// commands it carries; under load that overhead, not the fsync (which Raft
// already shares between the entries it appends together), bounds the
// leader on two cores. A command that finds nothing queued and a slot free
// goes to Raft at once, alone, in the single-command shape, from its own
// goroutine: batching never makes a lone request wait or pay a hand-off.
//
// The entry shape (batchVersion): the version byte, a uvarint count
// (2..maxBatchCommands), then per command a uvarint length and the command
// in its own single-entry encoding (commandVersion byte, JSON). Apply
// decodes and checks each command on its own and applies them in order,
// each as if it were an entry of its own: it takes its own revision of
// each tenant it changes, so fencing tokens and revisions stay what they
// would be with one entry per command (doc.go, "Fencing monotonic"), and a
// command that fails its checks is refused alone, never its neighbours.
// A batch whose framing is broken is refused whole, alike on every node.

// batchVersion is the first byte of a log entry carrying several commands.
// Earlier versions refuse it, like every entry of this version: a group is
// upgraded whole (doc.go).
const batchVersion byte = 3

const (
	// maxBatchCommands bounds the commands of one entry, and so the work
	// of one apply under the state machine's lock.
	maxBatchCommands = 256
	// maxBatchBytes bounds an entry's size: a batch closes before a
	// command that would take it past this (a command larger than it, up
	// to MaxValueLen plus its fields, goes alone).
	maxBatchBytes = 256 << 10
	// maxInflightEntries is how many entries of batched commands the
	// leader keeps in flight at once. One would serialise the leader's
	// fsync and the followers'; two lets Raft overlap them while the next
	// batch fills.
	maxInflightEntries = 2
)

// proposal is one command waiting to be committed, and where its result
// goes.
type proposal struct {
	data []byte // the command in its single-entry encoding
	done chan proposed
}

type proposed struct {
	res applyResult
	err error // from Raft: not committed, or not known to be
}

// encodeBatch frames the commands of ps as one entry.
func encodeBatch(ps []*proposal) []byte {
	size := 1 + binary.MaxVarintLen64
	for _, p := range ps {
		size += binary.MaxVarintLen64 + len(p.data)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, batchVersion)
	buf = binary.AppendUvarint(buf, uint64(len(ps)))
	for _, p := range ps {
		buf = binary.AppendUvarint(buf, uint64(len(p.data)))
		buf = append(buf, p.data...)
	}
	return buf
}

// splitBatch undoes encodeBatch's framing; it never panics, and refuses a
// count out of range, a length past the end and bytes after the last
// command.
func splitBatch(data []byte) ([][]byte, error) {
	if len(data) == 0 || data[0] != batchVersion {
		return nil, errors.New("not a batch")
	}
	rest := data[1:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n < 2 || n > maxBatchCommands {
		return nil, fmt.Errorf("batch count out of range")
	}
	rest = rest[k:]
	out := make([][]byte, 0, n)
	for range n {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return nil, errors.New("batch command length past the end")
		}
		rest = rest[k:]
		out = append(out, rest[:l:l])
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return nil, errors.New("batch has trailing data")
	}
	return out, nil
}

// runProposer sends queued proposals to Raft, batching those that queue
// while earlier entries commit. It runs until stop closes, which Close
// does only once no proposal waits, and then closes proposerDone.
func (n *Node) runProposer(stop <-chan struct{}) {
	defer n.wg.Done()
	defer close(n.proposerDone)
	var next *proposal // taken from the queue, not yet sent
	for {
		if next == nil {
			select {
			case next = <-n.proposals:
			case <-stop:
				return
			}
		}
		// A slot first: while every slot is taken, commands queue and the
		// next entry carries them all.
		select {
		case n.slots <- struct{}{}:
		case <-stop:
			return
		}
		batch := []*proposal{next}
		size := len(next.data)
		next = nil
	fill:
		for len(batch) < maxBatchCommands {
			select {
			case p := <-n.proposals:
				if size+len(p.data) > maxBatchBytes {
					next = p
					break fill
				}
				batch = append(batch, p)
				size += len(p.data)
			default:
				break fill
			}
		}
		data := batch[0].data
		if len(batch) > 1 {
			data = encodeBatch(batch)
		}
		f := n.raft.Apply(data, n.cfg.ApplyTimeout)
		n.delivering.Add(1)
		go func() {
			defer n.delivering.Done()
			defer func() { <-n.slots }()
			deliver(batch, f)
		}()
	}
}

// deliver waits for an entry's future and hands each command its result.
func deliver(batch []*proposal, f raft.ApplyFuture) {
	if err := f.Error(); err != nil {
		for _, p := range batch {
			p.done <- proposed{err: err}
		}
		return
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		err := fmt.Errorf("lockd: unexpected apply response %T", f.Response())
		for _, p := range batch {
			p.done <- proposed{err: err}
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- proposed{res: res}
		return
	}
	for i, p := range batch {
		switch {
		case res.err != nil: // the entry as a whole was refused
			p.done <- proposed{res: applyResult{err: res.err}}
		case i < len(res.batch):
			p.done <- proposed{res: res.batch[i]}
		default:
			p.done <- proposed{err: fmt.Errorf("lockd: batch of %d answered %d results", len(batch), len(res.batch))}
		}
	}
}
