package dlq_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/connectors"
	"switchboard/internal/connectors/connectortest"
	"switchboard/internal/connectors/kafka"
	"switchboard/internal/connectors/rabbitmq/rabbittest"
	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/dlq"
	"switchboard/internal/problem"
	"switchboard/internal/secrets"
)

func allowAll(context.Context, access.Object) error { return nil }

// env is one test's tenant, catalog and RabbitMQ queues: work (dead-letters
// to work.dlq through the default exchange) and its DLQ.
type env struct {
	db      *database.DB
	tenant  uuid.UUID
	cat     *catalog.Store
	store   *dlq.Store
	brokers *dlq.Brokers
	work    string
	dlqName string
	ch      *amqp.Channel
	events  chan dlq.Event
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := t.Context()
	db := dbtest.New(t)
	var tenant uuid.UUID
	if err := db.Pool.QueryRow(ctx, `INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id`).Scan(&tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO teams (tenant_id, slug, name) VALUES ($1, 'payments', 'Payments')`, tenant); err != nil {
		t.Fatal(err)
	}
	key, _ := secrets.GenerateKey("k1")
	ring, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(db, ring)
	work, dead, ch := rabbittest.DeadLettering(t, "work-", amqp.Table{"x-queue-type": "quorum"})
	e := &env{db: db, tenant: tenant, cat: cat, store: dlq.NewStore(db, cat), work: work, dlqName: dead, ch: ch,
		events: make(chan dlq.Event, 1000)}
	e.store.OnEvents(func(_ uuid.UUID, _ string, evs []dlq.Event) {
		for _, ev := range evs {
			select {
			case e.events <- ev:
			default:
			}
		}
	})
	e.brokers = &dlq.Brokers{Catalog: cat}
	t.Cleanup(e.brokers.Close)
	create := func(en catalog.Entity, creds *catalog.BrokerCredentials) {
		t.Helper()
		if _, err := cat.Create(ctx, tenant, en, creds, allowAll); err != nil {
			t.Fatalf("create %s: %v", en.Name, err)
		}
	}
	create(catalog.Entity{Kind: catalog.KindBroker, Name: "local", OwnerTeam: "payments",
		Broker: &catalog.BrokerSpec{Type: catalog.RabbitMQ, URL: "amqp://127.0.0.1:5672", VHost: "/"}},
		&catalog.BrokerCredentials{Username: "guest", Password: "guest"})
	create(catalog.Entity{Kind: catalog.KindQueue, Name: e.dlqName, OwnerTeam: "payments", Queue: &catalog.QueueSpec{Broker: "local"}}, nil)
	create(catalog.Entity{Kind: catalog.KindQueue, Name: e.work, OwnerTeam: "payments",
		Queue: &catalog.QueueSpec{Broker: "local", DeadLetterExchange: "", DeadLetterQueue: e.dlqName}}, nil)
	return e
}

// deadLetter publishes msgs to the work queue and rejects them, so the
// broker dead-letters each into the DLQ with its x-death header.
func (e *env) deadLetter(t testing.TB, msgs ...amqp.Publishing) {
	t.Helper()
	if err := e.ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		dc, err := e.ch.PublishWithDeferredConfirm("", e.work, true, false, m)
		if err != nil {
			t.Fatal(err)
		}
		if ok := dc.Wait(); !ok {
			t.Fatal("not confirmed")
		}
	}
	e.reject(t, len(msgs))
}

// reject takes n messages off the work queue and rejects each.
func (e *env) reject(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for got := 0; got < n; {
		d, ok, err := e.ch.Get(e.work, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if time.Now().After(deadline) {
				t.Fatalf("rejected %d of %d", got, n)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err := d.Reject(false); err != nil {
			t.Fatal(err)
		}
		got++
	}
}

func (e *env) startCapture(t testing.TB) *dlq.Capture {
	t.Helper()
	c := &dlq.Capture{Store: e.store, Brokers: e.brokers, Every: 200 * time.Millisecond}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func (e *env) startRunner(t testing.TB) *dlq.Runner {
	t.Helper()
	r := &dlq.Runner{Store: e.store, Brokers: e.brokers, Every: 100 * time.Millisecond}
	r.Start()
	t.Cleanup(r.Close)
	return r
}

// waitFor polls cond until it holds, or fails after 30 s.
func waitFor(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) messages(t testing.TB, f dlq.Filter) []dlq.Message {
	t.Helper()
	ms, _, err := e.store.Messages(t.Context(), e.tenant, "queue:"+e.dlqName, f, "", dlq.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// captured dead-letters msgs, captures them, and returns them as stored
// (newest first) with their DLQ.
func (e *env) captured(t testing.TB, msgs ...amqp.Publishing) ([]dlq.Message, dlq.DLQ) {
	t.Helper()
	e.deadLetter(t, msgs...)
	e.startCapture(t)
	var ms []dlq.Message
	waitFor(t, "captured", func() (bool, error) { ms = e.messages(t, dlq.Filter{}); return len(ms) == len(msgs), nil })
	d, err := e.store.Get(t.Context(), e.tenant, "queue:"+e.dlqName, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	return ms, d
}

// count is how many messages the store holds of the DLQ.
func (e *env) count(t testing.TB) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM dlq_messages WHERE tenant_id = $1`, e.tenant).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) queueDepth(t testing.TB, name string) int {
	t.Helper()
	q, err := e.ch.QueueDeclarePassive(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// Capture takes each dead letter off the broker into the store, byte-exact,
// with where it was going and why from x-death, and acknowledges it only
// once stored.
func TestCapture_StoresDeadLettersWithTheirOrigin(t *testing.T) {
	e := newEnv(t)
	body := []byte{0, 1, 2, 0xff, 'x'}
	e.deadLetter(t,
		amqp.Publishing{MessageId: "order-1", ContentType: "application/json", Body: []byte(`{"order":1,"card":"4111"}`),
			Headers: amqp.Table{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-attempt": int32(3)}},
		amqp.Publishing{MessageId: "order-2", ContentType: "application/octet-stream", Body: body, CorrelationId: "c-2", Priority: 4})
	e.startCapture(t)
	var ms []dlq.Message
	waitFor(t, "two messages captured", func() (bool, error) {
		ms = e.messages(t, dlq.Filter{})
		return len(ms) == 2, nil
	})
	waitFor(t, "the DLQ emptied (acknowledged after storing)", func() (bool, error) { return e.queueDepth(t, e.dlqName) == 0, nil })
	byID := map[string]dlq.Message{}
	for _, m := range ms {
		byID[m.MessageID] = m
	}
	one, two := byID["order-1"], byID["order-2"]
	if one.Body != `{"order":1,"card":"4111"}` || one.BodyEncoding != "text" {
		t.Errorf("order-1 body %q (%s)", one.Body, one.BodyEncoding)
	}
	if two.BodyEncoding != "base64" || two.Body != "AAEC/3g=" || two.BodySize != 5 {
		t.Errorf("order-2 body %q (%s, %d bytes)", two.Body, two.BodyEncoding, two.BodySize)
	}
	if one.Original.Queue != e.work || one.Original.RoutingKey != e.work || one.Original.Exchange != "" {
		t.Errorf("order-1 original %+v", one.Original)
	}
	if one.Reason != "rejected" || one.DeathCount != 1 || one.FirstDeath == nil || one.Status != dlq.Dead {
		t.Errorf("order-1: reason %q, deaths %d, first %v, status %s", one.Reason, one.DeathCount, one.FirstDeath, one.Status)
	}
	if one.Traceparent != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("traceparent %q", one.Traceparent)
	}
	if v := one.Headers["x-attempt"]; v.Type != "int32" || string(v.Value) != "3" {
		t.Errorf("x-attempt header %+v", v)
	}
	if two.Properties["correlation-id"] != "c-2" || two.Properties["priority"] != "4" {
		t.Errorf("order-2 properties %v", two.Properties)
	}
	// Filters: by body text, header, status.
	if got := e.messages(t, dlq.Filter{Text: `"card"`}); len(got) != 1 || got[0].MessageID != "order-1" {
		t.Errorf("text filter: %d messages", len(got))
	}
	if got := e.messages(t, dlq.Filter{Header: "traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}); len(got) != 1 {
		t.Errorf("header filter: %d messages", len(got))
	}
	// A trace's page finds the dead letter by its trace id, and the span
	// that sent it; another trace, or a DLQ the caller may not read, none.
	traced, err := e.store.TracedMessages(t.Context(), e.tenant, "0AF7651916CD43DD8448EB211C80319C", allowAll)
	if err != nil || len(traced) != 1 || traced[0].ID != one.ID || traced[0].SpanID != "b7ad6b7169203331" || traced[0].DLQ != "queue:"+e.dlqName {
		t.Errorf("traced messages %+v, %v", traced, err)
	}
	deny := func(context.Context, access.Object) error { return problem.Errorf(problem.CodeForbidden, "denied") }
	for _, c := range []struct {
		trace string
		allow access.Check
	}{{"0af7651916cd43dd8448eb211c80319d", allowAll}, {"0af7651916cd43dd8448eb211c80319c", deny}, {"0af7651916cd43dd8448eb211c8031%_", allowAll}} {
		if got, err := e.store.TracedMessages(t.Context(), e.tenant, c.trace, c.allow); err != nil || len(got) != 0 {
			t.Errorf("traced messages of %s: %+v, %v", c.trace, got, err)
		}
	}
	if got := e.messages(t, dlq.Filter{Status: []string{dlq.Replayed}}); len(got) != 0 {
		t.Errorf("status filter: %d messages", len(got))
	}
	groups, err := e.store.Groups(t.Context(), e.tenant, "queue:"+e.dlqName, dlq.ByOriginal, dlq.Filter{})
	if err != nil || len(groups) != 1 || groups[0].Key != e.work || groups[0].Count != 2 {
		t.Fatalf("groups by original: %+v, %v", groups, err)
	}
	// Live: both were told.
	seen := 0
	for len(e.events) > 0 {
		if ev := <-e.events; ev.Type == "message" {
			seen++
		}
	}
	if seen != 2 {
		t.Errorf("%d message events, want 2", seen)
	}
}

// A replay publishes each message to where it was going, with the replay's
// headers, and it leaves the DLQ store only once the broker confirmed it;
// a message that dead-letters again goes back to its record, and after
// MaxReplays it is held back.
func TestReplay_ToTheOriginalQueueAndTheLoopGuard(t *testing.T) {
	e := newEnv(t)
	e.store.MaxReplays = 2
	e.deadLetter(t, amqp.Publishing{MessageId: "m-1", Body: []byte("hello"), Headers: amqp.Table{"x-tenant": "acme"}})
	e.startCapture(t)
	var ms []dlq.Message
	waitFor(t, "captured", func() (bool, error) { ms = e.messages(t, dlq.Filter{}); return len(ms) == 1, nil })
	e.startRunner(t)
	d, err := e.store.Get(t.Context(), e.tenant, "queue:"+e.dlqName, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		job, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{MessageIDs: []int64{ms[0].ID}}}, allowAll)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		waitFor(t, "replay done", func() (bool, error) {
			j, err := e.store.GetReplay(t.Context(), e.tenant, "queue:"+e.dlqName, job.ID)
			return j.State == dlq.Done, err
		})
		j, _ := e.store.GetReplay(t.Context(), e.tenant, "queue:"+e.dlqName, job.ID)
		if j.Counts != (dlq.ReplayCounts{Total: 1, Published: 1, Confirmed: 1}) {
			t.Fatalf("round %d counts %+v", round, j.Counts)
		}
		// It arrives on the work queue with its headers and the replay's.
		var got amqp.Delivery
		waitFor(t, "the replayed message on the work queue", func() (bool, error) {
			d, ok, err := e.ch.Get(e.work, false)
			got = d
			return ok, err
		})
		if string(got.Body) != "hello" || got.MessageId != "m-1" || got.Headers["x-tenant"] != "acme" ||
			got.Headers[dlq.HeaderReplayID] != job.ID.String() || got.Headers[dlq.HeaderReplayCount] != int64(round) {
			t.Fatalf("round %d: replayed %q %q headers %v", round, got.Body, got.MessageId, got.Headers)
		}
		if m, _ := e.store.Message(t.Context(), e.tenant, "queue:"+e.dlqName, ms[0].ID); m.Status != dlq.Replayed || m.Replays != round {
			t.Fatalf("round %d: stored status %s, replays %d", round, m.Status, m.Replays)
		}
		// The consumer fails again: back into the DLQ, back to its record.
		if err := got.Reject(false); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the message back in the store", func() (bool, error) {
			m, err := e.store.Message(t.Context(), e.tenant, "queue:"+e.dlqName, ms[0].ID)
			return m.Status == dlq.Dead && m.Returns == round, err
		})
	}
	if n := len(e.messages(t, dlq.Filter{})); n != 1 {
		t.Fatalf("%d records after two returns, want the one", n)
	}
	m, _ := e.store.Message(t.Context(), e.tenant, "queue:"+e.dlqName, ms[0].ID)
	if !m.Held || m.DeathCount < 3 {
		t.Fatalf("after %d replays: held %v, deaths %d", m.Replays, m.Held, m.DeathCount)
	}
	_, _, err = e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{MessageIDs: []int64{ms[0].ID}}}, allowAll)
	if problem.Code(err) != problem.CodeUnprocessable {
		t.Fatalf("replaying a held message: %v", err)
	}
}

// A dry run says what would go where and changes nothing; a target that is
// the DLQ itself is refused.
func TestReplay_DryRunAndRefusals(t *testing.T) {
	e := newEnv(t)
	e.deadLetter(t, amqp.Publishing{Body: []byte("a")}, amqp.Publishing{Body: []byte("b")})
	e.startCapture(t)
	waitFor(t, "captured", func() (bool, error) { return len(e.messages(t, dlq.Filter{})) == 2, nil })
	d, err := e.store.Get(t.Context(), e.tenant, "queue:"+e.dlqName, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	sel := dlq.Selection{Filter: &dlq.Filter{Reason: "rejected"}}
	_, plan, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: sel, DryRun: true}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Replay != 2 || len(plan.Destinations) != 1 || plan.Destinations[0].Destination.RoutingKey != e.work {
		t.Fatalf("plan %+v", plan)
	}
	for _, m := range e.messages(t, dlq.Filter{}) {
		if m.Status != dlq.Dead {
			t.Fatalf("a dry run changed a message to %s", m.Status)
		}
	}
	self := dlq.ReplayRequest{Selection: sel, Target: &dlq.Target{Queue: e.dlqName}}
	if _, _, err := e.store.StartReplay(t.Context(), e.tenant, d, self, allowAll); problem.Code(err) != problem.CodeUnprocessable {
		t.Fatalf("a target that is the DLQ: %v", err)
	}
	for _, bad := range []dlq.ReplayRequest{
		{Selection: dlq.Selection{}},
		{Selection: sel, RatePerSecond: -1},
		{Selection: sel, BatchSize: 1_000_000},
		{Selection: sel, Edit: &dlq.Edit{}},
		{Selection: dlq.Selection{MessageIDs: []int64{1}, Filter: &dlq.Filter{}}},
	} {
		if _, _, err := e.store.StartReplay(t.Context(), e.tenant, d, bad, allowAll); problem.Code(err) != problem.CodeInvalid {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	// Refused on a destination: nothing starts.
	deny := func(_ context.Context, o access.Object) error {
		if o.Name == "queue:"+e.work {
			return problem.Errorf(problem.CodeForbidden, "not into %s", o.Name)
		}
		return nil
	}
	if _, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: sel}, deny); problem.Code(err) != problem.CodeForbidden {
		t.Fatalf("a refused destination: %v", err)
	}
	if got := e.messages(t, dlq.Filter{Status: []string{dlq.Dead}}); len(got) != 2 {
		t.Fatalf("%d dead after a refused replay", len(got))
	}
}

// Connections cut in the middle of a replay (a proxy between Switchboard
// and RabbitMQ drops them) lose nothing: the job resumes on a new
// connection and ends with exact counts, every message on its queue.
func TestReplay_SurvivesDroppedBrokerConnections(t *testing.T) {
	const n = 200
	e := newEnv(t)
	proxy := connectortest.NewProxy(t, "127.0.0.1:5672")
	e.brokers.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, proxy.Addr())
	}
	msgs := make([]amqp.Publishing, n)
	for i := range msgs {
		msgs[i] = amqp.Publishing{MessageId: fmt.Sprintf("m-%03d", i), Body: []byte(fmt.Sprint(i))}
	}
	e.deadLetter(t, msgs...)
	e.startCapture(t)
	waitFor(t, "captured", func() (bool, error) { return len(e.messages(t, dlq.Filter{})) == n, nil })
	e.startRunner(t)
	d, err := e.store.Get(t.Context(), e.tenant, "queue:"+e.dlqName, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	job, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{Filter: &dlq.Filter{}},
		RatePerSecond: 200, BatchSize: 10}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	get := func() dlq.Replay {
		j, err := e.store.GetReplay(t.Context(), e.tenant, "queue:"+e.dlqName, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	for _, at := range []int{n / 4, n / 2} {
		waitFor(t, fmt.Sprintf("%d confirmed", at), func() (bool, error) { return get().Counts.Confirmed >= at, nil })
		proxy.Cut()
	}
	waitFor(t, "the replay done", func() (bool, error) { return get().State == dlq.Done, nil })
	if c := get().Counts; c != (dlq.ReplayCounts{Total: n, Published: n, Confirmed: n}) {
		t.Fatalf("counts %+v", c)
	}
	if got := e.messages(t, dlq.Filter{Status: []string{dlq.Replayed}}); len(got) != n {
		t.Fatalf("%d replayed in the store, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for {
		m, ok, err := e.ch.Get(e.work, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		seen[m.MessageId] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages on the work queue, want %d", len(seen), n)
	}
}

// kafka starts an in-process Kafka cluster holding topics (one partition
// each), has e's broker connections reach it (with the connector's timeout,
// 0: its default), and registers broker "events" and entities in e's
// catalog. The caller closes the cluster.
func (e *env) kafka(t testing.TB, timeout time.Duration, topics []string, entities ...catalog.Entity) (*kfake.Cluster, string) {
	t.Helper()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	addr := fake.ListenAddrs()[0]
	e.brokers.Kafka = func(b catalog.BrokerSpec, _ catalog.BrokerCredentials, dial func(ctx context.Context, network, addr string) (net.Conn, error)) connectors.Connector {
		return kafka.New(kafka.Config{Seeds: b.BootstrapServers, Dial: dial, Timeout: timeout})
	}
	broker := catalog.Entity{Kind: catalog.KindBroker, Name: "events", OwnerTeam: "payments", Broker: &catalog.BrokerSpec{Type: catalog.Kafka, BootstrapServers: []string{addr}}}
	for _, en := range append([]catalog.Entity{broker}, entities...) {
		if _, err := e.cat.Create(t.Context(), e.tenant, en, nil, allowAll); err != nil {
			t.Fatal(err)
		}
	}
	return fake, addr
}

// A Kafka DLQ topic: capture reads it by partition and offset into the
// store, with the original topic and the exception from Spring's headers,
// and a replay produces each record back to its original topic with the
// replay's headers.
func TestKafka_CaptureAndReplay(t *testing.T) {
	e := newEnv(t)
	fake, addr := e.kafka(t, 0, []string{"orders", "orders.dlt"},
		catalog.Entity{Kind: catalog.KindTopic, Name: "orders.dlt", OwnerTeam: "payments", Topic: &catalog.TopicSpec{Broker: "events", Partitions: 1}},
		catalog.Entity{Kind: catalog.KindTopic, Name: "orders", OwnerTeam: "payments", Topic: &catalog.TopicSpec{Broker: "events", Partitions: 1, DeadLetterTopic: "orders.dlt"}})
	defer fake.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: "orders.dlt", Key: []byte("o-1"), Value: []byte(`{"order":1}`), Headers: []kgo.RecordHeader{
		{Key: "kafka_dlt-original-topic", Value: []byte("orders")},
		{Key: "kafka_dlt-exception-fqcn", Value: []byte("com.example.PaymentDeclined")},
		{Key: "kafka_dlt-exception-message", Value: []byte("card declined")}}}
	if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.startCapture(t)
	ref := "topic:orders.dlt"
	var ms []dlq.Message
	waitFor(t, "the record captured", func() (bool, error) {
		var err error
		ms, _, err = e.store.Messages(t.Context(), e.tenant, ref, dlq.Filter{}, "", 10)
		return len(ms) == 1, err
	})
	m := ms[0]
	if m.Original.Topic != "orders" || m.Reason != "com.example.PaymentDeclined" || m.Exception != "card declined" || m.Partition == nil || *m.Partition != 0 || m.Offset == nil {
		t.Fatalf("captured %+v", m)
	}
	e.startRunner(t)
	d, err := e.store.Get(t.Context(), e.tenant, ref, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	job, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{MessageIDs: []int64{m.ID}}}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay done", func() (bool, error) {
		j, err := e.store.GetReplay(t.Context(), e.tenant, ref, job.ID)
		return j.State == dlq.Done, err
	})
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	fs := consumer.PollRecords(ctx, 10)
	recs := fs.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records on orders (%v)", len(recs), fs.Errors())
	}
	got := map[string]string{}
	for _, h := range recs[0].Headers {
		got[h.Key] = string(h.Value)
	}
	if string(recs[0].Value) != `{"order":1}` || string(recs[0].Key) != "o-1" || got[dlq.HeaderReplayID] != job.ID.String() ||
		got[dlq.HeaderReplayCount] != "1" || got["kafka_dlt-exception-message"] != "card declined" {
		t.Fatalf("replayed %q %q %v", recs[0].Key, recs[0].Value, got)
	}
}

// The Kafka cluster dies in the middle of a replay: every message ends
// either replayed (and it is on the topic) or dead in the store again
// once the replay is cancelled; none is lost, none counted twice.
func TestKafka_ClusterKilledMidReplay(t *testing.T) {
	const n = 300
	e := newEnv(t)
	fake, addr := e.kafka(t, 2*time.Second, []string{"orders", "orders.dlt"},
		catalog.Entity{Kind: catalog.KindTopic, Name: "orders.dlt", OwnerTeam: "payments", Topic: &catalog.TopicSpec{Broker: "events", Partitions: 1}},
		catalog.Entity{Kind: catalog.KindTopic, Name: "orders", OwnerTeam: "payments", Topic: &catalog.TopicSpec{Broker: "events", Partitions: 1, DeadLetterTopic: "orders.dlt"}})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "orders.dlt", Value: []byte(fmt.Sprint(i)), Headers: []kgo.RecordHeader{{Key: "x-original-topic", Value: []byte("orders")}}}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ref := "topic:orders.dlt"
	capture := e.startCapture(t)
	waitFor(t, "captured", func() (bool, error) { return e.count(t) == n, nil })
	capture.Close()
	e.startRunner(t)
	d, err := e.store.Get(t.Context(), e.tenant, ref, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	job, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{Filter: &dlq.Filter{}}, RatePerSecond: 200, BatchSize: 10}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a third replayed", func() (bool, error) {
		j, err := e.store.GetReplay(t.Context(), e.tenant, ref, job.ID)
		return j.Counts.Confirmed >= n/3, err
	})
	fake.Close()
	time.Sleep(2 * time.Second) // the runner meets the dead cluster
	if _, err := e.store.ControlReplay(t.Context(), e.tenant, ref, job.ID, "cancel"); err != nil {
		t.Fatal(err)
	}
	var j dlq.Replay
	waitFor(t, "the counts settled", func() (bool, error) {
		var err error
		j, err = e.store.GetReplay(t.Context(), e.tenant, ref, job.ID)
		return j.Counts.Confirmed+j.Counts.Failed+j.Counts.Skipped == j.Counts.Total, err
	})
	var replayed, dead int
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE status = 'replayed'), count(*) FILTER (WHERE status = 'dead') FROM dlq_messages WHERE dlq = $1`, ref).
		Scan(&replayed, &dead); err != nil {
		t.Fatal(err)
	}
	if replayed != j.Counts.Confirmed || replayed+dead != n || j.Counts.Total != n {
		t.Fatalf("after the cluster died: %d replayed, %d dead; counts %+v", replayed, dead, j.Counts)
	}
	if replayed == n {
		t.Fatalf("every message was replayed: the cluster died too late to test anything")
	}
	t.Logf("%d replayed before the cluster died, %d back in the DLQ", replayed, dead)
}

// A Kafka DLQ with its own conventions: the original topic in a header of
// its choosing (or, without one, from the DLQ's name), and a replay to one
// consumer group goes to that group's retry topic, made on demand, and to
// no topic other groups read.
func TestKafka_ReplayToOneConsumerGroupByTheDLQsConventions(t *testing.T) {
	e := newEnv(t)
	fake, addr := e.kafka(t, 0, []string{"payments", "refunds", "payments-DLQ"},
		catalog.Entity{Kind: catalog.KindTopic, Name: "payments-DLQ", OwnerTeam: "payments", Topic: &catalog.TopicSpec{Broker: "events", Partitions: 1}},
		catalog.Entity{Kind: catalog.KindTopic, Name: "payments", OwnerTeam: "payments", Topic: &catalog.TopicSpec{Broker: "events", Partitions: 1, DeadLetterTopic: "payments-DLQ"}},
		catalog.Entity{Kind: catalog.KindTopic, Name: "refunds", OwnerTeam: "payments", Topic: &catalog.TopicSpec{Broker: "events", Partitions: 1, DeadLetterTopic: "payments-DLQ"}})
	defer fake.Close()
	ref := "topic:payments-DLQ"
	if err := e.store.ChangeSettings(t.Context(), e.tenant, ref, dlq.SettingsChange{
		Kafka: &dlq.KafkaSettings{OriginalTopicHeader: "origin", RetryTopic: "retry.{group}.{topic}"}}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(),
		&kgo.Record{Topic: "payments-DLQ", Value: []byte("a"), Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("refunds")}}},
		&kgo.Record{Topic: "payments-DLQ", Value: []byte("b"), Headers: []kgo.RecordHeader{{Key: "x-original-topic", Value: []byte("refunds")}}},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.startCapture(t)
	var ms []dlq.Message
	waitFor(t, "both records captured", func() (bool, error) {
		var err error
		ms, _, err = e.store.Messages(t.Context(), e.tenant, ref, dlq.Filter{}, "", 10)
		return len(ms) == 2, err
	})
	byBody := map[string]dlq.Message{}
	for _, m := range ms {
		byBody[string(m.Body)] = m
	}
	// The DLQ names its own header: the usual one is not read any more.
	if a, b := byBody["a"], byBody["b"]; a.Original.Topic != "refunds" || b.Original.Topic != "" {
		t.Fatalf("original topics: a %q (want refunds), b %q (want none)", a.Original.Topic, b.Original.Topic)
	}
	d, err := e.store.Get(t.Context(), e.tenant, ref, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kafka == nil || d.Kafka.RetryTopic != "retry.{group}.{topic}" {
		t.Fatalf("the DLQ's Kafka settings read %+v", d.Kafka)
	}
	req := dlq.ReplayRequest{Selection: dlq.Selection{Filter: &dlq.Filter{}}, Target: &dlq.Target{ConsumerGroup: "billing"}, DryRun: true}
	_, plan, err := e.store.StartReplay(t.Context(), e.tenant, d, req, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"retry.billing.refunds": "refunds", "retry.billing.payments": "payments"} // b: from the DLQ's name
	if len(plan.Destinations) != 2 {
		t.Fatalf("the plan goes to %+v, want %v", plan.Destinations, want)
	}
	for _, pd := range plan.Destinations {
		if dest := pd.Destination; want[dest.Topic] != dest.GroupTopic || dest.ConsumerGroup != "billing" || pd.Count != 1 {
			t.Errorf("planned %+v, want one of %v for group billing", pd.Destination, want)
		}
	}
	e.startRunner(t)
	req.DryRun = false
	job, _, err := e.store.StartReplay(t.Context(), e.tenant, d, req, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay done", func() (bool, error) {
		j, err := e.store.GetReplay(t.Context(), e.tenant, ref, job.ID)
		if j.State == dlq.Paused || j.State == dlq.Failed {
			return false, fmt.Errorf("the replay is %s: %s", j.State, j.Note)
		}
		return j.State == dlq.Done && j.Counts.Confirmed == 2, err
	})
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("retry.billing.refunds", "retry.billing.payments", "payments", "refunds"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got := map[string]string{}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for len(got) < 2 && ctx.Err() == nil {
		for _, r := range consumer.PollRecords(ctx, 10).Records() {
			got[string(r.Value)] = r.Topic
		}
	}
	if got["a"] != "retry.billing.refunds" || got["b"] != "retry.billing.payments" || len(got) != 2 {
		t.Fatalf("records went to %v", got)
	}
}

// A replay's messages are its own from its start: they answer as
// replaying (each, by filter and in the counts), and neither a discard nor
// another replay takes them; a cancel gives them back, dead.
func TestReplay_HoldsItsMessagesUntilCancelled(t *testing.T) {
	e := newEnv(t)
	ms, d := e.captured(t, amqp.Publishing{Body: []byte("a")}, amqp.Publishing{Body: []byte("b")}, amqp.Publishing{Body: []byte("c")})
	ref := "queue:" + e.dlqName
	// No runner: the job stays running with its messages unsent.
	held := []int64{ms[0].ID, ms[1].ID}
	job, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{MessageIDs: held}}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	wantStatuses := func(when string, want map[int64]string, counts dlq.Counts) {
		t.Helper()
		for id, status := range want {
			m, err := e.store.Message(t.Context(), e.tenant, ref, id)
			if err != nil || m.Status != status {
				t.Fatalf("%s: message %d is %s (%v), want %s", when, id, m.Status, err, status)
			}
			found := false
			for _, f := range e.messages(t, dlq.Filter{Status: []string{status}}) {
				found = found || f.ID == id
			}
			if !found {
				t.Fatalf("%s: the %s filter leaves message %d out", when, status, id)
			}
		}
		got, err := e.store.Counted(t.Context(), e.tenant, ref, allowAll)
		if err != nil {
			t.Fatal(err)
		}
		if got.Counts != counts {
			t.Fatalf("%s: counts %+v, want %+v", when, got.Counts, counts)
		}
	}
	wantStatuses("started", map[int64]string{ms[0].ID: dlq.Replaying, ms[1].ID: dlq.Replaying, ms[2].ID: dlq.Dead},
		dlq.Counts{Dead: 1, Replaying: 2})
	n, err := e.store.Discard(t.Context(), e.tenant, ref, dlq.Selection{Filter: &dlq.Filter{}})
	if err != nil || n != 1 {
		t.Fatalf("discarding all: %d, %v; want only the one no replay holds", n, err)
	}
	if _, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{MessageIDs: held}}, allowAll); problem.Code(err) != problem.CodeUnprocessable {
		t.Fatalf("a second replay of held messages: %v", err)
	}
	j, err := e.store.ControlReplay(t.Context(), e.tenant, ref, job.ID, "cancel")
	if err != nil {
		t.Fatal(err)
	}
	if j.Counts.Skipped != 2 {
		t.Fatalf("cancelled: counts %+v", j.Counts)
	}
	wantStatuses("cancelled", map[int64]string{ms[0].ID: dlq.Dead, ms[1].ID: dlq.Dead, ms[2].ID: dlq.Discarded},
		dlq.Counts{Dead: 2, Discarded: 1})
}

// A replayed message that dead-letters again before its batch's record
// (the consumer was quicker than the runner's commit) is confirmed by the
// capture that stores its return: the job counts it once, confirmed and
// returned, and the message is dead again with its replay counted.
func TestReplay_ReturnBeforeItsRecord(t *testing.T) {
	e := newEnv(t)
	ms, d := e.captured(t, amqp.Publishing{Body: []byte("a")})
	ref := "queue:" + e.dlqName
	job, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{MessageIDs: []int64{ms[0].ID}}}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	// What the runner would have sent, come back before it recorded it.
	e.deadLetter(t, amqp.Publishing{Body: []byte("a"), Headers: amqp.Table{
		dlq.HeaderReplayID: job.ID.String(), dlq.HeaderReplayCount: int64(1), dlq.HeaderMessage: fmt.Sprint(ms[0].ID)}})
	waitFor(t, "the return stored", func() (bool, error) {
		m, err := e.store.Message(t.Context(), e.tenant, ref, ms[0].ID)
		return m.Returns == 1, err
	})
	m, _ := e.store.Message(t.Context(), e.tenant, ref, ms[0].ID)
	if m.Status != dlq.Dead || m.Replays != 1 || m.LastReplay == nil || *m.LastReplay != job.ID {
		t.Fatalf("back: status %s, replays %d, last replay %v", m.Status, m.Replays, m.LastReplay)
	}
	e.startRunner(t)
	waitFor(t, "the job done", func() (bool, error) {
		j, err := e.store.GetReplay(t.Context(), e.tenant, ref, job.ID)
		return j.State == dlq.Done, err
	})
	j, _ := e.store.GetReplay(t.Context(), e.tenant, ref, job.ID)
	if j.Counts != (dlq.ReplayCounts{Total: 1, Published: 1, Confirmed: 1, Returned: 1}) {
		t.Fatalf("counts %+v", j.Counts)
	}
	if depth := e.queueDepth(t, e.work); depth != 0 {
		t.Fatalf("%d on the work queue: the runner sent a message already back", depth)
	}
}

// A cancel leaves a batch in flight to its runner; when that runner is
// gone, the batch goes back to the DLQ once its lease ran out (and as long
// again), with the job's counts made whole.
func TestReplay_CancelledBatchOfAStoppedRunnerIsGivenBack(t *testing.T) {
	e := newEnv(t)
	_, d := e.captured(t, amqp.Publishing{Body: []byte("a")}, amqp.Publishing{Body: []byte("b")})
	ref := "queue:" + e.dlqName
	job, _, err := e.store.StartReplay(t.Context(), e.tenant, d, dlq.ReplayRequest{Selection: dlq.Selection{Filter: &dlq.Filter{}}}, allowAll)
	if err != nil {
		t.Fatal(err)
	}
	// A runner elsewhere took both messages in one batch, then stopped.
	if _, err := e.db.Pool.Exec(t.Context(), `UPDATE dlq_replays SET runner = 'elsewhere', lease_until = now() + interval '1 second', sent_through = 2
		WHERE id = $1`, job.ID); err != nil {
		t.Fatal(err)
	}
	j, err := e.store.ControlReplay(t.Context(), e.tenant, ref, job.ID, "cancel")
	if err != nil {
		t.Fatal(err)
	}
	if j.Counts.Skipped != 0 {
		t.Fatalf("the batch in flight was given back at once: %+v", j.Counts)
	}
	if m := e.messages(t, dlq.Filter{Status: []string{dlq.Replaying}}); len(m) != 2 {
		t.Fatalf("%d replaying after the cancel, want the batch in flight", len(m))
	}
	r := &dlq.Runner{Store: e.store, Brokers: e.brokers, Every: 100 * time.Millisecond, Lease: 300 * time.Millisecond}
	r.Start()
	t.Cleanup(r.Close)
	waitFor(t, "the batch given back", func() (bool, error) {
		return len(e.messages(t, dlq.Filter{Status: []string{dlq.Dead}})) == 2, nil
	})
	j, err = e.store.GetReplay(t.Context(), e.tenant, ref, job.ID)
	if err != nil || j.State != dlq.Cancelled || j.Counts != (dlq.ReplayCounts{Total: 2, Skipped: 2}) {
		t.Fatalf("the job: %s %+v (%v)", j.State, j.Counts, err)
	}
	if depth := e.queueDepth(t, e.work); depth != 0 {
		t.Fatalf("%d on the work queue: a cancelled job was run", depth)
	}
}
