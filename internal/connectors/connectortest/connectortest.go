// Package connectortest is the conformance suite every broker connector
// passes, run against a real broker (RabbitMQ) or kfake: publish with
// confirms, consume with acknowledgements, redelivery after a dropped
// connection, bodies and headers byte-exact. A new broker kind is done
// when it passes Run.
package connectortest

import (
	"bytes"
	"context"
	"io"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"switchboard/internal/connectors"
)

// Harness is what the suite needs of one broker kind.
type Harness struct {
	// New returns a connector that reaches the broker through addr (a
	// proxy the suite can cut), closed when the test ends.
	New func(t *testing.T, addr string) connectors.Connector
	// Broker is the broker's own address (host:port).
	Broker string
	// Queue makes a fresh, empty queue or topic for the test and returns
	// where to publish to reach it and what to consume.
	Queue func(t *testing.T) (dest connectors.Destination, key, source string)
	// BytesHeaders: the broker carries header values as bytes only (Kafka),
	// so the suite sends text and bytes and expects bytes back.
	BytesHeaders bool
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("PublishedMessagesArriveByteExact", func(t *testing.T) { byteExact(t, h) })
	t.Run("NackedMessagesComeAgainAckedOnesDoNot", func(t *testing.T) { ackNack(t, h) })
	t.Run("UnacknowledgedMessagesComeAgainAfterADroppedConnection", func(t *testing.T) { dropped(t, h) })
}

// deliveries consumes source into a channel until the test ends.
func deliveries(t *testing.T, c connectors.Connector, source string) <-chan connectors.Delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan connectors.Delivery, 64)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Consume(ctx, source, 8, func(ctx context.Context, d connectors.Delivery) {
			select {
			case out <- d:
			case <-ctx.Done():
			}
		}); err != nil {
			t.Errorf("consume %s: %v", source, err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return out
}

func next(t *testing.T, ch <-chan connectors.Delivery, what string) connectors.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery (%s) within 30 s", what)
		return connectors.Delivery{}
	}
}

func publish(t *testing.T, c connectors.Connector, dest connectors.Destination, msgs ...connectors.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Publish(ctx, dest, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func byteExact(t *testing.T, h Harness) {
	c := h.New(t, h.Broker)
	dest, key, source := h.Queue(t)
	body := make([]byte, 0, 512)
	for i := range 256 {
		body = append(body, byte(i))
	}
	body = append(body, []byte("é\x00\xff{}")...)
	headers := map[string]any{"x-text": "dead letter é", "x-bytes": []byte{0, 1, 2, 0xff}, "x-count": int64(3)}
	want := headers
	if h.BytesHeaders {
		headers = map[string]any{"x-text": "dead letter é", "x-bytes": []byte{0, 1, 2, 0xff}}
		want = map[string]any{"x-text": []byte("dead letter é"), "x-bytes": []byte{0, 1, 2, 0xff}}
	}
	publish(t, c, dest, connectors.Message{ID: "m-1", Key: key, Body: body, Headers: headers, ContentType: "application/octet-stream"})
	d := next(t, deliveries(t, c, source), "the published message")
	if !bytes.Equal(d.Body, body) {
		t.Fatalf("body came back as %x, sent %x", d.Body, body)
	}
	if len(d.Headers) != len(want) {
		t.Errorf("headers came back as %v, sent %v", d.Headers, headers)
	}
	for k, v := range want {
		if !reflect.DeepEqual(d.Headers[k], v) {
			t.Errorf("header %s came back as %#v, sent %#v", k, d.Headers[k], v)
		}
	}
	if d.ID != "m-1" || d.ContentType != "application/octet-stream" {
		t.Errorf("id %q, content type %q", d.ID, d.ContentType)
	}
	if err := d.Ack(); err != nil {
		t.Fatal(err)
	}
}

func ackNack(t *testing.T, h Harness) {
	c := h.New(t, h.Broker)
	dest, key, source := h.Queue(t)
	publish(t, c, dest, connectors.Message{Key: key, Body: []byte("one")}, connectors.Message{Key: key, Body: []byte("two")})
	ch := deliveries(t, c, source)
	first := next(t, ch, "one")
	if string(first.Body) != "one" {
		t.Fatalf("first delivery %q", first.Body)
	}
	if err := first.Nack(true); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range 2 {
		d := next(t, ch, "two, and one again")
		got[string(d.Body)]++
		if string(d.Body) == "one" && !d.Redelivered {
			t.Error("a nacked message came again without saying so")
		}
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if got["one"] != 1 || got["two"] != 1 {
		t.Fatalf("deliveries %v", got)
	}
	// What was acknowledged does not come again: the next delivery is a
	// message published after.
	publish(t, c, dest, connectors.Message{Key: key, Body: []byte("marker")})
	if d := next(t, ch, "the marker"); string(d.Body) != "marker" {
		t.Fatalf("after acknowledging, %q came (want the marker)", d.Body)
	}
}

func dropped(t *testing.T, h Harness) {
	proxy := NewProxy(t, h.Broker)
	c := h.New(t, proxy.Addr())
	dest, key, source := h.Queue(t)
	publish(t, c, dest, connectors.Message{Key: key, Body: []byte("held")})
	ch := deliveries(t, c, source)
	d := next(t, ch, "the message, before the cut")
	if string(d.Body) != "held" {
		t.Fatalf("delivery %q", d.Body)
	}
	proxy.Cut() // not acknowledged: the broker has it still
	again := next(t, ch, "the message again, after the connection came back")
	if string(again.Body) != "held" || !again.Redelivered {
		t.Fatalf("after the cut: %q (redelivered %v)", again.Body, again.Redelivered)
	}
	if err := again.Ack(); err != nil {
		t.Fatal(err)
	}
	// Publishing works again too.
	publish(t, c, dest, connectors.Message{Key: key, Body: []byte("after")})
	if d := next(t, ch, "a message published after the cut"); string(d.Body) != "after" {
		t.Fatalf("after the cut: %q", d.Body)
	}
}

// Proxy forwards TCP connections to a broker; Cut drops every connection
// it carries, as a network failure would.
type Proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards conns
	conns  []net.Conn
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target, stopped when the test ends.
func NewProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() { ln.Close(); p.Cut(); p.wg.Wait() })
	return p
}

// Addr is where to connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 10*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(out, in); out.Close() })
		p.wg.Go(func() { _, _ = io.Copy(in, out); in.Close() })
	}
}

// Cut closes every connection the proxy carries.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
