package eventstore

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/problem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig makes standbys and safety-net polls quick.
func testConfig() Config {
	return Config{LeaderRetry: 50 * time.Millisecond, SubscriptionPoll: 200 * time.Millisecond}
}

// newStore gives the test its own database and a started Store on it.
func newStore(tb testing.TB, cfg Config) (*Store, *database.DB) {
	tb.Helper()
	db := dbtest.New(tb)
	return startStore(tb, db, cfg), db
}

func startStore(tb testing.TB, db *database.DB, cfg Config) *Store {
	tb.Helper()
	s, err := New(cfg, db, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func newTenant(tb testing.TB, db *database.DB) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	err := db.Pool.QueryRow(context.Background(), `INSERT INTO tenants (slug, name) VALUES ($1, 'Test') RETURNING id`,
		"t-"+uuid.NewString()[:8]).Scan(&id)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// ev returns an event with a fresh id and data {"n": n}.
func ev(typ string, n int) EventData {
	return EventData{ID: uuid.New(), Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

func evs(typ string, from, count int) []EventData {
	out := make([]EventData, count)
	for i := range out {
		out[i] = ev(typ, from+i)
	}
	return out
}

func mustAppend(tb testing.TB, s *Store, tenant uuid.UUID, stream string, exp ExpectedVersion, events ...EventData) AppendResult {
	tb.Helper()
	res, err := s.Append(context.Background(), tenant, stream, exp, events)
	if err != nil {
		tb.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func wantCode(tb testing.TB, err error, code string) *problem.Error {
	tb.Helper()
	if err == nil {
		tb.Fatalf("err = nil, want code %s", code)
	}
	p, ok := problem.As(err)
	if !ok || p.Code != code {
		tb.Fatalf("err = %v, want code %s", err, code)
	}
	return p
}

// readAllN polls the log until it holds at least n events and returns them.
func readAllN(tb testing.TB, s *Store, tenant uuid.UUID, n int) []Event {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := s.ReadAll(context.Background(), tenant, 0, 1000)
		if err != nil {
			tb.Fatal(err)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("log holds %d events after 20s, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receive takes n events from sub, failing after timeout.
func receive(tb testing.TB, sub *Subscription, n int, timeout time.Duration) []Event {
	tb.Helper()
	out := make([]Event, 0, n)
	t := time.NewTimer(timeout)
	defer t.Stop()
	for len(out) < n {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				tb.Fatalf("subscription ended after %d of %d events: %v", len(out), n, sub.Err())
			}
			out = append(out, e)
		case <-t.C:
			tb.Fatalf("received %d of %d events in %v", len(out), n, timeout)
		}
	}
	return out
}

func versions(events []Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}
