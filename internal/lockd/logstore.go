package lockd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/migrate"
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
	lockFile = "lock"    // held (flock) while a node has the dir open
	walDir   = "wal"     // the log: segment files and their index
	boltFile = "raft.db" // the log as earlier versions kept it
)

// openLogStore opens the node's log in dir. The durable log is a segmented
// write-ahead log, which costs one fsync per batch of entries where a bbolt
// B-tree costs two (data, then meta page). A log left in raft.db by an
// earlier version is copied into the write-ahead log once, then removed.
func openLogStore(dir string, log hclog.Logger) (_ logStore, err error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	wal, err := openWAL(dir, log)
	if err != nil {
		return nil, err
	}
	return lockedStore{wal, lock}, nil
}

// openWAL opens dir/wal, first moving a raft.db log into it when the WAL
// does not exist yet. The copy is made in a temporary directory and renamed
// into place, so a crash during it leaves raft.db as the log.
func openWAL(dir string, log hclog.Logger) (logStore, error) {
	path := filepath.Join(dir, walDir)
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return openWALAt(path, log)
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, boltFile)); err == nil {
		if err := migrateBolt(dir, log); err != nil {
			return nil, fmt.Errorf("move raft.db into the write-ahead log: %w", err)
		}
		return openWALAt(path, log)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		return nil, err
	}
	return openWALAt(path, log)
}

// walStore closes the WAL's index (its metadata store) with it, which the
// WAL's own Close leaves open: a node restarted in the same process would
// otherwise wait forever for the index file's lock.
type walStore struct {
	*raftwal.WAL
	meta *metadb.BoltMetaDB
}

func openWALAt(path string, log hclog.Logger) (walStore, error) {
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(path, raftwal.WithLogger(log), raftwal.WithMetaStore(meta))
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

func migrateBolt(dir string, log hclog.Logger) error {
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
	wal, err := openWALAt(tmp, log)
	if err != nil {
		return err
	}
	ctx := context.Background()
	err = migrate.CopyLogs(ctx, wal, bolt, 1<<20, nil)
	if err == nil {
		err = migrate.CopyStable(ctx, wal, bolt, nil, nil, nil)
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
	log.Info("moved the raft log from raft.db into the write-ahead log", "dir", dir)
	return os.Remove(filepath.Join(dir, boltFile))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lockDir takes an exclusive lock on dir so that two processes never open
// one log; the lock ends with the file (or the process).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another process", dir)
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
