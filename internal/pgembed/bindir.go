package pgembed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNotInstalled is returned by Start when no PostgreSQL server binaries
// are found. Its message is one line meant for the user.
var ErrNotInstalled = errors.New("no PostgreSQL server binaries (initdb, postgres) found: install PostgreSQL or set DATABASE_URL")

// finder locates the directory holding initdb and postgres. Its fields are
// its view of the machine, replaced in tests.
type finder struct {
	getenv   func(string) string
	lookPath func(string) (string, error)
	pgConfig func(context.Context) (string, error) // output of `pg_config --bindir`
	globs    []string                              // install locations, one version per match
}

// systemFinder looks at the real machine.
func systemFinder() finder {
	return finder{
		getenv:   os.Getenv,
		lookPath: exec.LookPath,
		pgConfig: pgConfigBindir,
		globs: []string{
			"/usr/lib/postgresql/*/bin",                       // Debian, Ubuntu
			"/usr/pgsql-*/bin",                                // PGDG RPMs
			"/opt/homebrew/opt/postgresql@*/bin",              // Homebrew, Apple silicon
			"/usr/local/opt/postgresql@*/bin",                 // Homebrew, Intel
			"/home/linuxbrew/.linuxbrew/opt/postgresql@*/bin", // Homebrew on Linux
		},
	}
}

// find returns the first of these that holds both initdb and postgres:
// explicit (Config.BinDir), $PG_BINDIR, the real directory of initdb on
// PATH, pg_config --bindir, the newest of the install locations. An
// explicit or $PG_BINDIR directory without the binaries is an error, not
// a reason to look elsewhere.
func (f finder) find(ctx context.Context, explicit string) (string, error) {
	if explicit != "" {
		if !hasServer(explicit) {
			return "", fmt.Errorf("pgembed: Config.BinDir %s does not hold initdb and postgres", explicit)
		}
		return explicit, nil
	}
	if d := f.getenv("PG_BINDIR"); d != "" {
		if !hasServer(d) {
			return "", fmt.Errorf("pgembed: PG_BINDIR=%s does not hold initdb and postgres", d)
		}
		return d, nil
	}
	if p, err := f.lookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if d := filepath.Dir(p); hasServer(d) {
			return d, nil
		}
	}
	if d, err := f.pgConfig(ctx); err == nil && d != "" && hasServer(d) {
		return d, nil
	}
	var candidates []string
	for _, g := range f.globs {
		m, err := filepath.Glob(g)
		if err != nil {
			return "", fmt.Errorf("pgembed: bad install pattern %q: %w", g, err)
		}
		candidates = append(candidates, m...)
	}
	// Newest first; on a tie keep the order of the patterns.
	slices.SortStableFunc(candidates, func(a, b string) int {
		return slices.Compare(versionOf(b), versionOf(a))
	})
	for _, d := range candidates {
		if hasServer(d) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

// pgConfigBindir runs `pg_config --bindir`.
func pgConfigBindir(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// hasServer reports whether dir holds executable initdb and postgres.
func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf reads the version from an install path: the last path element
// that ends in a dotted number, after any "-" or "@"
// ("/usr/lib/postgresql/9.6/bin" → [9 6], "/usr/pgsql-16/bin" → [16]).
// A path without one sorts last.
func versionOf(path string) []int {
	parts := strings.Split(filepath.ToSlash(path), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		el := parts[i]
		if j := strings.LastIndexAny(el, "-@"); j >= 0 {
			el = el[j+1:]
		}
		if v, ok := parseVersion(el); ok {
			return v
		}
	}
	return nil
}

func parseVersion(s string) ([]int, bool) {
	if s == "" {
		return nil, false
	}
	var v []int
	for f := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}
