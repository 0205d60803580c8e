package discovery

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/problem"
)

// Checker reads the catalog's brokers with the server's outbound network
// (the egress guard's client and dialer when one is set) and records what
// differs in the catalog.
type Checker struct {
	Store  *catalog.Store
	Client *http.Client                                                      // for management APIs; nil: a plain one
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error) // for Kafka; nil: a plain dialer
	Log    *slog.Logger
}

// Result is one check of a broker.
type Result struct {
	Broker    string              `json:"broker"`
	At        time.Time           `json:"at"`
	Inventory Inventory           `json:"inventory"`
	Drift     []catalog.DriftItem `json:"drift"`
	// Undeclared are catalog entities for what the broker holds and the
	// catalog does not (owned by the broker's team).
	Undeclared []catalog.Entity `json:"-"`
}

// rabbitConfig is how to reach b's management API: its management user,
// else the broker's own user, but only on the broker's own host.
func (c *Checker) rabbitConfig(b catalog.Entity, creds catalog.BrokerCredentials) RabbitConfig {
	user, pass := creds.ManagementUsername, creds.ManagementPassword
	if user == "" && sameHost(b.Broker.URL, b.Broker.ManagementURL) {
		user, pass = creds.Username, creds.Password
	}
	return RabbitConfig{Name: b.Name, ManagementURL: b.Broker.ManagementURL, Username: user, Password: pass, VHost: b.Broker.VHost, Client: c.Client}
}

// Check reads broker of tenant (if allow lets the caller read it), compares
// it with the queues and topics declared on it, and records the drift.
func (c *Checker) Check(ctx context.Context, tenant uuid.UUID, broker string, allow access.Check) (catalog.Entity, Result, error) {
	ref := catalog.Ref{Kind: catalog.KindBroker, Namespace: catalog.DefaultNamespace, Name: broker}
	b, err := c.Store.Get(ctx, tenant, ref, allow)
	if err != nil {
		return b, Result{}, err
	}
	creds, err := c.Store.Credentials(ctx, tenant, b.Name)
	if err != nil {
		return b, Result{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	var inv Inventory
	switch b.Broker.Type {
	case catalog.RabbitMQ:
		if b.Broker.ManagementURL == "" {
			return b, Result{}, problem.Errorf(problem.CodeUnprocessable, "broker %q has no management_url: discovery reads RabbitMQ's management API", b.Name)
		}
		inv, err = RabbitMQ(rctx, c.rabbitConfig(b, creds))
	case catalog.Kafka:
		kc := KafkaConfig{Name: b.Name, Seeds: b.Broker.BootstrapServers, Username: creds.Username, Password: creds.Password, Dial: c.Dial}
		if b.Broker.SASL != nil {
			kc.SASLMechanism = b.Broker.SASL.Mechanism
		}
		inv, err = Kafka(rctx, kc)
	}
	if err != nil {
		return b, Result{}, err
	}
	declared, err := c.declaredOn(ctx, tenant, b.Name)
	if err != nil {
		return b, Result{}, err
	}
	items := Drift(b.Name, declared, inv)
	drift := make([]catalog.DriftItem, len(items))
	for i, it := range items {
		drift[i] = catalog.DriftItem{Ref: it.Ref, Kind: it.Kind, Field: it.Field, Declared: it.Declared, Actual: it.Actual, Message: it.Message}
	}
	if err := c.Store.SetDrift(ctx, tenant, b.Name, drift); err != nil {
		return b, Result{}, err
	}
	undeclared := Undeclared(b.Name, inv, items)
	for i := range undeclared {
		undeclared[i].OwnerTeam = b.OwnerTeam
	}
	return b, Result{Broker: b.Name, At: time.Now().UTC(), Inventory: inv, Drift: drift, Undeclared: undeclared}, nil
}

// declaredOn lists every queue and topic the catalog declares on broker
// (the server's own read: drift covers them all, whoever asks).
func (c *Checker) declaredOn(ctx context.Context, tenant uuid.UUID, broker string) ([]catalog.Entity, error) {
	var out []catalog.Entity
	cursor := ""
	all := func(context.Context, access.Object) error { return nil }
	for {
		page, next, err := c.Store.List(ctx, tenant, catalog.Filter{Kinds: []string{catalog.KindQueue, catalog.KindTopic}}, cursor, 500, all)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if (e.Queue != nil && e.Queue.Broker == broker) || (e.Topic != nil && e.Topic.Broker == broker) {
				out = append(out, e)
			}
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// Recheck checks every broker of every tenant that discovery can read,
// every interval, until Close, so drift stays current between the checks
// people ask for.
type Recheck struct {
	c      *Checker
	every  time.Duration
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartRecheck starts re-checking every interval (at least a minute).
func (c *Checker) StartRecheck(every time.Duration) *Recheck {
	every = max(every, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recheck{c: c, every: every, cancel: cancel}
	r.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.c.CheckAll(ctx)
			}
		}
	})
	return r
}

// Close stops the re-checks and waits for the one under way.
func (r *Recheck) Close() {
	r.cancel()
	r.wg.Wait()
}

// CheckAll checks every broker of every tenant once, one at a time;
// failures are logged (an unreachable broker is no surprise here) and the
// drift of the others still recorded.
func (c *Checker) CheckAll(ctx context.Context) {
	brokers, err := c.Store.Brokers(ctx)
	if err != nil {
		c.log().Warn("discovery: listing brokers failed", "err", err)
		return
	}
	all := func(context.Context, access.Object) error { return nil }
	for _, b := range brokers {
		if ctx.Err() != nil {
			return
		}
		if _, _, err := c.Check(ctx, b.Tenant, b.Name, all); err != nil {
			c.log().Info("discovery: re-check failed", "tenant", b.Tenant, "broker", b.Name, "err", err)
		}
	}
}

func (c *Checker) log() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}

// sameHost reports whether two URLs name the same host (by name, as
// written: credentials given for one host never go to another).
func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Hostname() != "" && strings.EqualFold(ua.Hostname(), ub.Hostname())
}
