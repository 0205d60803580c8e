package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"switchboard/internal/database"
	"switchboard/internal/problem"
)

// Config tunes a Store. Zero fields take the defaults listed.
type Config struct {
	// MaxBatchEvents bounds the events of one append (default 1,000).
	MaxBatchEvents int
	// MaxBatchBytes bounds the types, data and metadata of one append, and
	// the data of a snapshot (default 4 MiB).
	MaxBatchBytes int
	// MaxPageSize caps the limit of a read (default 1,000).
	MaxPageSize int
	// AppendLockWait bounds how long an append waits for another append to
	// the same stream (default 5 s; a shorter ctx deadline wins). It is
	// enforced by the server (lock_timeout), so an append whose caller gave
	// up cannot commit later.
	AppendLockWait time.Duration
	// MaxGroupSize is the most appends that share a transaction and its
	// commit (group.go; default 32). 1 turns group commit off.
	MaxGroupSize int
	// AppendFlushers is how many group commits run at once (default 4).
	AppendFlushers int
	// SequencerBatch is the most transactions the sequencer positions in
	// one statement (default 1,000); it never splits one.
	SequencerBatch int
	// SequencerPoll is how often the sequencer looks for appended events
	// without being woken, a safety net: appends through this Store wake it
	// at once, and appends through other replicas notify it (default
	// 250 ms).
	SequencerPoll time.Duration
	// LeaderRetry is how often a standby tries to become the sequencer
	// (default 1 s).
	LeaderRetry time.Duration
	// SubscriptionBuffer is the channel capacity of a subscription and the
	// page size of its reads (default 256).
	SubscriptionBuffer int
	// SubscriptionPoll is how often the shared reader of a tenant's live
	// subscriptions reads without being woken, a safety net under the
	// notifications (default 1 s).
	SubscriptionPoll time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxBatchEvents, 1000)
	def(&c.MaxBatchBytes, 4<<20)
	def(&c.MaxPageSize, 1000)
	def(&c.SequencerBatch, 1000)
	def(&c.MaxGroupSize, 32)
	def(&c.AppendFlushers, 4)
	def(&c.SubscriptionBuffer, 256)
	defD(&c.AppendLockWait, 5*time.Second)
	defD(&c.SequencerPoll, 250*time.Millisecond)
	defD(&c.LeaderRetry, time.Second)
	defD(&c.SubscriptionPoll, time.Second)
	return c
}

func (c Config) validate() error {
	if c.MaxBatchEvents < 1 || c.MaxBatchBytes < 1 || c.MaxPageSize < 1 || c.SequencerBatch < 1 || c.SubscriptionBuffer < 1 ||
		c.MaxGroupSize < 1 || c.AppendFlushers < 1 {
		return errors.New("eventstore: sizes in Config must be positive")
	}
	if c.AppendLockWait < 0 || c.SequencerPoll < 0 || c.LeaderRetry < 0 || c.SubscriptionPoll < 0 {
		return errors.New("eventstore: durations in Config must be positive")
	}
	return nil
}

// Store is the event store of every tenant on one database. Its methods are
// safe for concurrent use. Appends and reads work at once; Start runs the
// sequencer (which gives appended events their log positions) and the
// listener (which wakes subscriptions when events from other replicas get
// positions); Close stops them and every subscription.
type Store struct {
	cfg Config
	db  *database.DB
	log *slog.Logger

	// life is cancelled by Close; every goroutine of the Store watches it.
	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	subs broker
	wake chan struct{} // cap 1: an append asks the sequencer to run
	// notify (cap 1) asks notifyAppends to tell the sequencer of another
	// replica that appends committed here.
	notify   chan struct{}
	leading  atomic.Bool // this Store holds the sequencer lock
	closed   atomic.Bool
	instance string // tells this Store's notifications from other replicas'
	comb     combiner
	fan      fanout
	// groupFlushes counts group commits of two or more appends.
	groupFlushes atomic.Int64
	// logReads counts reads of the log ($all or a category), for tests of
	// shared reads.
	logReads atomic.Int64

	// startMu guards started and orders Start, Subscribe and Close: a
	// goroutine joins wg only while closed is false, so Close's Wait
	// covers every goroutine.
	startMu sync.Mutex
	started bool
}

// New returns a Store on db. It starts no goroutine: call Start for that.
func New(cfg Config, db *database.DB, log *slog.Logger) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	life, stop := context.WithCancel(context.Background())
	return &Store{
		cfg:      cfg,
		db:       db,
		log:      log,
		life:     life,
		stop:     stop,
		subs:     broker{subs: map[uuid.UUID]map[chan struct{}]struct{}{}},
		wake:     make(chan struct{}, 1),
		notify:   make(chan struct{}, 1),
		instance: uuid.NewString(),
		comb:     combiner{slots: make(chan struct{}, cfg.AppendFlushers)},
		fan:      fanout{tails: map[uuid.UUID]*tail{}},
	}, nil
}

// Start runs the sequencer and the notification listener until Close. Only
// one sequencer runs per database at a time, across replicas: the others wait
// as standbys on a PostgreSQL advisory lock.
func (s *Store) Start() error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.closed.Load() {
		return errors.New("eventstore: Start after Close")
	}
	if s.started {
		return errors.New("eventstore: already started")
	}
	s.started = true
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.runSequencer(s.life) }()
	go func() { defer s.wg.Done(); s.runListener(s.life) }()
	go func() { defer s.wg.Done(); s.notifyAppends(s.life) }()
	return nil
}

// Close stops the sequencer, the listener and every subscription, and waits
// for them. It does not close the database.
func (s *Store) Close() error {
	s.startMu.Lock()
	s.closed.Store(true)
	s.startMu.Unlock()
	s.stop()
	s.wg.Wait()
	return nil
}

// Leading reports whether this Store currently runs the sequencer.
func (s *Store) Leading() bool { return s.leading.Load() }

// Lag reports how far readers of the log trail appends, across all tenants
// (a server metric, not a tenant's).
func (s *Store) Lag(ctx context.Context) (Lag, error) {
	var l Lag
	var oldest *time.Duration
	// Positioned transactions are a prefix of the txid order: the pending
	// events are those after the sequencer's mark.
	b := &pgx.Batch{}
	b.Queue(`SELECT ` + noSeqScanSQL)
	b.Queue(`SELECT count(*), now() - min(created_at) FROM (
			SELECT created_at FROM events
			WHERE txid > (SELECT txid FROM event_sequencer WHERE singleton)
			LIMIT 1000000) p`)
	br := s.db.Pool.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&l.Pending, &oldest)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Lag{}, fmt.Errorf("event store lag: %w", err)
	}
	if oldest != nil && *oldest > 0 {
		l.Oldest = *oldest
	}
	return l, nil
}

// noSeqScanSQL keeps the planner off sequential scans for the rest of the
// transaction. Every event store statement is meant to run on an index, but
// the pool caches one generic plan per statement and connection, made at
// first use, when the tables may still be nearly empty; a plan that scans a
// then-tiny events table would scan all of it on every call for the life of
// the connection. It is part of every scope below, so all of the package's
// plans (those inside its SQL functions too) are made with it.
//
// Bitmap scans and parallel plans go too: they return rows out of index
// order, so a read that walks an index to its limit (a log or category
// read) would instead fetch every match and sort them, when the planner
// misjudges how far the walk goes.
//
// It turns JIT compilation off as well: a disabled plan node carries a huge
// cost estimate, which would cross jit_above_cost and compile every
// execution (hundreds of milliseconds) for no gain on these short
// statements.
const noSeqScanSQL = `set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
	set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)`

// scopeSQL is database.Scope's statement (the app role and the tenant for
// the rest of the, here implicit, transaction) plus noSeqScanSQL.
const scopeSQL = `SELECT set_config('role', '` + database.AppRole + `', true), set_config('app.tenant_id', $1, true), ` + noSeqScanSQL

// inTenant runs one statement scoped to tenant in one round trip: the scope
// and the statement travel in one pipeline, which PostgreSQL runs as one
// implicit transaction that commits at its end, so it serves writes as well
// as reads. scan is called for each row.
func (s *Store) inTenant(ctx context.Context, tenant uuid.UUID, query string, args []any, scan func(pgx.Rows) error) error {
	return s.db.RunScoped(ctx, scopeSQL, tenant, query, args, scan)
}

// mapPgError turns errors a client can cause into problems.
func mapPgError(err error, field string) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	// PostgreSQL's own message never reaches the client: it names the
	// server's internals and is not ours to word.
	switch pgErr.Code {
	case "22P02":
		return problem.Invalid(map[string]string{field: "is not valid JSON"})
	case "22P05":
		return problem.Invalid(map[string]string{field: `holds a \u0000 (NUL) character, which cannot be stored; escape it in your own encoding`})
	case "22021":
		return problem.Invalid(map[string]string{field: "holds text that is not valid UTF-8"})
	case "54000", "54001":
		return problem.Invalid(map[string]string{field: "is nested too deeply or too large to store"})
	case "40P01":
		return problem.Errorf(problem.CodeConflict, "a concurrent append used the same event ids; retry")
	}
	return err
}

// Collectors returns Prometheus gauges of the reader lag: how many committed
// events wait for a position, and the age of the oldest. They query the
// database when scraped, bounded by a second.
func (s *Store) Collectors() []prometheus.Collector {
	lag := func() Lag {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l, err := s.Lag(ctx)
		if err != nil {
			s.log.Warn("read event store lag", "err", err)
		}
		return l
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_eventstore_pending_events",
			Help: "Committed events not yet positioned in the log (held back by the sequencer or an older open transaction)."},
			func() float64 { return float64(lag().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_eventstore_lag_seconds",
			Help: "Age of the oldest committed event not yet positioned in the log."},
			func() float64 { return lag().Oldest.Seconds() }),
	}
}
