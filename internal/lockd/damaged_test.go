package lockd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
)

// smallSegments makes the WAL seal a segment every few dozen entries, so a
// short test has sealed segments to damage.
var smallSegments = nodeOptions{walSegmentSize: 8 << 10}

// writeKeys puts n keys through node i of c.
func writeKeys(t *testing.T, c *cluster, ten uuid.UUID, n int) {
	t.Helper()
	ctx := context.Background()
	for k := range n {
		if _, err := c.leader().Put(ctx, ten, fmt.Sprintf("key-%03d", k), []byte(`"some value to fill the segments"`), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// segments lists the WAL's segment files of a data dir in log order.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files) // named by base index, zero-padded
	return files
}

// wantDamaged fails unless err refuses the start, names path and says how
// to rejoin.
func wantDamaged(t *testing.T, err error, path string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the node started on damaged files (%s)", path)
	}
	msg := err.Error()
	if !strings.Contains(msg, path) || !strings.Contains(msg, "SWITCHBOARD_RAFT_JOIN=true") {
		t.Fatalf("error %q does not name %s and how to rejoin", msg, path)
	}
	t.Logf("refused: %v", err)
}

// startErr starts node 0 of a stopped single-node cluster and returns the
// error; a node that starts is closed.
func startErr(c *cluster, join bool) error {
	opts := c.opts
	opts.wrapStream = c.pn.wrap
	n, err := newNode(c.config(0, join), testLog(), opts)
	if err == nil {
		n.Close()
	}
	return err
}

// Damaged files of a node's data dir are an error that names the file and
// says what to do; the node never panics and never starts on them. Each
// case damages a stopped single-node group's files the way a disk or an
// operator might.
func TestNew_DamagedFilesAreAClearError(t *testing.T) {
	cases := []struct {
		name string
		// damage breaks the files in dir and returns the path the error
		// must name.
		damage func(t *testing.T, dir string) string
	}{
		{"a sealed segment cut short", func(t *testing.T, dir string) string {
			segs := segments(t, dir)
			if len(segs) < 3 {
				t.Fatalf("want sealed segments, have %v", segs)
			}
			fi, err := os.Stat(segs[1])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(segs[1], fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, walDir)
		}},
		{"a sealed segment missing", func(t *testing.T, dir string) string {
			if err := os.Remove(segments(t, dir)[1]); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, walDir)
		}},
		{"garbage in the index", func(t *testing.T, dir string) string {
			if err := os.WriteFile(filepath.Join(dir, walDir, "wal-meta.db"), []byte(strings.Repeat("garbage!", 4096)), 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, walDir)
		}},
		{"garbage in a snapshot", func(t *testing.T, dir string) string {
			states, err := filepath.Glob(filepath.Join(dir, snapshotsDir, "*", "state.bin"))
			if err != nil || len(states) != 1 {
				t.Fatalf("snapshots %v, %v", states, err)
			}
			fi, err := os.Stat(states[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(states[0], []byte(strings.Repeat("x", int(fi.Size()))), 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, snapshotsDir)
		}},
		{"a snapshot that no longer lists", func(t *testing.T, dir string) string {
			// Its metadata is garbage, so the snapshot store skips it; the
			// log was compacted behind it, so entries are missing.
			metas, err := filepath.Glob(filepath.Join(dir, snapshotsDir, "*", "meta.json"))
			if err != nil || len(metas) != 1 {
				t.Fatalf("snapshots %v, %v", metas, err)
			}
			if err := os.WriteFile(metas[0], []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, walDir)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// TrailingLogs 1: a snapshot compacts the log behind it.
			c := newClusterOpts(t, 1, func(cfg *Config) { cfg.TrailingLogs = 1 }, smallSegments)
			ten := uuid.New()
			writeKeys(t, c, ten, 150)
			if err := c.node(0).raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
			writeKeys(t, c, ten, 150)
			c.stop(0)
			dir := c.nodes[0].dir
			path := tc.damage(t, dir)
			wantDamaged(t, startErr(c, false), path)
			// The refusal released the data dir: the same error again, not
			// "in use".
			wantDamaged(t, startErr(c, false), path)
		})
	}
}

// The advice works: a follower whose log is damaged is refused; once its
// log is moved aside and it starts as a joining member, it copies the
// group's state from the leader and serves like the others.
func TestNew_DamagedFollowerRejoinsAsAdvised(t *testing.T) {
	c := newClusterOpts(t, 3, nil, smallSegments)
	ctx := context.Background()
	ten := uuid.New()
	l, err := c.leader().Acquire(ctx, ten, "held", "me", time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeKeys(t, c, ten, 150)
	c.waitConverged(10 * time.Second)
	f := (c.leaderIndex() + 1) % 3
	c.stop(f)
	dir := c.nodes[f].dir
	segs := segments(t, dir)
	if err := os.Truncate(segs[1], 100); err != nil {
		t.Fatal(err)
	}

	opts := c.opts
	opts.wrapStream = c.pn.wrap
	_, err = newNode(c.config(f, false), testLog(), opts)
	wantDamaged(t, err, filepath.Join(dir, walDir))

	if err := os.Rename(filepath.Join(dir, walDir), filepath.Join(dir, "wal.damaged")); err != nil {
		t.Fatal(err)
	}
	c.start(f, true)
	writeKeys(t, c, ten, 5)
	c.requireSameState()
	c.stop(c.leaderIndex())
	c.waitLeader(10 * time.Second)
	if ok, err := c.leader().Verify(ctx, ten, "held", l.FencingToken); err != nil || !ok {
		t.Fatalf("the lock after the rejoined node took part in a failover: %v %v", ok, err)
	}
}

// Layouts of the data dir that this version did not leave behind, or that
// lost their log, are refused with what to do instead of being opened as an
// empty log (which would start the node with nothing, and make the WAL
// delete segment files its index does not list).
func TestLogStore_RefusesUnrecognisedLayouts(t *testing.T) {
	// A data dir with a log, stopped.
	withLog := func(t *testing.T) string {
		c := newClusterOpts(t, 1, nil, smallSegments)
		writeKeys(t, c, uuid.New(), 100)
		c.stop(0)
		return c.nodes[0].dir
	}
	cases := []struct {
		name string
		// layout builds the dir; want is what the error must say.
		layout func(t *testing.T) (dir string, want []string)
	}{
		{"segments without their index", func(t *testing.T) (string, []string) {
			dir := withLog(t)
			if err := os.Remove(filepath.Join(dir, walDir, "wal-meta.db")); err != nil {
				t.Fatal(err)
			}
			return dir, []string{filepath.Join(dir, walDir), "no index", "SWITCHBOARD_RAFT_JOIN=true"}
		}},
		{"an unfinished move whose raft.db is gone", func(t *testing.T) (string, []string) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, walDir+".new"), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir, []string{filepath.Join(dir, walDir+".new"), "unfinished move", "SWITCHBOARD_RAFT_JOIN=true"}
		}},
		{"a move left beside the log", func(t *testing.T) (string, []string) {
			dir := withLog(t)
			if err := os.Mkdir(filepath.Join(dir, walDir+".new"), 0o700); err != nil {
				t.Fatal(err)
			}
			return dir, []string{filepath.Join(dir, walDir+".new"), "aside"}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, want := tc.layout(t)
			before := segments(t, dir)
			s, err := openLogStore(dir, hclog.NewNullLogger(), 0)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			if after := segments(t, dir); !slices.Equal(before, after) {
				t.Fatalf("segment files changed from %v to %v", before, after)
			}
		})
	}
}

// A node whose log was moved out of raft.db and then lost (raft.db.migrated
// without a WAL) is refused rather than started empty; started as a joining
// member, as the error advises, it starts.
func TestNew_LostLogAfterMoveIsRefusedUnlessJoining(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.stop(0)
	dir := c.nodes[0].dir
	if err := os.RemoveAll(filepath.Join(dir, walDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, boltMigrated), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := startErr(c, false)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, walDir)+" is missing") || !strings.Contains(err.Error(), "SWITCHBOARD_RAFT_JOIN=true") {
		t.Fatalf("started without its log: %v", err)
	}
	if err := startErr(c, true); err != nil {
		t.Fatalf("joining: %v", err)
	}
}
