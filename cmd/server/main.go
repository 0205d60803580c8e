// Command switchboard runs the Switchboard control plane: the REST API, the
// browser UI and the coordination services, on one PostgreSQL database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"switchboard/internal/api"
	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/database"
	"switchboard/internal/eventstore"
	"switchboard/internal/idempotency"
	"switchboard/internal/lockd"
	"switchboard/internal/pgembed"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
	"switchboard/internal/ui"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := loadConfig(args)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated in loadConfig
	log := slog.New(api.LogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		pg, err := pgembed.Start(ctx, pgembed.Config{DataDir: filepath.Join(cfg.DataDir, "postgres"), Logger: log})
		if err != nil {
			return err
		}
		defer func() {
			if err := pg.Stop(); err != nil {
				log.Error("stop private PostgreSQL", "err", err)
			}
		}()
		dbURL = pg.URL()
		log.Info("private PostgreSQL started", "data_dir", filepath.Join(cfg.DataDir, "postgres"))
	}
	db, err := database.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := database.Migrate(ctx, db.Pool); err != nil {
		return err
	}

	key, err := auth.LoadSigningKey(cfg.JWTKey, filepath.Join(cfg.DataDir, "jwt-ed25519.pem"))
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	peers, _ := cfg.peers()       // validated in loadConfig
	peerURLs, _ := cfg.peerURLs() // validated in loadConfig
	locks, err := lockd.New(lockd.Config{NodeID: cfg.NodeID, BindAddr: cfg.RaftAddr, DataDir: filepath.Join(cfg.DataDir, "raft"),
		Peers: peers, Join: cfg.RaftJoin,
		HeartbeatTimeout: cfg.RaftTimeout, ElectionTimeout: cfg.RaftTimeout, LeaderLeaseTimeout: cfg.RaftTimeout / 2}, log)
	if err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	defer func() {
		if err := locks.Close(); err != nil {
			log.Error("stop raft", "err", err)
		}
	}()

	events, err := eventstore.New(eventstore.Config{}, db, log.With("component", "eventstore"))
	if err != nil {
		return err
	}
	if err := events.Start(); err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	defer func() {
		if err := events.Close(); err != nil {
			log.Error("stop event store", "err", err)
		}
	}()

	ten := tenancy.New(db)
	authn, err := auth.New(auth.Config{Issuer: cfg.BaseURL, Key: key}, db, ten)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(events.Collectors()...)
	idem := idempotency.New(db)
	deps := api.Deps{
		Auth: authn, Tenancy: ten, RBAC: rbac.New(db), Audit: audit.NewLog(db), Idem: idem, Log: log,
		Registry: reg, Locks: locks, Events: events, TrustProxy: cfg.TrustProxy, Operators: strings.Split(cfg.Operators, ","), PeerURLs: peerURLs,
		Ready: func(ctx context.Context) error {
			if err := db.Pool.Ping(ctx); err != nil {
				return fmt.Errorf("database: %w", err)
			}
			if err := locks.Ready(); err != nil {
				return fmt.Errorf("raft: %w", err)
			}
			return nil
		},
	}
	e, a := api.NewServer(deps)
	ui.Register(e, a, ui.Deps{API: deps, BaseURL: cfg.BaseURL})

	var wg sync.WaitGroup
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer func() { stopSweep(); wg.Wait() }()
	wg.Go(func() { sweepEvery(sweepCtx, log, "idempotency keys", time.Hour, idem.Sweep) })
	wg.Go(func() { sweepEvery(sweepCtx, log, "login throttle", time.Minute, authn.SweepLoginThrottle) })

	srv := &http.Server{Addr: cfg.Addr, Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("switchboard listening", "addr", cfg.Addr, "url", cfg.BaseURL)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
