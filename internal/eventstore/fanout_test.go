package eventstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkContiguous fails unless got holds positions from, from+1, ... in
// order.
func checkContiguous(tb testing.TB, name string, got []Event, from int64) {
	tb.Helper()
	for i, e := range got {
		if e.Position != from+int64(i) {
			tb.Fatalf("%s: event %d at position %d, want %d (a gap, a duplicate or a reordering)", name, i, e.Position, from+int64(i))
		}
	}
}

func TestFanout_SubscribersAtTheHeadShareReads(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	const subs, appends = 40, 20
	all := make([]*Subscription, subs)
	for i := range all {
		sub, err := s.Subscribe(ctx, tenant, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		all[i] = sub
	}
	// Each subscription reads the empty log once, then follows the tail.
	waitFollowers(t, s, tenant, subs)
	before := s.logReads.Load()
	got := make([][]Event, subs)
	var wg sync.WaitGroup
	for i, sub := range all {
		wg.Go(func() { got[i] = receive(t, sub, appends, 20*time.Second) })
	}
	// The test's own reads of the log (waiting for each commit to be
	// positioned) are counted apart: on a loaded machine it reads more.
	own := int64(0)
	for i := 0; i < appends; i++ {
		mustAppend(t, s, tenant, fmt.Sprintf("order-%d", i%3), Any(), ev("E", i))
		for { // one commit at a time: one read each, shared
			own++
			all, err := s.ReadAll(ctx, tenant, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) > i {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Wait()
	for i := range got {
		checkContiguous(t, fmt.Sprintf("subscription %d", i), got[i], 1)
	}
	// Reads of their own by the subscriptions would add subs × appends
	// (800); shared, the tail reads once or twice a commit.
	if n := s.logReads.Load() - before - own; n > 2*appends+subs {
		t.Fatalf("%d log reads for %d commits and %d subscriptions at the head: the reads are not shared", n, appends, subs)
	}
}

// waitFollowers waits until n subscriptions follow tenant's tail.
func waitFollowers(tb testing.TB, s *Store, tenant [16]byte, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.fan.mu.Lock()
		got := 0
		if t := s.fan.tails[tenant]; t != nil {
			t.mu.Lock()
			got = len(t.followers)
			t.mu.Unlock()
		}
		s.fan.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d subscriptions follow the tail, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFanout_SlowSubscriberCatchesUpAlone(t *testing.T) {
	cfg := testConfig()
	cfg.SubscriptionBuffer = 2
	s, db := newStore(t, cfg)
	tenant := newTenant(t, db)
	ctx := context.Background()
	slow, err := s.Subscribe(ctx, tenant, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := s.Subscribe(ctx, tenant, 0, "order")
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	waitFollowers(t, s, tenant, 2)
	done := make(chan []Event)
	go func() { done <- receive(t, fast, 30, 20*time.Second) }()
	for i := 0; i < 30; i++ {
		mustAppend(t, s, tenant, "order-1", Any(), ev("O", i))
		mustAppend(t, s, tenant, "invoice-1", Any(), ev("I", i))
	}
	readAllN(t, s, tenant, 60)
	gotFast := <-done
	for i, e := range gotFast {
		if e.Type != "O" || e.Version != int64(i) {
			t.Fatalf("category subscription: event %d is %s version %d", i, e.Type, e.Version)
		}
	}
	// The slow one fell behind (its channel holds 2 of 60): the tail let
	// it go, and it reads on its own from where it stopped.
	gotSlow := receive(t, slow, 60, 20*time.Second)
	checkContiguous(t, "slow subscription", gotSlow, 1)
	// Caught up, it follows the tail again.
	waitFollowers(t, s, tenant, 2)
	mustAppend(t, s, tenant, "order-1", Any(), ev("O", 30))
	checkContiguous(t, "slow subscription", receive(t, slow, 1, 20*time.Second), 61)
	if e := receive(t, fast, 1, 20*time.Second)[0]; e.Position != 61 {
		t.Fatalf("category subscription got position %d, want 61", e.Position)
	}
}

// TestFanout_Property: writers append concurrently (singles and batches,
// several categories) while subscriptions start at random positions and
// consume at random speeds, falling behind and catching up. Each must see
// exactly the events of its category from its start, once, in log order.
func TestFanout_Property(t *testing.T) {
	cfg := testConfig()
	cfg.SubscriptionBuffer = 8
	s, db := newStore(t, cfg)
	tenant := newTenant(t, db)
	ctx := context.Background()
	const writers, perWriter = 4, 40
	cats := []string{"order", "invoice", "ship"}
	type spec struct {
		from     int64
		category string
		sub      *Subscription
		got      []Event
	}
	var specs []*spec
	var wg sync.WaitGroup
	start := func(from int64, category string, slow bool) {
		sub, err := s.Subscribe(ctx, tenant, from, category)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sub.Close)
		sp := &spec{from: from, category: category, sub: sub}
		specs = append(specs, sp)
		wg.Go(func() {
			for e := range sub.Events() {
				sp.got = append(sp.got, e)
				if slow && rand.IntN(4) == 0 {
					time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
				}
				if e.Type == "Last" {
					return
				}
			}
		})
	}
	for i := 0; i < 6; i++ {
		start(0, cats[i%3], i%2 == 0)
		start(0, "", i%2 == 1)
	}
	var wwg sync.WaitGroup
	var appended atomic.Int64
	for w := 0; w < writers; w++ {
		wwg.Go(func() {
			for i := 0; i < perWriter; i++ {
				stream := fmt.Sprintf("%s-%d", cats[(w+i)%3], w)
				n := 1 + rand.IntN(3)
				if i%10 == 0 {
					n = 20
				}
				if _, err := s.Append(ctx, tenant, stream, Any(), evs("E", i, n)); err != nil {
					t.Error(err)
					return
				}
				appended.Add(int64(n))
			}
		})
	}
	// More subscriptions join while the log grows, from the middle.
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < 4; i++ {
		start(int64(1+rand.IntN(20)), []string{"", "order"}[i%2], i < 2)
	}
	wwg.Wait()
	for _, c := range cats {
		mustAppend(t, s, tenant, c+"-last", Any(), EventData{Type: "Last", Data: []byte(`{}`)})
	}
	wg.Wait()
	full := readAllN(t, s, tenant, int(appended.Load())+len(cats))
	for i, sp := range specs {
		var want []Event
		for _, e := range full {
			if e.Position >= sp.from && (sp.category == "" || CategoryOf(e.Stream) == sp.category) {
				want = append(want, e)
			}
		}
		// A subscription stops at the first "Last" of its own.
		if n := firstType(want, "Last"); n >= 0 {
			want = want[:n+1]
		}
		if len(sp.got) != len(want) {
			t.Fatalf("subscription %d (from %d, category %q): %d events, want %d", i, sp.from, sp.category, len(sp.got), len(want))
		}
		for j := range want {
			if sp.got[j].Position != want[j].Position || sp.got[j].ID != want[j].ID {
				t.Fatalf("subscription %d (from %d, category %q): event %d at position %d, want %d",
					i, sp.from, sp.category, j, sp.got[j].Position, want[j].Position)
			}
		}
	}
}

func firstType(es []Event, typ string) int {
	for i, e := range es {
		if e.Type == typ {
			return i
		}
	}
	return -1
}

// SubscribeTo delivers converted values, from catch-up reads and from the
// shared tail alike, in position order; a conversion that fails ends the
// subscription with its error.
func TestSubscribeTo_ConvertsAndEndsOnAFailedConversion(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, tenant, "order-1", Any(), ev("E", 1))
	errBoom := fmt.Errorf("boom")
	sub, out, err := SubscribeTo(s, ctx, tenant, 0, "", func(e Event) (int64, error) {
		if e.Position == 3 {
			return 0, errBoom
		}
		return e.Position * 10, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if v := <-out; v != 10 {
		t.Fatalf("first value %d, want 10 (catch-up, converted)", v)
	}
	waitFollowers(t, s, tenant, 1)
	mustAppend(t, s, tenant, "order-1", Any(), ev("E", 2))
	if v := <-out; v != 20 {
		t.Fatalf("second value %d, want 20 (from the shared read, converted)", v)
	}
	mustAppend(t, s, tenant, "order-1", Any(), ev("E", 3))
	select {
	case v, ok := <-out:
		if ok {
			t.Fatalf("got %d after a failed conversion", v)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the subscription did not end after its conversion failed")
	}
	if sub.Err() != errBoom {
		t.Fatalf("Err() = %v, want the conversion's error", sub.Err())
	}
}
