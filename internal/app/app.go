// Package app is Switchboard's composition root: it builds the whole
// application — database (a private PostgreSQL when no URL is given), keys,
// the Raft node, the event store, identity, authorization, the live hub, the
// web server with the API and the UI mounted — from one Config. cmd/server
// and every test that needs a running server build it here, so tests
// exercise the wiring production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"switchboard/internal/access"
	"switchboard/internal/api"
	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/catalog"
	"switchboard/internal/catalog/backstage"
	"switchboard/internal/database"
	"switchboard/internal/discovery"
	"switchboard/internal/dlq"
	"switchboard/internal/egress"
	"switchboard/internal/eventstore"
	"switchboard/internal/health"
	"switchboard/internal/idempotency"
	"switchboard/internal/live"
	"switchboard/internal/lockd"
	"switchboard/internal/mail"
	"switchboard/internal/pgembed"
	"switchboard/internal/rbac"
	"switchboard/internal/secrets"
	"switchboard/internal/tenancy"
	"switchboard/internal/tracing"
	"switchboard/internal/ui"
	"switchboard/internal/web"
)

// Config is everything the application is built from. cmd/server fills it
// from the environment and flags; tests fill it directly.
type Config struct {
	Addr        string // listen address, unless Listener is set
	DatabaseURL string // empty: a private PostgreSQL in DataDir/postgres
	DataDir     string // private database, generated keys, the Raft log
	// BaseURL is the public URL (default http://<listen address>): the
	// issuer of tokens and the one browser origin the server accepts.
	BaseURL    string
	JWTKey     string // base64 Ed25519 seed; empty: DataDir/jwt-ed25519.pem
	TrustProxy bool

	NodeID      string
	RaftAddr    string
	RaftPeers   []lockd.Peer
	RaftJoin    bool
	RaftTimeout time.Duration // default 500ms
	// PeerURLs maps the Raft group's node ids to their Switchboard URLs.
	PeerURLs map[string]string

	Operators    []string // emails of the platform's operators (they must confirm them)
	MetricsToken string   // lets GET /metrics on the main listener answer its bearer
	MetricsAddr  string   // serves /metrics on a listener of its own

	// AllowSuperuser runs on a database role that bypasses row-level
	// security (refused otherwise).
	AllowSuperuser bool
	// Mail is where mail (verification links) goes: without a URL it is
	// written to the log.
	Mail mail.Config

	// SecretKeys seal broker credentials at rest ("id:base64key,...", the
	// first seals); empty: DataDir/secret-keys, made on first start.
	SecretKeys string
	// EgressDeny lists the networks (CIDRs, addresses) the server's own
	// connections to brokers and health checks must not reach.
	EgressDeny []string

	// DiscoveryEvery is how often every broker is read again to keep its
	// drift current (default 5m, at least 1m).
	DiscoveryEvery time.Duration

	// DLQBodyCap is the most of a dead letter's body capture keeps (default
	// 1 MiB); DLQMaxReplays is how often a message may be replayed before,
	// dead again, it is held back (default 3).
	DLQBodyCap    int
	DLQMaxReplays int
	// TraceSample is the share of requests (0 to 1) the server records a
	// span of (besides those whose caller's traceparent asks for it).
	TraceSample float64
	// ExportTraces sends the server's own spans to the OTLP endpoint the
	// standard OTEL_EXPORTER_OTLP_* variables name, instead of storing them
	// in the tenants' span store.
	ExportTraces bool
	// OTLPGRPCAddr serves OTLP's gRPC trace service on a listener of its
	// own (empty: off).
	OTLPGRPCAddr string
	// SpansPerSecond is each tenant's OTLP ingest rate (default 100,000
	// spans a second); faster senders are told to back off (429).
	SpansPerSecond int

	// BodyTimeout is how long a request body may take to arrive.
	BodyTimeout time.Duration
	// Auth tunes the identity service (sign-in limits, token lifetimes);
	// Issuer and Key are set here.
	Auth auth.Config
	// Live tunes the WebSocket hub; Origin is set here.
	Live live.Config

	// Listener, when set, is where the server listens (tests: 127.0.0.1:0).
	Listener net.Listener
	Log      *slog.Logger
}

// App is a built application. Its fields are for tests and benchmarks.
type App struct {
	cfg      Config
	URL      string // the listener's own URL
	DB       *database.DB
	Auth     *auth.Service
	Tenancy  *tenancy.Store
	RBAC     *rbac.Service
	Locks    *lockd.Node
	Events   *eventstore.Store
	Catalog  *catalog.Store
	DLQ      *dlq.Store
	Traces   *tracing.Store
	Capture  *dlq.Capture
	Replays  *dlq.Runner
	Live     *live.Hub
	Web      *web.Server
	Registry *prometheus.Registry

	health  *health.Checker
	log     *slog.Logger
	grpc    *grpc.Server // OTLP's gRPC trace service, when configured
	grpcLn  net.Listener
	ln      net.Listener
	srv     *http.Server
	metrics *http.Server
	closers []func() error // run in reverse order by Close
	sweeps  sync.WaitGroup
	stop    context.CancelFunc
}

// New builds the application from cfg and starts its background parts
// (Raft, the event store's sequencer, the live hub, sweeps); Serve serves
// HTTP, Close stops everything. On error, what was started is stopped.
func New(ctx context.Context, cfg Config) (_ *App, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(web.LogHandler(slog.NewJSONHandler(os.Stderr, nil)))
	}
	if cfg.RaftTimeout <= 0 {
		cfg.RaftTimeout = 500 * time.Millisecond
	}
	a := &App{cfg: cfg, log: cfg.Log}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	log := cfg.Log

	a.ln = cfg.Listener
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	}
	a.closers = append(a.closers, func() error { a.ln.Close(); return nil })
	a.URL = "http://" + a.ln.Addr().String()
	if cfg.BaseURL == "" {
		cfg.BaseURL = a.URL
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}

	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		pg, err := pgembed.Start(ctx, pgembed.Config{DataDir: filepath.Join(cfg.DataDir, "postgres"), Logger: log})
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, pg.Stop)
		dbURL = pg.URL()
		log.Info("private PostgreSQL started", "data_dir", pg.DataDir())
	}
	if a.DB, err = database.Open(ctx, dbURL); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error { a.DB.Close(); return nil })
	if err := a.DB.CheckRole(ctx, cfg.AllowSuperuser); err != nil {
		return nil, err
	}
	if cfg.AllowSuperuser {
		log.Warn("the database role is not checked: row-level security may not apply to it", "setting", database.AllowSuperuserSetting)
	}
	if err := database.Migrate(ctx, a.DB.Pool); err != nil {
		return nil, err
	}

	key, err := auth.LoadSigningKey(cfg.JWTKey, filepath.Join(cfg.DataDir, "jwt-ed25519.pem"))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if cfg.NodeID == "" {
		cfg.NodeID = "node1"
	}
	a.Locks, err = lockd.New(lockd.Config{NodeID: cfg.NodeID, BindAddr: cfg.RaftAddr, DataDir: raftDir, Peers: cfg.RaftPeers, Join: cfg.RaftJoin,
		HeartbeatTimeout: cfg.RaftTimeout, ElectionTimeout: cfg.RaftTimeout, LeaderLeaseTimeout: cfg.RaftTimeout / 2}, log)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	a.closers = append(a.closers, a.Locks.Close)

	if a.Events, err = eventstore.New(eventstore.Config{}, a.DB, log.With("component", "eventstore")); err != nil {
		return nil, err
	}
	if err := a.Events.Start(); err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	a.closers = append(a.closers, a.Events.Close)

	mailer, err := mail.New(cfg.Mail, log.With("component", "mail"))
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, mailer.Close)

	a.Tenancy = tenancy.New(a.DB)
	authCfg := cfg.Auth
	authCfg.Issuer, authCfg.Key, authCfg.Mail, authCfg.Operators = cfg.BaseURL, key, mailer, cfg.Operators
	if a.Auth, err = auth.New(authCfg, a.DB, a.Tenancy); err != nil {
		return nil, err
	}
	a.RBAC = rbac.New(a.DB)
	// One listener for the whole server: rights changes keep the identity
	// service's memory current and close live streams; published messages
	// reach live subscribers.
	notifier := database.NewNotifier(a.DB, log.With("component", "notify"))
	a.Auth.Watch(notifier)
	a.Tenancy.OnRightsChange(a.Auth.Forget)
	a.RBAC.OnRightsChange(a.Auth.Forget)
	idem := idempotency.New(a.DB)

	a.Registry = prometheus.NewRegistry()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Registry.MustRegister(a.Events.Collectors()...)
	a.Web = web.New(web.Config{BaseURL: cfg.BaseURL, TrustProxy: cfg.TrustProxy, BodyTimeout: cfg.BodyTimeout, MetricsToken: cfg.MetricsToken,
		Registry: a.Registry, Log: log, Ready: a.ready}, a.Auth)
	liveCfg := cfg.Live
	liveCfg.Origin, liveCfg.Log, liveCfg.Registry = a.Web.Origin(), log, a.Registry
	a.Live = live.New(liveCfg, a.Web, a.RBAC, a.DB, notifier)
	notifier.Start()
	a.closers = append(a.closers, func() error { notifier.Close(); return nil })
	a.Live.Start()
	a.closers = append(a.closers, func() error { a.Live.Close(); return nil })

	keys, err := secrets.Load(cfg.SecretKeys, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	guard, err := egress.New(cfg.EgressDeny)
	if err != nil {
		return nil, err
	}
	a.Catalog = catalog.New(a.DB, keys)
	a.Catalog.CheckHosts(guard.CheckURL)
	if n, err := a.Catalog.Reseal(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("broker credentials sealed again with the current secrets key", "count", n)
	}
	checker := &discovery.Checker{Store: a.Catalog, Client: guard.HTTPClient(discovery.DefaultTimeout), Dial: guard.DialContext, Log: log.With("component", "discovery")}
	a.health = health.New(health.Config{Client: guard.HTTPClient(0), Log: log.With("component", "health")}, a.healthTargets, a.recordHealth)
	a.health.Start()
	a.closers = append(a.closers, func() error { a.health.Close(); return nil })
	if cfg.DiscoveryEvery == 0 {
		cfg.DiscoveryEvery = 5 * time.Minute
	}
	recheck := checker.StartRecheck(cfg.DiscoveryEvery)
	a.closers = append(a.closers, func() error { recheck.Close(); return nil })
	a.DLQ = dlq.NewStore(a.DB, a.Catalog)
	if cfg.DLQMaxReplays > 0 {
		a.DLQ.MaxReplays = cfg.DLQMaxReplays
	}
	brokers := &dlq.Brokers{Catalog: a.Catalog, Dial: guard.DialContext, Kafka: kafkaConnector, Policy: checker.ApplyRabbitPolicy, Log: log.With("component", "dlq")}
	a.closers = append(a.closers, func() error { brokers.Close(); return nil })
	a.Capture = &dlq.Capture{Store: a.DLQ, Brokers: brokers, SizeCap: cfg.DLQBodyCap, Log: log.With("component", "dlq")}
	// The Raft node id names the replica in replay leases: a node that
	// restarts takes its jobs back at once.
	a.Replays = &dlq.Runner{Store: a.DLQ, Brokers: brokers, Node: cfg.NodeID, Log: log.With("component", "dlq")}
	a.Traces = tracing.NewStore(a.DB)
	relay := a.Traces.StartRelay(a.Live, log.With("component", "tracing"))
	a.closers = append(a.closers, func() error { relay.Close(); return nil })
	tp, err := selfTracing(cfg, a.Traces)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.closers = append(a.closers, func() error { return tp.Shutdown(context.Background()) })
	a.Replays.Tracer = tp.Tracer("switchboard/dlq")
	a.Capture.Tracer = a.Replays.Tracer
	// Requests are the server's own work: their spans go to the system
	// tenant, which the platform's operators read.
	a.Web.TraceRequests(tp.Tracer("switchboard/http"), cfg.TraceSample, tracing.TenantKey.String(tenancy.SystemTenantID.String()))
	a.DB.SetTracer(tp.Tracer("switchboard/database"))
	if cfg.SpansPerSecond == 0 {
		cfg.SpansPerSecond = 100_000
	}
	// Ingest requests decode and write at once up to twice the cores (the
	// COPY waits on the database in between); more are told to retry.
	gate := tracing.NewGate(2*runtime.GOMAXPROCS(0), cfg.SpansPerSecond)
	rest := api.New(api.Deps{Auth: a.Auth, Tenancy: a.Tenancy, RBAC: a.RBAC, Audit: audit.NewLog(a.DB), Idem: idem, Live: a.Live,
		Locks: a.Locks, Events: a.Events, Catalog: a.Catalog, Discovery: checker, DLQ: a.DLQ, Capture: a.Capture, Runner: a.Replays,
		Traces: a.Traces, Ingest: gate, PeerURLs: cfg.PeerURLs, NodeID: cfg.NodeID, Log: log})
	if cfg.OTLPGRPCAddr != "" {
		ln, err := net.Listen("tcp", cfg.OTLPGRPCAddr)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("OTLP gRPC listener: %w", err)
		}
		a.grpcLn, a.grpc = ln, rest.OTLPGRPCServer()
		a.closers = append(a.closers, func() error { a.grpc.Stop(); _ = ln.Close(); return nil })
	}
	a.Catalog.OnChange(func(tenant uuid.UUID, ch catalog.Change) {
		rest.PublishCatalogChange(tenant, ch)
		a.Capture.Wake() // a DLQ may have come or gone
	})
	a.DLQ.OnEvents(rest.PublishDLQEvents)
	a.Catalog.AnnotateTopology(a.DLQ.AnnotateTopology)
	a.Capture.Start()
	a.closers = append(a.closers, func() error { a.Capture.Close(); return nil })
	a.Replays.Start()
	a.closers = append(a.closers, func() error { a.Replays.Close(); return nil })
	a.Web.Mount(rest, ui.New(ui.Deps{Auth: a.Auth, Tenancy: a.Tenancy, RBAC: a.RBAC, Audit: audit.NewLog(a.DB), Idem: idem,
		Locks: a.Locks, Events: a.Events, Catalog: a.Catalog, DLQ: a.DLQ, Runner: a.Replays, Capture: a.Capture, Traces: a.Traces, OpenAPI: rest.OpenAPIDocument,
		ImportYAML: func(ctx context.Context, tenant uuid.UUID, source string, data []byte, allow access.Check) (catalog.ImportResult, error) {
			return backstage.Apply(ctx, a.Catalog, tenant, source, data, false, allow)
		}}))

	sweepCtx, stop := context.WithCancel(context.Background())
	a.stop = stop
	a.sweeps.Go(func() { sweepEvery(sweepCtx, log, "idempotency keys", time.Hour, idem.Sweep) })
	a.sweeps.Go(func() { sweepEvery(sweepCtx, log, "login throttle", time.Minute, a.Auth.SweepLoginThrottle) })
	a.sweeps.Go(func() { sweepEvery(sweepCtx, log, "verification links", time.Hour, a.Auth.SweepVerifications) })
	a.sweeps.Go(func() { sweepEvery(sweepCtx, log, "expired spans", time.Hour, a.dropExpiredSpans) })
	if _, err := a.dropExpiredSpans(sweepCtx); err != nil {
		log.Error("sweep expired spans", "err", err)
	}
	a.closers = append(a.closers, func() error { stop(); a.sweeps.Wait(); return nil })

	a.srv = &http.Server{Handler: a.Web.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.Web.MetricsHandler())
		a.metrics = &http.Server{Addr: cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	a.cfg = cfg
	return a, nil
}

// OTLPGRPCAddr is the address OTLP's gRPC trace service listens on ("":
// off).
func (a *App) OTLPGRPCAddr() string {
	if a.grpcLn == nil {
		return ""
	}
	return a.grpcLn.Addr().String()
}

// ready reports whether the server can serve: the database answers and the
// Raft group has a leader.
func (a *App) ready(ctx context.Context) error {
	if err := a.DB.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := a.Locks.Ready(); err != nil {
		return fmt.Errorf("raft: %w", err)
	}
	return nil
}

// Serve answers HTTP until ctx ends, then drains requests for up to 15 s.
// It returns the listener's error, or nil after a clean shutdown.
func (a *App) Serve(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- a.srv.Serve(a.ln) }()
	if a.grpc != nil {
		go func() { errc <- a.grpc.Serve(a.grpcLn) }()
		a.log.Info("OTLP gRPC listening", "addr", a.grpcLn.Addr().String())
	}
	if a.metrics != nil {
		mln, err := net.Listen("tcp", a.metrics.Addr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		go func() { errc <- a.metrics.Serve(mln) }()
	}
	a.log.Info("switchboard listening", "addr", a.ln.Addr().String(), "url", a.cfg.BaseURL)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	// Streams end first, so the HTTP server has no hijacked connection to
	// wait for.
	a.Live.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if a.metrics != nil {
		_ = a.metrics.Shutdown(shutdownCtx) // only scrapes are lost
	}
	if a.grpc != nil {
		stopped := make(chan struct{})
		go func() { a.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-shutdownCtx.Done():
			a.grpc.Stop()
		}
	}
	if err := a.srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Close stops everything New started, in reverse order, and returns the
// first error.
func (a *App) Close() error {
	var first error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Error("stop", "err", err)
			if first == nil {
				first = err
			}
		}
	}
	a.closers = nil
	return first
}

// sweepEvery runs sweep (a deletion of expired rows) every interval until
// ctx ends; an error is logged and the next round tries again.
func sweepEvery(ctx context.Context, log *slog.Logger, what string, every time.Duration, sweep func(context.Context) (int64, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := sweep(ctx); err != nil && ctx.Err() == nil {
				log.Error("sweep "+what, "err", err)
			}
		}
	}
}

// selfTracing is the server's own OpenTelemetry SDK: spans of its work for
// a tenant (replays) go into that tenant's span store, or, with
// cfg.ExportTraces, to the OTLP endpoint of the standard variables. Spans
// are sent in batches at least every second.
func selfTracing(cfg Config, store *tracing.Store) (*sdktrace.TracerProvider, error) {
	var exp sdktrace.SpanExporter = &tracing.SelfExporter{Store: store, Default: tenancy.SystemTenantID}
	if cfg.ExportTraces {
		var err error
		if exp, err = otlptracehttp.New(context.Background()); err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
	}
	res := resource.NewSchemaless(attribute.String("service.name", "switchboard"), attribute.String("service.instance.id", cfg.NodeID))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithIDGenerator(tracing.IDs{}), sdktrace.WithResource(res)), nil
}

// dropExpiredSpans drops the span partitions whose day has passed.
func (a *App) dropExpiredSpans(ctx context.Context) (int64, error) {
	dropped, err := a.Traces.DropExpired(ctx)
	if len(dropped) > 0 {
		a.log.Info("dropped expired span partitions", "partitions", dropped)
	}
	return int64(len(dropped)), err
}

// healthTargets lists the health checks services declare.
func (a *App) healthTargets(ctx context.Context) ([]health.Target, error) {
	ts, err := a.Catalog.HealthTargets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]health.Target, len(ts))
	for i, t := range ts {
		out[i] = health.Target{Tenant: t.Tenant, Service: t.Service, URL: t.URL, Interval: t.Interval}
	}
	return out, nil
}

// recordHealth keeps a check's result on its service.
func (a *App) recordHealth(ctx context.Context, r health.Result) error {
	return a.Catalog.SetHealth(ctx, r.Tenant, r.Service, catalog.Health{Status: r.Status, CheckedAt: r.CheckedAt, Error: r.Error})
}
