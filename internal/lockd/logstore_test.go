package lockd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// toBolt rewrites a stopped node's data dir the way earlier versions kept
// it: the log entries keep accepts, and the stable keys named, in raft.db;
// no WAL.
func toBolt(t *testing.T, dir string, keep func(index uint64) bool, stableKeys ...string) {
	t.Helper()
	wal, err := openLogStore(dir, hclog.NewNullLogger(), 0)
	if err != nil {
		t.Fatal(err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := wal.FirstIndex()
	last, _ := wal.LastIndex()
	for i := first; i <= last && i > 0; i++ {
		if !keep(i) {
			continue
		}
		var l raft.Log
		if err := wal.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if err := bolt.StoreLog(&l); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range stableKeys {
		if k == "LastVoteCand" {
			v, err := wal.Get([]byte(k))
			if err == nil {
				err = bolt.Set([]byte(k), v)
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		v, err := wal.GetUint64([]byte(k))
		if err == nil {
			err = bolt.SetUint64([]byte(k), v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	bolt.Close()
	wal.Close()
	if err := os.RemoveAll(filepath.Join(dir, walDir)); err != nil {
		t.Fatal(err)
	}
}

func fileExists(t *testing.T, path string) bool {
	t.Helper()
	ok, err := exists(path)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestLogStore_MovesOldLogIntoWAL starts nodes on data dirs whose log is in
// raft.db, as earlier versions kept it: the whole log; a log with a gap
// below a snapshot and no vote recorded; and a move interrupted after the
// rename. Each node must come back with its locks, keys and term, go on
// granting larger fencing tokens, and keep raft.db only as
// raft.db.migrated.
func TestLogStore_MovesOldLogIntoWAL(t *testing.T) {
	cases := []struct {
		name string
		// old rewrites the stopped node's dir; snap is the index of the
		// snapshot taken half way.
		old func(t *testing.T, dir string, snap uint64)
	}{
		{"whole log", func(t *testing.T, dir string, _ uint64) {
			toBolt(t, dir, func(uint64) bool { return true }, "CurrentTerm", "LastVoteTerm", "LastVoteCand")
		}},
		{"gap below a snapshot, no vote", func(t *testing.T, dir string, snap uint64) {
			// Raft leaves old entries below a snapshot it installs on a
			// store that takes gaps; a node that never voted has no vote
			// keys.
			toBolt(t, dir, func(i uint64) bool { return i <= 2 || i > snap-1 }, "CurrentTerm")
		}},
		{"interrupted after the rename", func(t *testing.T, dir string, _ uint64) {
			// The WAL is in place; raft.db was not renamed yet (here: an
			// empty one, which must not win).
			bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
			if err != nil {
				t.Fatal(err)
			}
			bolt.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 1, nil)
			ctx := context.Background()
			ten := uuid.New()
			n := c.node(0)
			l, err := n.Acquire(ctx, ten, "keep", "me", time.Hour, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"a", "b", "c"} {
				if _, err := n.Put(ctx, ten, k, []byte(`"`+k+`"`), PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			snap := n.raft.LastIndex()
			last, err := n.Put(ctx, ten, "after-snapshot", []byte(`"x"`), PutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			term := n.raft.CurrentTerm()
			c.stop(0)

			dir := c.nodes[0].dir
			tc.old(t, dir, snap)
			c.start(0, false)
			c.waitLeader(10 * time.Second)
			n = c.node(0)

			if fileExists(t, filepath.Join(dir, boltFile)) || !fileExists(t, filepath.Join(dir, boltMigrated)) {
				t.Fatalf("raft.db was not retired to %s", boltMigrated)
			}
			if got := n.raft.CurrentTerm(); got <= term {
				t.Fatalf("term %d after the move, was %d", got, term)
			}
			if ok, err := n.Verify(ctx, ten, "keep", l.FencingToken); err != nil || !ok {
				t.Fatalf("lock lost: %v %v", ok, err)
			}
			for _, k := range []string{"a", "c", "after-snapshot"} {
				if _, err := n.Get(ctx, ten, k); err != nil {
					t.Fatalf("key %s lost: %v", k, err)
				}
			}
			l2, err := n.Acquire(ctx, ten, "new", "me", time.Hour, 0)
			if err != nil || l2.FencingToken <= last.Revision {
				t.Fatalf("fencing after the move %d (the tenant was at revision %d), %v", l2.FencingToken, last.Revision, err)
			}
		})
	}
}

// TestLogStore_EmptyOldLogStartsFresh: a raft.db with nothing in it (a
// node that never joined) is moved like any other.
func TestLogStore_EmptyOldLogStartsFresh(t *testing.T) {
	dir := t.TempDir()
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
	if err != nil {
		t.Fatal(err)
	}
	bolt.Close()
	s, err := openLogStore(dir, hclog.NewNullLogger(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, err := s.LastIndex(); err != nil || last != 0 {
		t.Fatalf("last index %d, %v", last, err)
	}
	if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 0 {
		t.Fatalf("term %d, %v: want none", term, err)
	}
	if !fileExists(t, filepath.Join(dir, boltMigrated)) {
		t.Fatal("raft.db was not retired")
	}
}

// TestLogStore_RefusesWALDirWithoutIndexBesideOldLog: a wal/ that holds no
// index next to a raft.db is not something a move leaves behind; the node
// refuses to guess which is the log.
func TestLogStore_RefusesWALDirWithoutIndexBesideOldLog(t *testing.T) {
	dir := t.TempDir()
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
	if err != nil {
		t.Fatal(err)
	}
	if err := bolt.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	bolt.Close()
	if err := os.Mkdir(filepath.Join(dir, walDir), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = openLogStore(dir, hclog.NewNullLogger(), 0)
	if err == nil || !strings.Contains(err.Error(), "move one of them away") {
		t.Fatalf("opened a data dir with both: %v", err)
	}
	if !fileExists(t, filepath.Join(dir, boltFile)) {
		t.Fatal("raft.db was touched")
	}
	// The refusal released the lock: once wal/ is moved away, it opens.
	if err := os.Remove(filepath.Join(dir, walDir)); err != nil {
		t.Fatal(err)
	}
	s, err := openLogStore(dir, hclog.NewNullLogger(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var l raft.Log
	if err := s.GetLog(1, &l); err != nil || string(l.Data) != "x" {
		t.Fatalf("moved log: %+v %v", l, err)
	}
}

// A node that cleared an uncommitted suffix of its log (a leader paused past
// the election timeout comes back as a follower and drops what it never
// committed) and later wrote on until the segment sealed must open its log
// again after a crash. The write-ahead log before v0.4.1 sealed such a
// segment without its index block and panicked on the next open.
func TestLogStore_ReopensAfterTailTruncationAndSeal(t *testing.T) {
	dir := t.TempDir()
	const segment = 8 << 10 // small segments seal quickly
	open := func() logStore {
		t.Helper()
		s, err := openLogStore(dir, hclog.NewNullLogger(), segment)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	entry := func(i uint64, term uint64) *raft.Log {
		return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, 200)}
	}
	s := open()
	for i := uint64(1); i <= 20; i++ {
		if err := s.StoreLogs([]*raft.Log{entry(i, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// The suffix 15..20 was never committed: the new leader's log replaces it.
	if err := s.DeleteRange(15, 20); err != nil {
		t.Fatal(err)
	}
	// Write on in term 2 until several segments have sealed.
	for i := uint64(15); i <= 400; i++ {
		if err := s.StoreLogs([]*raft.Log{entry(i, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	// A crash: the files are as written; open them again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	last, err := s.LastIndex()
	if err != nil || last != 400 {
		t.Fatalf("last index %d, %v; want 400", last, err)
	}
	for _, i := range []uint64{1, 14, 15, 20, 21, 200, 400} {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		wantTerm := uint64(2)
		if i < 15 {
			wantTerm = 1
		}
		if l.Term != wantTerm || !bytes.Equal(l.Data, entry(i, wantTerm).Data) {
			t.Fatalf("entry %d is term %d with %d bytes, want term %d", i, l.Term, len(l.Data), wantTerm)
		}
	}
}
