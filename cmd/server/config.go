package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"switchboard/internal/app"
	"switchboard/internal/database"
	"switchboard/internal/egress"
	"switchboard/internal/lockd"
	"switchboard/internal/mail"
	"switchboard/internal/secrets"
)

// config is everything the server reads from its environment and flags;
// flags win over the environment.
type config struct {
	Addr        string // SWITCHBOARD_ADDR
	DatabaseURL string // DATABASE_URL; empty: a private PostgreSQL in DataDir
	DataDir     string // SWITCHBOARD_DATA_DIR
	BaseURL     string // SWITCHBOARD_BASE_URL; the issuer of tokens and the allowed browser origin
	JWTKey      string // SWITCHBOARD_JWT_KEY: base64 Ed25519 seed; empty: DataDir/jwt-ed25519.pem
	LogLevel    string // SWITCHBOARD_LOG_LEVEL: debug, info, warn, error
	TrustProxy  bool   // SWITCHBOARD_TRUST_PROXY: take client addresses from X-Forwarded-For
	NodeID      string // SWITCHBOARD_NODE_ID: this node's id in the Raft group
	RaftAddr    string // SWITCHBOARD_RAFT_ADDR: the Raft TCP listen address
	RaftPeers   string // SWITCHBOARD_RAFT_PEERS: id=host:port,... of the initial voters; empty: a single-node group
	RaftJoin    bool   // SWITCHBOARD_RAFT_JOIN: start empty and wait to be added by the leader
	// RaftTimeout (SWITCHBOARD_RAFT_TIMEOUT) is how long followers wait for
	// the leader before electing another, and candidates for votes; a leader
	// that reaches no quorum for half of it steps down.
	RaftTimeout time.Duration
	Operators   string // SWITCHBOARD_OPERATORS: emails of the platform operators, comma-separated
	PeerURLs    string // SWITCHBOARD_PEER_URLS: id=http(s)://host:port,... the Switchboard URL of each Raft node
	// MetricsToken (SWITCHBOARD_METRICS_TOKEN) lets GET /metrics on the main
	// listener answer a request bearing it.
	MetricsToken string
	// MetricsAddr (SWITCHBOARD_METRICS_ADDR) serves /metrics, without a
	// token, on a listener of its own (bind it where only scrapers reach).
	MetricsAddr string
	// AllowSuperuser (SWITCHBOARD_DATABASE_ALLOW_SUPERUSER) runs on a
	// database role that bypasses row-level security.
	AllowSuperuser bool
	SecretKeys     string // SWITCHBOARD_SECRET_KEYS: id:base64key,... sealing broker credentials; empty: DataDir/secret-keys
	EgressDeny     string // SWITCHBOARD_EGRESS_DENY: CIDRs the server's own connections (brokers, health checks) must not reach
	// DLQBodyCap (SWITCHBOARD_DLQ_MAX_BODY) is the most of a dead letter's
	// body capture keeps, in bytes; DLQMaxReplays (SWITCHBOARD_DLQ_MAX_REPLAYS)
	// how often a message may be replayed before, dead again, it is held.
	DLQBodyCap    int
	DLQMaxReplays int
	// OTLPGRPCAddr (SWITCHBOARD_OTLP_GRPC_ADDR) serves OTLP's gRPC trace
	// service on a listener of its own; empty: off. SpansPerSecond
	// (SWITCHBOARD_SPANS_PER_SECOND) is each tenant's ingest rate.
	OTLPGRPCAddr   string
	SpansPerSecond int
	// TraceSample (SWITCHBOARD_TRACE_SAMPLE) is the share of requests the
	// server records a span of.
	TraceSample float64
	SMTPURL     string // SWITCHBOARD_SMTP_URL: smtp(s)://user:pass@host:port; empty: mail goes to the log
	MailFrom    string // SWITCHBOARD_MAIL_FROM: the sender of mail
}

func loadConfig(args []string) (config, error) {
	c := config{
		Addr:         env("SWITCHBOARD_ADDR", "127.0.0.1:8080"),
		DatabaseURL:  os.Getenv("DATABASE_URL"),
		DataDir:      env("SWITCHBOARD_DATA_DIR", "./.switchboard"),
		BaseURL:      os.Getenv("SWITCHBOARD_BASE_URL"),
		JWTKey:       os.Getenv("SWITCHBOARD_JWT_KEY"),
		LogLevel:     env("SWITCHBOARD_LOG_LEVEL", "info"),
		NodeID:       env("SWITCHBOARD_NODE_ID", "node1"),
		RaftAddr:     env("SWITCHBOARD_RAFT_ADDR", "127.0.0.1:8090"),
		RaftPeers:    os.Getenv("SWITCHBOARD_RAFT_PEERS"),
		Operators:    os.Getenv("SWITCHBOARD_OPERATORS"),
		PeerURLs:     os.Getenv("SWITCHBOARD_PEER_URLS"),
		MetricsToken: os.Getenv("SWITCHBOARD_METRICS_TOKEN"),
		MetricsAddr:  os.Getenv("SWITCHBOARD_METRICS_ADDR"),
		SMTPURL:      os.Getenv("SWITCHBOARD_SMTP_URL"),
		SecretKeys:   os.Getenv(secrets.EnvVar),
		EgressDeny:   os.Getenv(egress.EnvVar),
		MailFrom:     os.Getenv("SWITCHBOARD_MAIL_FROM"),
		OTLPGRPCAddr: os.Getenv("SWITCHBOARD_OTLP_GRPC_ADDR"),
		RaftTimeout:  500 * time.Millisecond,
		TraceSample:  0.01,
	}
	if v := os.Getenv("SWITCHBOARD_TRACE_SAMPLE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return c, fmt.Errorf("SWITCHBOARD_TRACE_SAMPLE must be a number from 0 to 1, not %q", v)
		}
		c.TraceSample = f
	}
	if v := os.Getenv("SWITCHBOARD_RAFT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("SWITCHBOARD_RAFT_TIMEOUT must be a duration such as 500ms or 2s, not %q", v)
		}
		c.RaftTimeout = d
	}
	for name, dst := range map[string]*int{"SWITCHBOARD_DLQ_MAX_BODY": &c.DLQBodyCap, "SWITCHBOARD_DLQ_MAX_REPLAYS": &c.DLQMaxReplays,
		"SWITCHBOARD_SPANS_PER_SECOND": &c.SpansPerSecond} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return c, fmt.Errorf("%s must be a whole number above 0, not %q", name, v)
			}
			*dst = n
		}
	}
	for name, dst := range map[string]*bool{"SWITCHBOARD_TRUST_PROXY": &c.TrustProxy, "SWITCHBOARD_RAFT_JOIN": &c.RaftJoin,
		database.AllowSuperuserSetting: &c.AllowSuperuser} {
		if v := os.Getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return c, fmt.Errorf("%s must be true or false, not %q", name, v)
			}
			*dst = b
		}
	}
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (SWITCHBOARD_ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL; empty runs a private PostgreSQL in the data dir (DATABASE_URL)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the private database and keys (SWITCHBOARD_DATA_DIR)")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "public URL of this server (SWITCHBOARD_BASE_URL); default http://<addr>")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (SWITCHBOARD_LOG_LEVEL)")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", c.TrustProxy, "take client addresses from X-Forwarded-For (SWITCHBOARD_TRUST_PROXY)")
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "this node's id in the Raft group (SWITCHBOARD_NODE_ID)")
	fs.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, "Raft TCP listen address (SWITCHBOARD_RAFT_ADDR)")
	fs.StringVar(&c.RaftPeers, "raft-peers", c.RaftPeers, "initial voters as id=host:port,...; empty for a single node (SWITCHBOARD_RAFT_PEERS)")
	fs.StringVar(&c.Operators, "operators", c.Operators, "emails of the platform operators, who may change the Raft group's members (SWITCHBOARD_OPERATORS)")
	fs.StringVar(&c.PeerURLs, "peer-urls", c.PeerURLs, "Switchboard URL of each Raft node, id=http://host:port,...; followers forward lock-service requests to the leader (SWITCHBOARD_PEER_URLS)")
	fs.DurationVar(&c.RaftTimeout, "raft-timeout", c.RaftTimeout, "how long followers wait for the leader before electing another; raise it on slow networks or busy machines (SWITCHBOARD_RAFT_TIMEOUT)")
	fs.StringVar(&c.MetricsToken, "metrics-token", c.MetricsToken, "a secret that lets GET /metrics answer on the main listener (SWITCHBOARD_METRICS_TOKEN)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve /metrics on this address of its own, e.g. 127.0.0.1:9100 (SWITCHBOARD_METRICS_ADDR)")
	fs.BoolVar(&c.AllowSuperuser, "database-allow-superuser", c.AllowSuperuser, "run even on a database role that bypasses row-level security ("+database.AllowSuperuserSetting+")")
	fs.StringVar(&c.SMTPURL, "smtp-url", c.SMTPURL, "SMTP server for mail, smtp://user:pass@host:587 (STARTTLS) or smtps://...:465; empty writes mail to the log (SWITCHBOARD_SMTP_URL)")
	fs.StringVar(&c.MailFrom, "mail-from", c.MailFrom, "sender of mail, e.g. Switchboard <switchboard@example.com> (SWITCHBOARD_MAIL_FROM)")
	fs.StringVar(&c.EgressDeny, "egress-deny", c.EgressDeny, "networks the server's own connections to brokers and health checks must not reach, CIDRs comma-separated, e.g. 169.254.0.0/16,10.0.0.0/8 ("+egress.EnvVar+")")
	fs.IntVar(&c.DLQBodyCap, "dlq-max-body", c.DLQBodyCap, "the most of a dead letter's body capture keeps, in bytes; a longer one is kept truncated, marked, and not replayed (SWITCHBOARD_DLQ_MAX_BODY, default 1048576)")
	fs.IntVar(&c.DLQMaxReplays, "dlq-max-replays", c.DLQMaxReplays, "how often a dead letter may be replayed before, dead again, it is held back (SWITCHBOARD_DLQ_MAX_REPLAYS, default 3)")
	fs.StringVar(&c.OTLPGRPCAddr, "otlp-grpc-addr", c.OTLPGRPCAddr, "serve OTLP's gRPC trace service on this address, e.g. 127.0.0.1:4317; empty: off (SWITCHBOARD_OTLP_GRPC_ADDR)")
	fs.IntVar(&c.SpansPerSecond, "spans-per-second", c.SpansPerSecond, "each tenant's OTLP ingest rate in spans a second; faster senders are told to back off (SWITCHBOARD_SPANS_PER_SECOND, default 100000)")
	fs.Float64Var(&c.TraceSample, "trace-sample", c.TraceSample, "the share of requests (0 to 1) the server records a span of, in the switchboard-system tenant its operators read (SWITCHBOARD_TRACE_SAMPLE, default 0.01)")
	fs.BoolVar(&c.RaftJoin, "raft-join", c.RaftJoin, "start empty and wait to be added to an existing group (SWITCHBOARD_RAFT_JOIN)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c *config) validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("listen address %q: %w", c.Addr, err)
	}
	if c.DataDir == "" {
		return errors.New("the data dir must not be empty")
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	c.DataDir = abs
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Addr
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("SWITCHBOARD_BASE_URL %q must be an http(s) URL", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
		return fmt.Errorf("raft address %q: %w", c.RaftAddr, err)
	}
	if c.RaftTimeout < 50*time.Millisecond || c.RaftTimeout > time.Minute {
		return fmt.Errorf("raft timeout %s must be between 50ms and 1m", c.RaftTimeout)
	}
	if _, err := c.peers(); err != nil {
		return err
	}
	if _, err := c.peerURLs(); err != nil {
		return err
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("metrics address %q: %w", c.MetricsAddr, err)
		}
	}
	if c.SMTPURL != "" && c.MailFrom == "" {
		return errors.New("SWITCHBOARD_MAIL_FROM is required with SWITCHBOARD_SMTP_URL")
	}
	if _, err := egress.New(egress.ParseList(c.EgressDeny)); err != nil {
		return err
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		return errors.New("SWITCHBOARD_METRICS_TOKEN must be at least 16 characters")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q must be debug, info, warn or error", c.LogLevel)
	}
	return nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// peers parses RaftPeers: "id=host:port,id=host:port".
func (c *config) peers() ([]lockd.Peer, error) {
	if c.RaftPeers == "" {
		return nil, nil
	}
	var out []lockd.Peer
	for _, p := range strings.Split(c.RaftPeers, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if _, _, err := net.SplitHostPort(addr); !ok || id == "" || err != nil {
			return nil, fmt.Errorf("SWITCHBOARD_RAFT_PEERS entry %q must be id=host:port", p)
		}
		out = append(out, lockd.Peer{ID: id, Addr: addr})
	}
	return out, nil
}

// peerURLs parses PeerURLs: "id=http://host:port,...".
func (c *config) peerURLs() (map[string]string, error) {
	out := map[string]string{}
	if c.PeerURLs == "" {
		return out, nil
	}
	for _, p := range strings.Split(c.PeerURLs, ",") {
		id, raw, ok := strings.Cut(strings.TrimSpace(p), "=")
		u, err := url.Parse(raw)
		if !ok || id == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("SWITCHBOARD_PEER_URLS entry %q must be id=http(s)://host:port", p)
		}
		out[id] = raw
	}
	return out, nil
}

// app returns the application's configuration.
func (c *config) app() (app.Config, error) {
	peers, err := c.peers()
	if err != nil {
		return app.Config{}, err
	}
	peerURLs, err := c.peerURLs()
	if err != nil {
		return app.Config{}, err
	}
	var ops []string
	for _, op := range strings.Split(c.Operators, ",") {
		if op = strings.TrimSpace(op); op != "" {
			ops = append(ops, op)
		}
	}
	return app.Config{Addr: c.Addr, DatabaseURL: c.DatabaseURL, DataDir: c.DataDir, BaseURL: c.BaseURL, JWTKey: c.JWTKey,
		TrustProxy: c.TrustProxy, NodeID: c.NodeID, RaftAddr: c.RaftAddr, RaftPeers: peers, RaftJoin: c.RaftJoin,
		RaftTimeout: c.RaftTimeout, PeerURLs: peerURLs, Operators: ops, MetricsToken: c.MetricsToken, MetricsAddr: c.MetricsAddr,
		AllowSuperuser: c.AllowSuperuser, Mail: mail.Config{URL: c.SMTPURL, From: c.MailFrom},
		SecretKeys: c.SecretKeys, EgressDeny: egress.ParseList(c.EgressDeny), DLQBodyCap: c.DLQBodyCap, DLQMaxReplays: c.DLQMaxReplays,
		OTLPGRPCAddr: c.OTLPGRPCAddr, SpansPerSecond: c.SpansPerSecond, TraceSample: c.TraceSample,
		ExportTraces: os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""}, nil
}
