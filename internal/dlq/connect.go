package dlq

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"

	"github.com/google/uuid"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/connectors"
	"switchboard/internal/connectors/rabbitmq"
	"switchboard/internal/problem"
)

// Brokers hands out one connector per catalog broker, built from its entry
// and its sealed credentials, and builds a new one when the entry changes.
type Brokers struct {
	Catalog *catalog.Store
	// Dial opens the server's outbound connections (the egress guard's);
	// nil: a plain dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Kafka builds a Kafka connector; nil: Kafka brokers are refused.
	Kafka func(b catalog.BrokerSpec, creds catalog.BrokerCredentials, dial func(ctx context.Context, network, addr string) (net.Conn, error)) connectors.Connector
	// Policy writes RabbitMQ policies (dead-lettering an existing queue);
	// nil: such a set-up is refused with what to do.
	Policy PolicyWriter
	Log    *slog.Logger

	mu    sync.Mutex
	conns map[brokerKey]*brokerConn
}

type brokerKey struct {
	tenant uuid.UUID
	name   string
}

type brokerConn struct {
	version int64
	typ     string
	c       connectors.Connector
}

// Get returns the connector of tenant's broker name, and its type.
func (b *Brokers) Get(ctx context.Context, tenant uuid.UUID, name string) (connectors.Connector, string, error) {
	all := func(context.Context, access.Object) error { return nil }
	e, err := b.Catalog.Get(ctx, tenant, catalog.Ref{Kind: catalog.KindBroker, Namespace: catalog.DefaultNamespace, Name: name}, all)
	if err != nil {
		if problem.Code(err) == problem.CodeNotFound {
			return nil, "", problem.Errorf(problem.CodeUnprocessable, "broker %q is not in the catalog", name)
		}
		return nil, "", err
	}
	k := brokerKey{tenant, name}
	b.mu.Lock()
	if bc, ok := b.conns[k]; ok && bc.version == e.Version {
		b.mu.Unlock()
		return bc.c, bc.typ, nil
	}
	b.mu.Unlock()
	creds, err := b.Catalog.Credentials(ctx, tenant, name)
	if err != nil {
		return nil, "", err
	}
	var c connectors.Connector
	switch e.Broker.Type {
	case catalog.RabbitMQ:
		u, err := url.Parse(e.Broker.URL)
		if err != nil {
			return nil, "", problem.Errorf(problem.CodeUnprocessable, "broker %q has no usable url", name)
		}
		if creds.Username != "" {
			u.User = url.UserPassword(creds.Username, creds.Password)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/" + url.PathEscape(e.Broker.VHost)
			if e.Broker.VHost == "/" || e.Broker.VHost == "" {
				u.Path, u.RawPath = "/", ""
			}
		}
		c = rabbitmq.New(rabbitmq.Config{URL: u.String(), Dial: b.Dial, Log: b.Log})
	case catalog.Kafka:
		if b.Kafka == nil {
			return nil, "", problem.Errorf(problem.CodeUnprocessable, "broker %q is a Kafka broker, which this server cannot reach", name)
		}
		c = b.Kafka(*e.Broker, creds, b.Dial)
	default:
		return nil, "", fmt.Errorf("broker %q has type %q", name, e.Broker.Type)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		b.conns = map[brokerKey]*brokerConn{}
	}
	if old, ok := b.conns[k]; ok {
		if old.version >= e.Version {
			_ = c.Close()
			return old.c, old.typ, nil
		}
		_ = old.c.Close()
	}
	b.conns[k] = &brokerConn{version: e.Version, typ: e.Broker.Type, c: c}
	return c, e.Broker.Type, nil
}

// Close closes every connector.
func (b *Brokers) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, bc := range b.conns {
		_ = bc.c.Close()
		delete(b.conns, k)
	}
}
