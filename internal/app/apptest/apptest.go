// Package apptest starts the whole application (internal/app) for a test:
// its own database cloned from the migrated template, a Raft node on
// loopback, the web server on 127.0.0.1 with a free port. Tests reach it
// over real HTTP at App.URL.
package apptest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"switchboard/internal/app"
	"switchboard/internal/auth"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/mail"
	"switchboard/internal/mail/mailtest"
	"switchboard/internal/web"
)

// Server is a running application and what a test needs to reach it.
type Server struct {
	*app.App
	// Key signs the server's access tokens (a test may forge one).
	Key ed25519.PrivateKey
	// DatabaseURL is the database it runs on, for a second replica.
	DatabaseURL string
	// Mail is the in-test SMTP server the application sends its mail to.
	Mail *mailtest.Server
}

// Option changes the application's configuration before it is built.
type Option func(*app.Config)

// WithDatabase runs the server on an existing database (a second replica of
// another test server) instead of a fresh one.
func WithDatabase(url string) Option { return func(c *app.Config) { c.DatabaseURL = url } }

// WithKey signs access tokens with the seed of key (replicas share it).
func WithKey(key ed25519.PrivateKey) Option {
	return func(c *app.Config) { c.JWTKey = base64.StdEncoding.EncodeToString(key.Seed()) }
}

// WithLog sends the server's log to log instead of discarding it.
func WithLog(log *slog.Logger) Option { return func(c *app.Config) { c.Log = log } }

// Start builds and serves the application for t; it stops when t ends. It
// returns once the server answers and, unless the node waits to join a
// group, its Raft group has a leader.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	smtp := mailtest.New(t)
	cfg := app.Config{
		Mail:     mail.Config{URL: smtp.URL(), From: "Switchboard <switchboard@example.test>", Backoff: 50 * time.Millisecond},
		DataDir:  t.TempDir(),
		Listener: ln,
		JWTKey:   base64.StdEncoding.EncodeToString(key.Seed()),
		NodeID:   "n1",
		RaftAddr: "127.0.0.1:0",
		// A short failure-detection time: a single node elects itself in a
		// fraction of a second instead of one.
		RaftTimeout: 150 * time.Millisecond,
		// Every test client signs up and in from 127.0.0.1, often to the
		// same addresses: the limits are for other tests to tighten.
		Auth: auth.Config{LoginBurst: 1000, LoginEvery: time.Millisecond, SignupBurst: 1000, SignupEvery: time.Millisecond,
			MailBurst: 1000, MailEvery: time.Millisecond},
		Log: slog.New(web.LogHandler(slog.NewTextHandler(io.Discard, nil))),
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = dbtest.NewURL(t)
	}
	if seed, err := base64.StdEncoding.DecodeString(cfg.JWTKey); err == nil && len(seed) == ed25519.SeedSize {
		key = ed25519.NewKeyFromSeed(seed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("start the application: %v", err)
	}
	serveCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(serveCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if !cfg.RaftJoin {
		deadline := time.Now().Add(30 * time.Second)
		for a.Locks.Ready() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("the Raft group has no leader: %v", a.Locks.Ready())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return &Server{App: a, Key: key, DatabaseURL: cfg.DatabaseURL, Mail: smtp}
}
