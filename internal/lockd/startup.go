package lockd

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// snapshotsDir is where raft.FileSnapshotStore keeps snapshots in the data
// dir.
const snapshotsDir = "snapshots"

// checkFiles validates what a node is about to start from, before Raft reads
// it: Raft panics, in its own goroutines where nobody can recover, when an
// entry it needs cannot be read, and when every snapshot fails it cannot
// start at all. So every log entry must be readable and hold the index it
// is stored under, a snapshot must restore when the data dir has any, and
// the snapshot and the log must leave no gap: the state is the snapshot
// plus every entry after it. A failure names the file and what to do.
//
// It reads the whole log once (a few tens of thousands of entries at most,
// bounded by TrailingLogs and SnapshotThreshold), and restores the newest
// readable snapshot into a scratch state machine, which Raft then does
// again: start-up pays that once for never crashing on its own files.
func checkFiles(dir string, join bool, store logStore, snaps raft.SnapshotStore) error {
	walPath := filepath.Join(dir, walDir)
	snapPath := filepath.Join(dir, snapshotsDir)

	if err := recovered(func() error {
		_, err := store.GetUint64([]byte("CurrentTerm"))
		if err != nil && err.Error() != "not found" { // how raft.StableStore says it
			return err
		}
		return nil
	}); err != nil {
		return damaged(dir, walPath, fmt.Errorf("stable state: %w", err))
	}

	var first, last uint64
	if err := recovered(func() (err error) {
		if first, err = store.FirstIndex(); err != nil {
			return err
		}
		last, err = store.LastIndex()
		return err
	}); err != nil {
		return damaged(dir, walPath, err)
	}

	metas, err := snaps.List()
	if err != nil {
		return damaged(dir, snapPath, err)
	}
	var snapIndex uint64
	var snapErrs []error
	restored := false
	for _, m := range metas {
		err := recovered(func() error {
			_, rc, err := snaps.Open(m.ID)
			if err != nil {
				return err
			}
			return newFSM(nil).Restore(rc) // closes rc
		})
		if err != nil {
			snapErrs = append(snapErrs, fmt.Errorf("%s: %w", m.ID, err))
			continue
		}
		snapIndex, restored = m.Index, true
		break
	}
	if len(metas) > 0 && !restored {
		// The log was compacted up to the snapshot, so it cannot stand
		// alone: both go.
		return fmt.Errorf("%s cannot be read (no snapshot restores: %w). %s", snapPath, errors.Join(snapErrs...), rejoinAdvice(dir, walPath, snapPath))
	}

	if last == 0 {
		if !restored && !join {
			// A node that moved its log out of raft.db has held one: an
			// empty log now means the WAL was lost, and starting would
			// bootstrap a new group or rejoin with nothing.
			if ok, err := exists(filepath.Join(dir, boltMigrated)); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("%s is missing, though this node moved its log there from %s (kept as %s): restore %s from a backup, or start the node as a joining member (Config.Join; for the server SWITCHBOARD_RAFT_JOIN=true) to copy the group's state from its leader",
					walPath, boltFile, boltMigrated, walPath)
			}
		}
		return nil
	}
	if first > snapIndex+1 {
		why := fmt.Errorf("the log starts at entry %d, but no snapshot covers the entries before it", first)
		if restored {
			why = fmt.Errorf("the log starts at entry %d, but the newest snapshot that restores ends at entry %d", first, snapIndex)
		}
		if len(snapErrs) > 0 {
			why = fmt.Errorf("%w (%w)", why, errors.Join(snapErrs...))
		}
		return damaged(dir, walPath+" and "+snapPath, why)
	}
	for i := first; i <= last; i++ {
		var l raft.Log
		err := recovered(func() error { return store.GetLog(i, &l) })
		if err == nil && l.Index != i {
			err = fmt.Errorf("holds entry %d", l.Index)
		}
		if err != nil {
			return damaged(dir, walPath, fmt.Errorf("entry %d of %d..%d: %w", i, first, last, err))
		}
	}
	return nil
}
