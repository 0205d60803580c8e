package lockd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
)

// logStore is where a node keeps its Raft log and its stable state (term,
// vote).
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// Files in the data dir.
const (
	lockFile     = "lock"             // held (flock) while a node has the dir open
	walDir       = "wal"              // the log: segment files and their index
	boltFile     = "raft.db"          // the log as earlier versions kept it
	boltMigrated = "raft.db.migrated" // raft.db once moved into the WAL, kept as a backup
)

// openLogStore opens the node's log in dir. The log is a segmented
// write-ahead log, which costs one fsync per batch of entries where a bbolt
// B-tree costs two (data, then meta page). A log left in raft.db by an
// earlier version is copied into the write-ahead log once, and raft.db is
// renamed raft.db.migrated. segmentSize 0 is the WAL's default (64 MiB).
func openLogStore(dir string, log hclog.Logger, segmentSize int) (_ logStore, err error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	wal, err := openWAL(dir, log, segmentSize)
	if err != nil {
		return nil, err
	}
	return lockedStore{wal, lock}, nil
}

// openWAL opens dir/wal. The WAL exists once its index (wal-meta.db) does.
// When it does not and raft.db does, raft.db is copied into a temporary
// directory that is renamed into place, so a crash during the copy leaves
// raft.db as the log and the next start copies again. Any other layout that
// holds a log this version did not write, or part of one, is refused with
// the file to look at: opening it as if empty would start the node with
// nothing, and the WAL deletes segment files its index does not list.
func openWAL(dir string, log hclog.Logger, segmentSize int) (logStore, error) {
	path := filepath.Join(dir, walDir)
	tmp := filepath.Join(dir, walDir+".new")
	walExists, err := exists(filepath.Join(path, metadb.FileName))
	if err != nil {
		return nil, err
	}
	boltExists, err := exists(filepath.Join(dir, boltFile))
	if err != nil {
		return nil, err
	}
	tmpExists, err := exists(tmp)
	if err != nil {
		return nil, err
	}
	walFiles, err := dirEntries(path)
	if err != nil {
		return nil, err
	}
	switch {
	case walExists && tmpExists:
		// A move renames wal.new to wal as its last step, so the two never
		// exist together after one of ours.
		return nil, fmt.Errorf("%s and %s both exist, which no move of %s leaves behind: move %s aside if %s is this node's log", path, tmp, boltFile, tmp, path)
	case walExists:
		s, err := openWALAt(path, log, segmentSize)
		if err != nil {
			return nil, damaged(dir, path, err)
		}
		if boltExists {
			// A move that stopped after the rename: finish it.
			retireBolt(dir, log)
		}
		return s, nil
	case boltExists:
		if walFiles != nil { // wal/ exists, empty or not
			return nil, fmt.Errorf("%s has no write-ahead log index (%s) but %s holds a log: move one of them away", path, metadb.FileName, boltFile)
		}
		if err := migrateBolt(dir, log, segmentSize); err != nil {
			return nil, fmt.Errorf("move %s into the write-ahead log: %w", boltFile, err)
		}
		retireBolt(dir, log)
		s, err := openWALAt(path, log, segmentSize)
		if err != nil {
			return nil, damaged(dir, path, err)
		}
		return s, nil
	case slices.ContainsFunc(walFiles, func(name string) bool { return strings.HasSuffix(name, ".wal") }):
		// Segments hold the log; anything else (a temporary index left by
		// a crash during the very first start) holds none of it.
		return nil, fmt.Errorf("%s holds segment files but no index (%s): the log is incomplete and would be read as empty. %s",
			path, metadb.FileName, rejoinAdvice(dir, path))
	case tmpExists:
		return nil, fmt.Errorf("%s is an unfinished move of %s, but %s is gone: restore %s from a backup, or %s",
			tmp, boltFile, boltFile, filepath.Join(dir, boltFile), lowerFirst(rejoinAdvice(dir, tmp)))
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, err
	}
	s, err := openWALAt(path, log, segmentSize)
	if err != nil {
		return nil, damaged(dir, path, err)
	}
	return s, nil
}

// dirEntries lists the names in dir: nil when dir does not exist, empty
// (not nil) when it exists and is empty.
func dirEntries(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, nil
}

// damaged is the error for a file of the data dir that cannot be used: it
// names the file, says why, and what the operator can do.
func damaged(dir, path string, cause error) error {
	return fmt.Errorf("%s cannot be read (%v). %s", path, cause, rejoinAdvice(dir, path))
}

// rejoinAdvice is what to do about damaged files of a node: let the group
// send it a fresh copy.
func rejoinAdvice(dir string, paths ...string) string {
	return fmt.Sprintf("Move %s aside and restart this node as a joining member (Config.Join; for the server SWITCHBOARD_RAFT_JOIN=true) "+
		"so it copies the group's state from the leader; a single-node group has no other copy: restore %s from a backup instead",
		strings.Join(paths, " and "), dir)
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// recovered runs fn and returns a panic in it as an error. The log store
// library and Raft's start-up panic on some damaged files (a sealed segment
// without its index block, an entry that cannot be read); a node answers
// its own files with an error that says what to do, never with a crash.
func recovered(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn()
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// walStore closes the WAL's index (its metadata store) with it, which the
// WAL's own Close leaves open: a node restarted in the same process would
// otherwise wait forever for the index file's lock.
type walStore struct {
	*raftwal.WAL
	meta *metadb.BoltMetaDB
}

func openWALAt(path string, log hclog.Logger, segmentSize int) (walStore, error) {
	meta := &metadb.BoltMetaDB{}
	var wal *raftwal.WAL
	err := recovered(func() (err error) {
		wal, err = raftwal.Open(path, raftwal.WithLogger(log), raftwal.WithMetaStore(meta), raftwal.WithSegmentSize(segmentSize))
		return err
	})
	if err != nil {
		meta.Close()
		return walStore{}, err
	}
	return walStore{wal, meta}, nil
}

func (s walStore) Close() error {
	err := s.WAL.Close()
	if cerr := s.meta.Close(); err == nil {
		err = cerr
	}
	return err
}

// migrateBolt copies raft.db's log and stable state into dir/wal.new and
// renames it dir/wal.
func migrateBolt(dir string, log hclog.Logger, segmentSize int) error {
	tmp := filepath.Join(dir, walDir+".new")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, boltFile),
		BoltOptions: &bbolt.Options{Timeout: time.Second, ReadOnly: true},
	})
	if err != nil {
		return err
	}
	defer bolt.Close()
	wal, err := openWALAt(tmp, log, segmentSize)
	if err != nil {
		return err
	}
	n, err := copyLog(wal, bolt)
	if err == nil {
		err = copyStable(wal, bolt)
	}
	if cerr := wal.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, walDir)); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	log.Info("moved the raft log from raft.db into the write-ahead log", "dir", dir, "entries", n)
	return nil
}

// copyLog copies src's log into the empty dst. A log may hold entries
// below a gap that Raft left when it installed a snapshot (it only trims a
// store that refuses gaps); the snapshot covers them, so only the unbroken
// run that ends at the last index is the log and is copied.
func copyLog(dst, src raft.LogStore) (int, error) {
	first, err := src.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := src.LastIndex()
	if err != nil || last == 0 {
		return 0, err
	}
	start := last
	for start > first {
		var l raft.Log
		err := src.GetLog(start-1, &l)
		if errors.Is(err, raft.ErrLogNotFound) {
			break
		}
		if err != nil {
			return 0, err
		}
		start--
	}
	const batch = 256
	logs := make([]*raft.Log, 0, batch)
	for i := start; i <= last; i++ {
		l := new(raft.Log)
		if err := src.GetLog(i, l); err != nil {
			return 0, fmt.Errorf("log %d: %w", i, err)
		}
		logs = append(logs, l)
		if len(logs) == batch || i == last {
			if err := dst.StoreLogs(logs); err != nil {
				return 0, err
			}
			logs = logs[:0]
		}
	}
	return int(last - start + 1), nil
}

// copyStable copies the keys hashicorp/raft keeps in its stable store; a
// key it never wrote (no vote yet) stays unwritten.
func copyStable(dst, src raft.StableStore) error {
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := src.GetUint64([]byte(k))
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if err := dst.SetUint64([]byte(k), v); err != nil {
			return err
		}
	}
	v, err := src.Get([]byte("LastVoteCand"))
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("LastVoteCand: %w", err)
	}
	return dst.Set([]byte("LastVoteCand"), v)
}

// retireBolt renames a moved raft.db to raft.db.migrated. A failure only
// leaves raft.db beside the WAL, which wins; the next start tries again.
func retireBolt(dir string, log hclog.Logger) {
	err := os.Rename(filepath.Join(dir, boltFile), filepath.Join(dir, boltMigrated))
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		log.Warn("could not rename raft.db after moving it into the write-ahead log", "dir", dir, "err", err)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lockDir takes an exclusive lock on dir so that one log is never opened
// twice (by another process, or by a second node in this one); the lock
// ends with the file or the process.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another node", dir)
		}
		return nil, err
	}
	return f, nil
}

// lockedStore releases the data dir's lock after closing the log.
type lockedStore struct {
	logStore
	lock *os.File
}

func (s lockedStore) Close() error {
	err := s.logStore.Close()
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// IsMonotonic passes on whether the log refuses gaps between indexes (the
// WAL does); Raft then clears the log when it installs a snapshot.
func (s lockedStore) IsMonotonic() bool {
	m, ok := s.logStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
