package eventstore

import (
	"context"
	"testing"
	"time"

	"switchboard/internal/problem"
)

func TestSubscribe_CatchUpThenLive(t *testing.T) {
	cfg := testConfig()
	cfg.SubscriptionBuffer = 4 // pages of 4: catch-up takes several reads
	s, db := newStore(t, cfg)
	tenant := newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, tenant, "order-1", Any(), evs("Old", 0, 10)...)
	readAllN(t, s, tenant, 10)

	sub, err := s.Subscribe(ctx, tenant, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := receive(t, sub, 8, 5*time.Second) // positions 3..10
	for i := 0; i < 5; i++ {
		mustAppend(t, s, tenant, "order-2", Any(), ev("New", i))
	}
	got = append(got, receive(t, sub, 5, 5*time.Second)...)
	for i, e := range got {
		if e.Position != int64(i+3) {
			t.Fatalf("event %d at position %d, want %d", i, e.Position, i+3)
		}
	}
	if got[7].Type != "Old" || got[8].Type != "New" {
		t.Fatal("catch-up and live events out of order")
	}
}

func TestSubscribe_Category(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	sub, err := s.Subscribe(ctx, tenant, 0, "order")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	mustAppend(t, s, tenant, "invoice-1", Any(), evs("I", 0, 3)...)
	mustAppend(t, s, tenant, "order-1", Any(), evs("O", 0, 2)...)
	mustAppend(t, s, tenant, "invoice-2", Any(), evs("I", 0, 3)...)
	mustAppend(t, s, tenant, "order-2", Any(), evs("O", 0, 1)...)
	got := receive(t, sub, 3, 5*time.Second)
	want := []int64{4, 5, 9}
	for i, e := range got {
		if e.Position != want[i] || e.Type != "O" {
			t.Fatalf("event %d = %s at %d, want an order event at %d", i, e.Type, e.Position, want[i])
		}
	}
}

func TestSubscribe_SlowConsumerLosesNothing(t *testing.T) {
	cfg := testConfig()
	cfg.SubscriptionBuffer = 2
	s, db := newStore(t, cfg)
	tenant := newTenant(t, db)
	ctx := context.Background()
	sub, err := s.Subscribe(ctx, tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := 0; i < 20; i++ {
		mustAppend(t, s, tenant, "order-1", Any(), ev("E", i))
	}
	readAllN(t, s, tenant, 20)
	if n := len(sub.Events()); n > 2 {
		t.Fatalf("buffer holds %d events, want at most 2", n)
	}
	got := receive(t, sub, 20, 5*time.Second)
	for i, e := range got {
		if e.Version != int64(i) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
}

func TestSubscribe_Ends(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)

	ctx, cancel := context.WithCancel(context.Background())
	byCtx, err := s.Subscribe(ctx, tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	drain(t, byCtx)
	if byCtx.Err() != nil {
		t.Fatalf("ended by its context: Err = %v, want nil", byCtx.Err())
	}

	byClose, err := s.Subscribe(context.Background(), tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	byClose.Close()
	drain(t, byClose)
	if byClose.Err() != nil {
		t.Fatalf("ended by Close: Err = %v", byClose.Err())
	}

	byStore, err := s.Subscribe(context.Background(), tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	drain(t, byStore)
	if problem.Code(byStore.Err()) != problem.CodeUnavailable {
		t.Fatalf("ended by the store: Err = %v, want unavailable", byStore.Err())
	}
	if _, err := s.Subscribe(context.Background(), tenant, 0, ""); problem.Code(err) != problem.CodeUnavailable {
		t.Fatalf("subscribe after Close = %v", err)
	}
	if _, err := s.Subscribe(context.Background(), tenant, -1, ""); problem.Code(err) != problem.CodeInvalid {
		t.Fatalf("negative position = %v", err)
	}
}

func drain(t *testing.T, sub *Subscription) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-sub.Events():
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("subscription did not end")
		}
	}
}

func TestAwaitPosition(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mustAppend(t, s, tenant, "order-1", Any(), evs("E", 0, 2)...)
	res := mustAppend(t, s, tenant, "order-2", Any(), ev("E", 3))
	pos, err := s.AwaitPosition(ctx, tenant, res.EventIDs[0])
	if err != nil || pos != 3 {
		t.Fatalf("position = %d, %v; want 3", pos, err)
	}
	// Held behind an open transaction, the wait ends with its context.
	tx := holdAppend(t, s, db, tenant, "order-3", ev("Open", 0))
	defer tx.Rollback(context.Background()) //nolint:errcheck // cleanup
	res = mustAppend(t, s, tenant, "order-2", Any(), ev("E", 4))
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := s.AwaitPosition(short, tenant, res.EventIDs[0]); err == nil {
		t.Fatal("position assigned while an older transaction is open")
	}
}
