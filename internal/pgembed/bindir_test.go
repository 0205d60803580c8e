package pgembed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBinDir makes dir/initdb and dir/postgres (executable scripts, never
// run) unless only is given, in which case it makes just that one.
func fakeBinDir(t *testing.T, dir string, only ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{"initdb", "postgres"}
	if len(only) > 0 {
		names = only
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// emptyFinder sees a machine with no PostgreSQL at all.
func emptyFinder() finder {
	return finder{
		getenv:   func(string) string { return "" },
		lookPath: func(string) (string, error) { return "", errors.New("not on PATH") },
		pgConfig: func(context.Context) (string, error) { return "", errors.New("no pg_config") },
	}
}

func TestFind_NothingInstalled_OneLineError(t *testing.T) {
	f := emptyFinder()
	f.globs = []string{filepath.Join(t.TempDir(), "*", "bin")}
	_, err := f.find(context.Background(), "")
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("find = %v, want ErrNotInstalled", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "install PostgreSQL") || !strings.Contains(msg, "DATABASE_URL") {
		t.Errorf("message %q: want one line saying to install PostgreSQL or set DATABASE_URL", msg)
	}
}

func TestFind_Order(t *testing.T) {
	root := t.TempDir()
	explicit := fakeBinDir(t, filepath.Join(root, "explicit"))
	env := fakeBinDir(t, filepath.Join(root, "env"))
	real := fakeBinDir(t, filepath.Join(root, "real"))
	onPath := filepath.Join(root, "path")
	if err := os.MkdirAll(onPath, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(real, "initdb"), filepath.Join(onPath, "initdb")); err != nil {
		t.Fatal(err)
	}
	pgConfig := fakeBinDir(t, filepath.Join(root, "pgconfig"))
	clientOnly := fakeBinDir(t, filepath.Join(root, "clientonly"), "initdb") // no postgres
	installs := filepath.Join(root, "lib")
	for _, v := range []string{"9.6", "15", "10"} {
		fakeBinDir(t, filepath.Join(installs, v, "bin"))
	}
	fakeBinDir(t, filepath.Join(installs, "17", "bin"), "initdb") // newest, but incomplete

	withEnv := func(f finder, d string) finder {
		f.getenv = func(k string) string {
			if k == "PG_BINDIR" {
				return d
			}
			return ""
		}
		return f
	}
	withPath := func(f finder, p string) finder {
		f.lookPath = func(string) (string, error) { return p, nil }
		return f
	}
	withPgConfig := func(f finder, d string) finder {
		f.pgConfig = func(context.Context) (string, error) { return d, nil }
		return f
	}
	base := emptyFinder()
	base.globs = []string{filepath.Join(installs, "*", "bin")}
	all := withPgConfig(withPath(withEnv(base, env), filepath.Join(onPath, "initdb")), pgConfig)

	cases := []struct {
		name     string
		f        finder
		explicit string
		want     string
	}{
		{"Config.BinDir first", all, explicit, explicit},
		{"then PG_BINDIR", all, "", env},
		{"then initdb on PATH, symlink resolved", withEnv(all, ""), "", real},
		{"then pg_config --bindir", withPath(withEnv(all, ""), filepath.Join(clientOnly, "initdb")), "", pgConfig},
		{"pg_config without postgres is passed over", withPgConfig(base, clientOnly), "", filepath.Join(installs, "15", "bin")},
		{"then the newest complete install", base, "", filepath.Join(installs, "15", "bin")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.f.find(context.Background(), c.explicit)
			if err != nil || got != c.want {
				t.Errorf("find = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestFind_ExplicitDirWithoutBinariesIsAnError(t *testing.T) {
	empty := t.TempDir()
	f := emptyFinder()
	if _, err := f.find(context.Background(), empty); err == nil || !strings.Contains(err.Error(), "BinDir") {
		t.Errorf("Config.BinDir without binaries: %v", err)
	}
	f.getenv = func(string) string { return empty }
	if _, err := f.find(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "PG_BINDIR") {
		t.Errorf("PG_BINDIR without binaries: %v", err)
	}
}

func TestFind_ThisMachine(t *testing.T) {
	d, err := systemFinder().find(context.Background(), "")
	if err != nil {
		t.Fatalf("find on this machine: %v", err)
	}
	if !hasServer(d) {
		t.Errorf("found %s, which lacks initdb or postgres", d)
	}
	t.Logf("PostgreSQL binaries: %s", d)
}

func TestVersionOf(t *testing.T) {
	for path, want := range map[string]string{
		"/usr/lib/postgresql/9.6/bin":           "[9 6]",
		"/usr/lib/postgresql/15/bin":            "[15]",
		"/usr/pgsql-16/bin":                     "[16]",
		"/opt/homebrew/opt/postgresql@17/bin":   "[17]",
		"/opt/homebrew/opt/postgresql@14.2/bin": "[14 2]",
		"/somewhere/bin":                        "[]",
	} {
		if got := fmt.Sprint(versionOf(path)); got != want {
			t.Errorf("versionOf(%s) = %s, want %s", path, got, want)
		}
	}
}
