// Package rabbitmq is the RabbitMQ connector: publisher confirms, manual
// acknowledgements, prefetch, and a connection redialled with backoff.
//
// Invariants (beside those of package connectors):
//   - One connection per Connector; publishes share one channel in confirm
//     mode, one at a time (so confirmations match their messages); each
//     Consume has a channel of its own.
//   - Publishes are mandatory: a message no queue takes is returned by the
//     broker, and Publish fails naming it, rather than counting it sent.
//   - Every wait is bounded by the caller's context and Config.Timeout.
package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/connectors"
)

// Config says how to reach a broker.
type Config struct {
	// URL is amqp(s)://user:pass@host:port/vhost.
	URL string
	// Dial opens TCP connections (the egress guard's); nil: a plain dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds a dial and a publish's confirmations (default 10s).
	Timeout time.Duration
	Log     *slog.Logger
}

// Connector is a connectors.Connector on one RabbitMQ broker.
type Connector struct {
	cfg Config

	mu     sync.Mutex // guards conn and closed
	conn   *amqp.Connection
	closed bool

	pubMu   sync.Mutex // serializes publishes; guards pub and returns
	pub     *amqp.Channel
	returns chan amqp.Return
}

var _ connectors.Connector = (*Connector)(nil)

// New returns a connector; it connects on first use.
func New(cfg Config) *Connector {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Connector{cfg: cfg}
}

// errClosed ends waits once Close was called.
var errClosed = errors.New("rabbitmq: the connector is closed")

// connection returns the open connection, dialling (with backoff) until it
// has one or ctx ends.
func (c *Connector) connection(ctx context.Context) (*amqp.Connection, error) {
	op := func() (*amqp.Connection, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed {
			return nil, backoff.Permanent(errClosed)
		}
		if c.conn != nil && !c.conn.IsClosed() {
			return c.conn, nil
		}
		conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{Heartbeat: 10 * time.Second, Locale: "en_US", Dial: c.dial(ctx)})
		if err != nil {
			var aerr *amqp.Error
			if errors.As(err, &aerr) && aerr.Code == amqp.AccessRefused {
				return nil, backoff.Permanent(fmt.Errorf("rabbitmq: the broker refused the credentials"))
			}
			c.cfg.Log.Info("rabbitmq: connecting failed; retrying", "err", redact(err))
			return nil, err
		}
		c.conn = conn
		return conn, nil
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 5*time.Second
	return backoff.Retry(ctx, op, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0))
}

func (c *Connector) dial(ctx context.Context) func(network, addr string) (net.Conn, error) {
	return func(network, addr string) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		var conn net.Conn
		var err error
		if c.cfg.Dial != nil {
			conn, err = c.cfg.Dial(dctx, network, addr)
		} else {
			var d net.Dialer
			conn, err = d.DialContext(dctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		// The AMQP handshake is bounded too; the library clears the
		// deadline once it is done.
		if err := conn.SetDeadline(time.Now().Add(c.cfg.Timeout)); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
}

// redact keeps the URL (and its password) out of an error shown or logged.
func redact(err error) string {
	var aerr *amqp.Error
	if errors.As(err, &aerr) {
		return aerr.Reason
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op + ": " + op.Err.Error()
	}
	return "connection failed"
}

// publishChannel returns the confirm-mode channel, opening it when needed.
// pubMu is held.
func (c *Connector) publishChannel(ctx context.Context) (*amqp.Channel, error) {
	if c.pub != nil && !c.pub.IsClosed() {
		return c.pub, nil
	}
	conn, err := c.connection(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: open a channel: %s", redact(err))
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, fmt.Errorf("rabbitmq: confirm mode: %s", redact(err))
	}
	c.returns = ch.NotifyReturn(make(chan amqp.Return, 64))
	c.pub = ch
	return ch, nil
}

// Publish sends msgs and returns once the broker confirmed each; a message
// no queue took is an error naming it.
func (c *Connector) Publish(ctx context.Context, dest connectors.Destination, msgs ...connectors.Message) error {
	if dest.Topic != "" {
		return errors.New("rabbitmq: a destination is an exchange, not a topic")
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	ch, err := c.publishChannel(ctx)
	if err != nil {
		return err
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for _, m := range msgs {
		p := amqp.Publishing{Headers: amqp.Table(m.Headers), ContentType: m.ContentType, MessageId: m.ID, Timestamp: m.Timestamp,
			Body: m.Body, DeliveryMode: amqp.Persistent, CorrelationId: m.Properties["correlation-id"], ReplyTo: m.Properties["reply-to"],
			Type: m.Properties["type"], AppId: m.Properties["app-id"]}
		if n, err := strconv.ParseUint(m.Properties["priority"], 10, 8); err == nil {
			p.Priority = uint8(n)
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, dest.Exchange, m.Key, true, false, p)
		if err != nil {
			return fmt.Errorf("rabbitmq: publish: %s", redact(err))
		}
		confirms = append(confirms, dc)
	}
	for i, dc := range confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("rabbitmq: %d of %d messages confirmed, then: %w", i, len(msgs), err)
		}
		if !ok {
			return fmt.Errorf("rabbitmq: the broker refused message %d of %d (nack)", i+1, len(msgs))
		}
	}
	// A returned message is sent back before its confirmation.
	select {
	case r := <-c.returns:
		for len(c.returns) > 0 {
			<-c.returns
		}
		return fmt.Errorf("rabbitmq: exchange %q, routing key %q (%s): %w", r.Exchange, r.RoutingKey, r.ReplyText, connectors.ErrUnroutable)
	default:
	}
	return nil
}

// Consume delivers source's messages to handle until ctx ends, consuming
// again after a dropped connection (what was not acknowledged then is
// delivered again by the broker).
func (c *Connector) Consume(ctx context.Context, source string, prefetch int, handle func(context.Context, connectors.Delivery)) error {
	if prefetch <= 0 {
		prefetch = 16
	}
	for n := 0; ; n++ {
		err := c.consumeOnce(ctx, source, prefetch, n, handle)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errClosed) {
			return err
		}
		var aerr *amqp.Error
		if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
			return fmt.Errorf("rabbitmq: no queue %q", source)
		}
		if err != nil {
			c.cfg.Log.Info("rabbitmq: consuming stopped; consuming again", "queue", source, "err", redact(err))
		}
		select { // a moment before consuming again; connection() backs off too
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Connector) consumeOnce(ctx context.Context, source string, prefetch, n int, handle func(context.Context, connectors.Delivery)) error {
	conn, err := c.connection(ctx)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, source, "switchboard-"+strconv.Itoa(n), false, false, false, false, nil)
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			// The library stops the consumer when ctx ends; until it has
			// closed deliveries, its reader may be waiting to hand one
			// over, and closing the channel would wait for it forever.
			drain(deliveries, c.cfg.Timeout)
			return nil
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("the channel closed")
			}
			handle(ctx, connectors.Delivery{
				Message: connectors.Message{ID: d.MessageId, Key: d.RoutingKey, Body: d.Body, Headers: map[string]any(d.Headers),
					ContentType: d.ContentType, Timestamp: d.Timestamp, Properties: properties(d)},
				Redelivered: d.Redelivered,
				Partition:   -1,
				Offset:      -1,
				Ack:         func() error { return d.Ack(false) },
				AckThrough:  func() error { return d.Ack(true) },
				Nack:        func(requeue bool) error { return d.Nack(false, requeue) },
			})
		}
	}
}

// properties returns d's message properties other than those Message has
// fields for (and those the broker sets: user-id, expiration).
func properties(d amqp.Delivery) map[string]string {
	p := map[string]string{}
	for k, v := range map[string]string{"correlation-id": d.CorrelationId, "reply-to": d.ReplyTo, "type": d.Type, "app-id": d.AppId} {
		if v != "" {
			p[k] = v
		}
	}
	if d.Priority != 0 {
		p["priority"] = strconv.Itoa(int(d.Priority))
	}
	return p
}

// drain reads deliveries until the library closes it (or wait passes); what
// it reads was never handled and goes back to the queue with the channel.
func drain(deliveries <-chan amqp.Delivery, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case _, ok := <-deliveries:
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// Close closes the connection; waits end with an error.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil && !c.conn.IsClosed() {
		return c.conn.Close()
	}
	return nil
}
