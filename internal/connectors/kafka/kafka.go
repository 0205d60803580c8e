// Package kafka is the Kafka connector: an idempotent producer with
// acks=all, and consumer groups that commit only what was acknowledged.
//
// Invariants (beside those of package connectors):
//   - A partition's committed offset never passes a delivery not yet
//     acknowledged: it is the lowest one outstanding, or one past the last
//     delivered when none is.
//   - Nack(true) and a dropped broker connection rewind the partitions to
//     what is committed, so what was not acknowledged comes again, marked
//     Redelivered (Kafka itself redelivers nothing within a session).
//   - Every wait is bounded by the caller's context and Config.Timeout.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"switchboard/internal/connectors"
)

// Config says how to reach a cluster.
type Config struct {
	Seeds []string
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 ("": no SASL).
	Mechanism, Username, Password string
	// Dial opens TCP connections (the egress guard's); nil: a plain dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, when set, wraps every connection.
	TLS *tls.Config
	// Group names the consumer groups Consume joins: one per topic,
	// Group.TOPIC (default switchboard-dlq), so that topics consumed apart
	// never rebalance each other.
	Group string
	// Timeout bounds a dial and a publish (default 10s).
	Timeout time.Duration
	Log     *slog.Logger
}

// Connector is a connectors.Connector on one Kafka cluster.
type Connector struct {
	cfg Config

	mu     sync.Mutex // guards prod and closed
	prod   *kgo.Client
	closed bool
}

var _ connectors.Connector = (*Connector)(nil)

// New returns a connector; it connects on first use.
func New(cfg Config) *Connector {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Group == "" {
		cfg.Group = "switchboard-dlq"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Connector{cfg: cfg}
}

var errClosed = errors.New("kafka: the connector is closed")

func (c *Connector) options() ([]kgo.Opt, error) {
	if len(c.cfg.Seeds) == 0 {
		return nil, errors.New("kafka: no bootstrap servers")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.cfg.Seeds...), kgo.DialTimeout(c.cfg.Timeout), kgo.RetryTimeout(c.cfg.Timeout)}
	switch dial, cfg := c.cfg.Dial, c.cfg.TLS; {
	case dial != nil && cfg != nil:
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			conn, err := dial(ctx, network, host)
			if err != nil {
				return nil, err
			}
			tc := cfg.Clone()
			if tc.ServerName == "" {
				tc.ServerName, _, _ = net.SplitHostPort(host)
			}
			tconn := tls.Client(conn, tc)
			if err := tconn.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, err
			}
			return tconn, nil
		}))
	case dial != nil:
		opts = append(opts, kgo.Dialer(dial))
	case cfg != nil:
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	switch strings.ToUpper(c.cfg.Mechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.cfg.Username, Pass: c.cfg.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.cfg.Username, Pass: c.cfg.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.cfg.Username, Pass: c.cfg.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka: SASL mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.cfg.Mechanism)
	}
	return opts, nil
}

// producer returns the producing client, made on first use.
func (c *Connector) producer() (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if c.prod != nil {
		return c.prod, nil
	}
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	// Idempotent with acks=all are the client's defaults; say so.
	opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.RecordDeliveryTimeout(c.cfg.Timeout))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	c.prod = cl
	return cl, nil
}

// Message headers that carry Message fields Kafka records lack.
const (
	headerID          = "message-id"
	headerContentType = "content-type"
)

// Publish sends msgs to dest.Topic and returns once every one is
// acknowledged by all in-sync replicas.
func (c *Connector) Publish(ctx context.Context, dest connectors.Destination, msgs ...connectors.Message) error {
	if dest.Topic == "" {
		return errors.New("kafka: a destination is a topic")
	}
	recs := make([]*kgo.Record, 0, len(msgs))
	for _, m := range msgs {
		r := &kgo.Record{Topic: dest.Topic, Value: m.Body, Timestamp: m.Timestamp}
		if m.Key != "" {
			r.Key = []byte(m.Key)
		}
		for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
			switch v := m.Headers[k].(type) {
			case string:
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			case []byte:
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: v})
			default:
				return fmt.Errorf("kafka: header %q is a %T; Kafka headers are bytes or text", k, v)
			}
		}
		if m.ID != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: headerID, Value: []byte(m.ID)})
		}
		if m.ContentType != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: headerContentType, Value: []byte(m.ContentType)})
		}
		recs = append(recs, r)
	}
	cl, err := c.producer()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cl.ProduceSync(ctx, recs...).FirstErr() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafka: publish to %s: %w", dest.Topic, err)
		}
		return nil
	case <-ctx.Done():
		// An idempotent producer does not give up records it may have
		// sent: close the client to end the wait (the next publish makes
		// a new one). They may have arrived, or not: the caller sends
		// them again.
		c.mu.Lock()
		if c.prod == cl {
			c.prod = nil
		}
		c.mu.Unlock()
		cl.Close()
		<-done
		return fmt.Errorf("kafka: publish to %s: no acknowledgement within %s", dest.Topic, c.cfg.Timeout)
	}
}

// Consume delivers topic's records to handle, in order per partition, as
// a member of the connector's group, until ctx ends.
func (c *Connector) Consume(ctx context.Context, topic string, prefetch int, handle func(context.Context, connectors.Delivery)) error {
	if prefetch <= 0 {
		prefetch = 16
	}
	t := &tracker{parts: map[int32]*partition{}, seen: map[int32]int64{}, done: map[int32]map[int64]bool{}}
	for ctx.Err() == nil {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return errClosed
		}
		if err := c.consumeOnce(ctx, topic, prefetch, t, handle); err != nil && ctx.Err() == nil {
			c.cfg.Log.Info("kafka: consuming stopped; consuming again", "topic", topic, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// partition is what a consumer has delivered of one partition.
type partition struct {
	outstanding []int64 // delivered, not acknowledged, ascending
	next        int64   // one past the last delivered
	committed   int64   // last committed; -1: none
}

// tracker keeps, across a Consume's sessions, what was delivered (for
// Redelivered) and, per session, what may be committed.
type tracker struct {
	mu     sync.Mutex
	parts  map[int32]*partition
	seen   map[int32]int64 // highest offset ever delivered
	rewind bool            // a Nack(true) asks the session to rewind
	// done holds the offsets acknowledged above what is committed: after a
	// rewind they are skipped, not delivered again.
	done map[int32]map[int64]bool
}

// commitAt is where p may be committed: its lowest outstanding offset,
// else one past the last delivered.
func (p *partition) commitAt() int64 {
	if len(p.outstanding) > 0 {
		return p.outstanding[0]
	}
	return p.next
}

// delivered records the delivery of off and says whether it was delivered
// before; skip: it was acknowledged already (before a rewind).
func (t *tracker) delivered(part int32, off int64) (again, skip bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[part]
	if p == nil {
		p = &partition{committed: -1}
		t.parts[part] = p
	}
	p.next = off + 1
	if t.done[part][off] {
		return true, true
	}
	p.outstanding = append(p.outstanding, off)
	prev, ok := t.seen[part]
	if !ok || off > prev {
		t.seen[part] = off
	}
	return ok && off <= prev, false
}

func (t *tracker) acked(part int32, off int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done[part] == nil {
		t.done[part] = map[int64]bool{}
	}
	t.done[part][off] = true
	if p := t.parts[part]; p != nil {
		if i, ok := slices.BinarySearch(p.outstanding, off); ok {
			p.outstanding = slices.Delete(p.outstanding, i, i+1)
		}
	}
}

// commits returns the offsets to commit that moved since the last commit.
func (t *tracker) commits(topic string) map[string]map[int32]kgo.EpochOffset {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int32]kgo.EpochOffset{}
	for part, p := range t.parts {
		if at := p.commitAt(); at > p.committed && p.next > 0 {
			out[part] = kgo.EpochOffset{Epoch: -1, Offset: at}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return map[string]map[int32]kgo.EpochOffset{topic: out}
}

func (t *tracker) committedAt(offs map[string]map[int32]kgo.EpochOffset) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, parts := range offs {
		for part, eo := range parts {
			if p := t.parts[part]; p != nil && eo.Offset > p.committed {
				p.committed = eo.Offset
			}
			for off := range t.done[part] {
				if off < eo.Offset {
					delete(t.done[part], off)
				}
			}
		}
	}
}

// reset forgets a session's deliveries: the next session starts at what
// was committed.
func (t *tracker) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parts = map[int32]*partition{}
	t.rewind = false
}

// disconnects signals a dropped broker connection.
type disconnects chan struct{}

func (d disconnects) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) {
	select {
	case d <- struct{}{}:
	default:
	}
}

var errRewind = errors.New("rewinding to the committed offsets")

// consumeOnce is one session of the group: it ends, committing what was
// acknowledged, when ctx ends, a broker connection drops or a delivery is
// nacked for redelivery; the next session starts at the committed offsets.
func (c *Connector) consumeOnce(ctx context.Context, topic string, prefetch int, t *tracker, handle func(context.Context, connectors.Delivery)) error {
	opts, err := c.options()
	if err != nil {
		return err
	}
	dropped := make(disconnects, 1)
	opts = append(opts, kgo.ConsumerGroup(c.cfg.Group+"."+topic), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond), kgo.WithHooks(dropped),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) { c.commit(ctx, cl, topic, t) }))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	t.reset()
	sem := make(chan struct{}, prefetch)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
		c.commit(cctx, cl, topic, t)
		cancel()
		cl.Close()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-dropped:
			return errors.New("a broker connection dropped")
		default:
		}
		t.mu.Lock()
		rewind := t.rewind
		t.mu.Unlock()
		if rewind {
			return errRewind
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollRecords(pctx, prefetch)
		cancel()
		if fs.IsClientClosed() {
			return errClosed
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) && !errors.Is(fe.Err, context.Canceled) {
				c.cfg.Log.Info("kafka: fetch failed", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
			}
		}
		var stop bool
		fs.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				stop = true
				return
			}
			redelivered, skip := t.delivered(r.Partition, r.Offset)
			if skip {
				<-sem
				return
			}
			var once sync.Once
			done := func() { once.Do(func() { <-sem }) }
			d := connectors.Delivery{Message: message(r), Redelivered: redelivered, Partition: r.Partition, Offset: r.Offset,
				Ack: func() error { t.acked(r.Partition, r.Offset); done(); return nil },
				Nack: func(requeue bool) error {
					if requeue {
						t.mu.Lock()
						t.rewind = true
						t.mu.Unlock()
					} else {
						t.acked(r.Partition, r.Offset)
					}
					done()
					return nil
				}}
			handle(ctx, d)
		})
		c.commit(ctx, cl, topic, t)
	}
}

// commit commits what the tracker says may be.
func (c *Connector) commit(ctx context.Context, cl *kgo.Client, topic string, t *tracker) {
	offs := t.commits(topic)
	if offs == nil {
		return
	}
	var failed error
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		failed = err
	})
	if failed == nil {
		t.committedAt(offs)
	}
}

// message reads a record into a Message.
func message(r *kgo.Record) connectors.Message {
	m := connectors.Message{Key: string(r.Key), Body: r.Value, Timestamp: r.Timestamp, Headers: map[string]any{}}
	for _, h := range r.Headers {
		switch h.Key {
		case headerID:
			m.ID = string(h.Value)
		case headerContentType:
			m.ContentType = string(h.Value)
		default:
			m.Headers[h.Key] = h.Value
		}
	}
	return m
}

// Close closes the connector's clients.
func (c *Connector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.prod != nil {
		c.prod.Close()
		c.prod = nil
	}
	return nil
}
