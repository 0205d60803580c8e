package pgembed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// account is the system user initdb and postgres run as when we are root.
type account struct {
	name     string
	uid, gid uint32
}

// runAccount returns the account to run PostgreSQL as, or nil to run it as
// ourselves (we are not root).
func runAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	const name = "postgres"
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("pgembed: PostgreSQL refuses to run as root and there is no %q system user to run it as (%v): create that user, run as another user, or set DATABASE_URL", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgembed: user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgembed: user %s: gid %q: %w", name, u.Gid, err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("pgembed: user %s has uid 0; PostgreSQL refuses to run as root", name)
	}
	return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
}

// defaultStateRoots are where a cluster goes when its configured directory is
// out of the run account's reach, in order: the system's state directory,
// then the temp dir.
func defaultStateRoots() []string {
	return []string{"/var/lib/switchboard", filepath.Join(os.TempDir(), "switchboard")}
}

// resolveDataDir returns the directory the cluster lives in: dir itself,
// unless acct (we are root) cannot reach it. Then it is a private directory
// under the first usable root, named after dir's absolute path so that the
// same configured dir always finds the same cluster again, and why says
// what was wrong with dir. That directory is created (0700, owned by acct)
// by prepareDataDir like any other; roots created here are 0755.
func resolveDataDir(dir string, acct *account, roots []string) (actual string, why, err error) {
	if acct == nil {
		return dir, nil, nil
	}
	why = checkTraversable(existingAncestor(filepath.Dir(dir)), acct)
	if why == nil {
		return dir, nil, nil
	}
	sum := sha256.Sum256([]byte(dir))
	name := "pgdata-" + hex.EncodeToString(sum[:8])
	var errs []error
	for _, root := range roots {
		if err := prepareStateRoot(root, acct); err != nil {
			errs = append(errs, err)
			continue
		}
		return filepath.Join(root, name), why, nil
	}
	return "", nil, fmt.Errorf("%w; and no private place was usable instead: %w", why, errors.Join(errs...))
}

// prepareStateRoot creates root (0755) if missing and checks it is safe to
// keep a cluster in: reachable by acct, and owned by us (root) or acct with
// no one else allowed to write, so no other user can have planted or can
// swap the cluster directory. That matters in the temp dir, where anyone
// may have made root (or a symbolic link by that name) first.
func prepareStateRoot(root string, acct *account) error {
	if err := mkdirParents(root, acct); err != nil {
		return err
	}
	trusted := func(fi fs.FileInfo) error {
		uid, _, ok := fileOwner(fi)
		if ok && uid != uint32(os.Geteuid()) && uid != acct.uid {
			return fmt.Errorf("pgembed: state dir %s is owned by uid %d, neither us nor %s", root, uid, acct.name)
		}
		return nil
	}
	li, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("pgembed: state dir: %w", err)
	}
	if err := trusted(li); err != nil {
		return err
	}
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("pgembed: state dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("pgembed: state dir %s is not a directory", root)
	}
	if err := trusted(fi); err != nil {
		return err
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("pgembed: state dir %s is mode %v: others may write in it", root, fi.Mode().Perm())
	}
	return checkTraversable(root, acct)
}

// prepareDataDir makes sure dir can hold a cluster run by acct and reports
// whether it still needs initdb (missing or empty). A fresh dir is created
// with mode 0700 and, under root, given to acct; directories created above
// it get 0755. An existing cluster is left as it is: PostgreSQL itself
// checks its ownership and mode.
func prepareDataDir(dir string, acct *account) (fresh bool, err error) {
	if acct != nil {
		// Checked first so a failure leaves nothing behind. Directories
		// still to be created will be 0755.
		if err := checkTraversable(existingAncestor(filepath.Dir(dir)), acct); err != nil {
			return false, err
		}
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := mkdirParents(filepath.Dir(dir), acct); err != nil {
			return false, err
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return false, fmt.Errorf("pgembed: create data dir: %w", err)
		}
		fresh = true
	case err != nil:
		return false, fmt.Errorf("pgembed: data dir: %w", err)
	case len(entries) == 0:
		fresh = true
	default:
		if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
			return false, fmt.Errorf("pgembed: data dir %s is neither empty nor a PostgreSQL cluster (no PG_VERSION); move it away or choose another", dir)
		}
	}
	if fresh {
		if acct != nil {
			if err := os.Chown(dir, int(acct.uid), int(acct.gid)); err != nil {
				return false, fmt.Errorf("pgembed: give data dir to user %s: %w", acct.name, err)
			}
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return false, fmt.Errorf("pgembed: data dir: %w", err)
		}
	}
	return fresh, nil
}

// existingAncestor returns dir if it exists, else its nearest existing
// ancestor.
func existingAncestor(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// mkdirParents creates dir and its missing ancestors. Under root they are
// made 0755 whatever the umask, so acct can reach the data dir.
func mkdirParents(dir string, acct *account) error {
	var missing []string
	for d := dir; ; {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pgembed: data dir parent: %w", err)
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("pgembed: create data dir parent: %w", err)
		}
		if acct != nil {
			if err := os.Chmod(d, 0o755); err != nil {
				return fmt.Errorf("pgembed: data dir parent: %w", err)
			}
		}
	}
	return nil
}

// checkTraversable reports an error naming the first of dir and its
// ancestors that acct (with no supplementary groups) cannot search. Such a
// parent is not loosened here: it may be /root or another private place,
// and the fix is a data dir elsewhere.
func checkTraversable(dir string, acct *account) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgembed: data dir parent: %w", err)
		}
		if !canSearch(fi, acct) {
			return fmt.Errorf("pgembed: user %s cannot reach the data dir: %s is mode %v; choose a data dir under a traversable path (e.g. /var/lib/switchboard) or chmod o+x %s",
				acct.name, d, fi.Mode().Perm(), d)
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

// canSearch applies the classic Unix permission check for the search (x)
// bit: owner bits if acct owns fi, else group bits if its primary group
// does, else the others' bits. ACLs are not consulted.
func canSearch(fi fs.FileInfo, acct *account) bool {
	uid, gid, ok := fileOwner(fi)
	if !ok {
		return true // no ownership information: let the OS decide
	}
	perm := fi.Mode().Perm()
	switch {
	case uid == acct.uid:
		return perm&0o100 != 0
	case gid == acct.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// initdb creates the cluster in dataDir. On failure or cancellation initdb
// (sent SIGINT) removes what it wrote.
func initdb(ctx context.Context, bin, dataDir string, acct *account, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, initdbTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", dataDir,
		"-U", superuser,
		"--auth=trust",
		"--encoding=UTF8",
		// C collation: bytewise, independent of the environment's locale
		// (which may name one not installed) and of libc upgrades.
		"--locale=C",
		"--no-sync",
	)
	cmd.Dir = "/"
	cmd.SysProcAttr = sysProcAttr(acct)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out

	log.Info("embedded PostgreSQL: initialising cluster", "data_dir", dataDir, "bin_dir", bin)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return fmt.Errorf("pgembed: initdb %s: %w\n%s", dataDir, err, lastLines(out.String(), logTailLines))
	}
	log.Debug("embedded PostgreSQL: initdb done", "elapsed", time.Since(start).Round(time.Millisecond), "output", out.String())
	return nil
}

// openServerLog opens DataDir/log/postgres.log for appending and returns it
// with its current size, from which the lines of this start are read.
func openServerLog(dataDir string, acct *account) (*os.File, int64, error) {
	dir := filepath.Join(dataDir, "log")
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, 0, fmt.Errorf("pgembed: server log dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("pgembed: server log: %w", err)
	}
	if acct != nil {
		// Not needed for writing (postgres inherits the descriptor), but
		// the cluster's files should all belong to its user.
		for _, p := range []string{dir, f.Name()} {
			if err := os.Chown(p, int(acct.uid), int(acct.gid)); err != nil {
				f.Close()
				return nil, 0, fmt.Errorf("pgembed: server log: %w", err)
			}
		}
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("pgembed: server log: %w", err)
	}
	return f, size, nil
}

// makeSocketDir creates a private directory for the server's socket. It is
// short (the socket path must fit in 107 bytes) and mode 0700: with trust
// authentication, whoever can reach the socket is superuser.
func makeSocketDir(acct *account) (string, error) {
	dir, err := os.MkdirTemp(socketRoot, "sbpg")
	if err != nil {
		return "", fmt.Errorf("pgembed: socket dir: %w", err)
	}
	if n := len(dir) + len(socketFileName); n > maxSocketPath {
		os.Remove(dir)
		return "", fmt.Errorf("pgembed: socket path %s%s is %d bytes, over the limit of %d", dir, socketFileName, n, maxSocketPath)
	}
	if acct != nil {
		if err := os.Chown(dir, int(acct.uid), int(acct.gid)); err != nil {
			os.Remove(dir)
			return "", fmt.Errorf("pgembed: socket dir: %w", err)
		}
	}
	return dir, nil
}
