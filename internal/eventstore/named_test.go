package eventstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/problem"
)

func mustFetch(tb testing.TB, s *Store, tenant uuid.UUID, name, member string, limit int) Batch {
	tb.Helper()
	b, err := s.Fetch(context.Background(), tenant, name, member, limit)
	if err != nil {
		tb.Fatalf("fetch %s/%s: %v", name, member, err)
	}
	return b
}

func positions(events []Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

func TestNamedSubscription_CheckpointSurvives(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, tenant, "order-1", Any(), evs("O", 0, 3)...)
	mustAppend(t, s, tenant, "invoice-1", Any(), evs("I", 0, 2)...)
	mustAppend(t, s, tenant, "order-2", Any(), evs("O", 3, 2)...)
	readAllN(t, s, tenant, 7)

	sub, created, err := s.CreateSubscription(ctx, tenant, "billing", SubscriptionSpec{Category: "order"})
	if err != nil || !created || sub.Checkpoint != 0 || sub.MemberTTLMs != DefaultMemberTTL.Milliseconds() {
		t.Fatalf("create: %+v %v %v", sub, created, err)
	}
	first := mustFetch(t, s, tenant, "billing", "", 2)
	if len(first.Events) != 2 || first.Events[0].Stream != "order-1" || first.Through != first.Events[1].Position {
		t.Fatalf("first batch: %+v", first)
	}
	// Not acknowledged: the same batch comes again.
	if again := mustFetch(t, s, tenant, "billing", "", 2); !slices.Equal(positions(again.Events), positions(first.Events)) {
		t.Fatalf("unacknowledged batch %v, then %v", positions(first.Events), positions(again.Events))
	}
	if res, err := s.Ack(ctx, tenant, "billing", "", 0, first.Through); err != nil || res.Checkpoint != first.Through {
		t.Fatalf("ack: %+v %v", res, err)
	}
	rest := mustFetch(t, s, tenant, "billing", "", 100)
	if len(rest.Events) != 3 || rest.Events[0].Position <= first.Through {
		t.Fatalf("after the ack: %v (checkpoint %d)", positions(rest.Events), first.Through)
	}
	for _, e := range rest.Events {
		if CategoryOf(e.Stream) != "order" {
			t.Fatalf("event of another category: %+v", e)
		}
	}

	// Another Store on the same database (a restart, another replica)
	// sees the same checkpoint.
	s2 := startStore(t, db, testConfig())
	got, err := s2.GetSubscription(ctx, tenant, "billing")
	if err != nil || got.Checkpoint != first.Through {
		t.Fatalf("fresh store: %+v %v, want checkpoint %d", got, err, first.Through)
	}
	if b := mustFetch(t, s2, tenant, "billing", "", 100); !slices.Equal(positions(b.Events), positions(rest.Events)) {
		t.Fatalf("fresh store fetched %v, want %v", positions(b.Events), positions(rest.Events))
	}

	// Repeating the create is fine; other settings conflict.
	if _, created, err := s.CreateSubscription(ctx, tenant, "billing", SubscriptionSpec{Category: "order"}); err != nil || created {
		t.Fatalf("repeated create: %v %v", created, err)
	}
	_, _, err = s.CreateSubscription(ctx, tenant, "billing", SubscriptionSpec{Category: "invoice"})
	wantCode(t, err, problem.CodeConflict)

	list, next, err := s.ListSubscriptions(ctx, tenant, "", 10)
	if err != nil || len(list) != 1 || list[0].Name != "billing" || next != "" {
		t.Fatalf("list: %+v %q %v", list, next, err)
	}
	if err := s.DeleteSubscription(ctx, tenant, "billing"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetSubscription(ctx, tenant, "billing")
	wantCode(t, err, problem.CodeNotFound)
	wantCode(t, s.DeleteSubscription(ctx, tenant, "billing"), problem.CodeNotFound)
}

func TestNamedSubscription_AckNeverMovesBackOrPastTheEnd(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, tenant, "order-1", Any(), evs("O", 0, 5)...)
	readAllN(t, s, tenant, 5)
	if _, _, err := s.CreateSubscription(ctx, tenant, "all", SubscriptionSpec{FromPosition: 2}); err != nil {
		t.Fatal(err)
	}
	b := mustFetch(t, s, tenant, "all", "", 10)
	if !slices.Equal(positions(b.Events), []int64{2, 3, 4, 5}) {
		t.Fatalf("from position 2: %v", positions(b.Events))
	}
	if res, err := s.Ack(ctx, tenant, "all", "", 0, 4); err != nil || res.Checkpoint != 4 {
		t.Fatalf("ack 4: %+v %v", res, err)
	}
	if res, err := s.Ack(ctx, tenant, "all", "", 0, 2); err != nil || res.Checkpoint != 4 {
		t.Fatalf("ack 2 after 4: %+v %v, want checkpoint 4", res, err)
	}
	_, err := s.Ack(ctx, tenant, "all", "", 0, 6)
	wantCode(t, err, problem.CodeInvalid)
	_, err = s.Ack(ctx, tenant, "all", "", 0, -1)
	wantCode(t, err, problem.CodeInvalid)
	_, err = s.Ack(ctx, tenant, "nope", "", 0, 1)
	wantCode(t, err, problem.CodeNotFound)
	if got, _ := s.GetSubscription(ctx, tenant, "all"); got.Checkpoint != 4 {
		t.Fatalf("checkpoint %d, want 4", got.Checkpoint)
	}
	if b := mustFetch(t, s, tenant, "all", "", 10); !slices.Equal(positions(b.Events), []int64{5}) {
		t.Fatalf("after ack 4: %v", positions(b.Events))
	}

	for name, call := range map[string]func() error{
		"empty name": func() error { _, _, err := s.CreateSubscription(ctx, tenant, "", SubscriptionSpec{}); return err },
		"bad category": func() error {
			_, _, err := s.CreateSubscription(ctx, tenant, "x", SubscriptionSpec{Category: "a\x01"})
			return err
		},
		"negative from": func() error {
			_, _, err := s.CreateSubscription(ctx, tenant, "x", SubscriptionSpec{FromPosition: -1})
			return err
		},
		"tiny ttl": func() error {
			_, _, err := s.CreateSubscription(ctx, tenant, "x", SubscriptionSpec{MemberTTL: time.Millisecond})
			return err
		},
		"zero limit":  func() error { _, err := s.Fetch(ctx, tenant, "all", "", 0); return err },
		"bad member":  func() error { _, err := s.Fetch(ctx, tenant, "all", "m\x00", 10); return err },
		"long member": func() error { _, err := s.Join(ctx, tenant, "all", string(make([]byte, 300))); return err },
	} {
		if problem.Code(call()) != problem.CodeInvalid {
			t.Fatalf("%s: want invalid", name)
		}
	}
}

func TestNamedSubscription_TenantIsolation(t *testing.T) {
	s, db := newStore(t, testConfig())
	a, b := newTenant(t, db), newTenant(t, db)
	ctx := context.Background()
	mustAppend(t, s, a, "order-1", Any(), evs("A", 0, 3)...)
	mustAppend(t, s, b, "order-1", Any(), evs("B", 0, 2)...)
	readAllN(t, s, a, 3)
	readAllN(t, s, b, 2)
	if _, _, err := s.CreateSubscription(ctx, a, "sub", SubscriptionSpec{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetSubscription(ctx, b, "sub")
	wantCode(t, err, problem.CodeNotFound)
	_, err = s.Fetch(ctx, b, "sub", "", 10)
	wantCode(t, err, problem.CodeNotFound)
	_, err = s.Fetch(ctx, b, "sub", "m", 10)
	wantCode(t, err, problem.CodeNotFound)
	_, err = s.Ack(ctx, b, "sub", "", 0, 1)
	wantCode(t, err, problem.CodeNotFound)
	wantCode(t, s.DeleteSubscription(ctx, b, "sub"), problem.CodeNotFound)
	if list, _, err := s.ListSubscriptions(ctx, b, "", 10); err != nil || len(list) != 0 {
		t.Fatalf("b lists %+v %v", list, err)
	}
	// The same name in b is b's own subscription, over b's events only.
	if _, created, err := s.CreateSubscription(ctx, b, "sub", SubscriptionSpec{}); err != nil || !created {
		t.Fatalf("create in b: %v %v", created, err)
	}
	for tenant, want := range map[uuid.UUID]string{a: "A", b: "B"} {
		batch := mustFetch(t, s, tenant, "sub", "", 10)
		for _, e := range batch.Events {
			if e.Type != want {
				t.Fatalf("tenant %s fetched %+v", want, e)
			}
		}
	}
}

// groupDrain fetches and acknowledges for member until it gets an empty batch,
// and returns what it received.
func groupDrain(tb testing.TB, s *Store, tenant uuid.UUID, name, member string) []Event {
	tb.Helper()
	out, err := groupDrainE(s, tenant, name, member)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// groupDrainE is groupDrain for goroutines other than the test's.
func groupDrainE(s *Store, tenant uuid.UUID, name, member string) ([]Event, error) {
	var out []Event
	for {
		b, err := s.Fetch(context.Background(), tenant, name, member, 7)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", member, err)
		}
		out = append(out, b.Events...)
		if _, err := s.Ack(context.Background(), tenant, name, member, b.Generation, b.Through); err != nil {
			return nil, fmt.Errorf("ack %s: %w", member, err)
		}
		if len(b.Events) == 0 {
			return out, nil
		}
	}
}

func appendGroupLoad(tb testing.TB, s *Store, tenant uuid.UUID, streams, perStream, round int) int {
	tb.Helper()
	for i := range streams {
		mustAppend(tb, s, tenant, fmt.Sprintf("order-%d", i), Any(), evs(fmt.Sprintf("R%d", round), 0, perStream)...)
		mustAppend(tb, s, tenant, fmt.Sprintf("other-%d", i), Any(), evs("X", 0, 1)...)
	}
	return streams * (perStream + 1)
}

// checkSplit checks that got holds want exactly once, with each stream's
// events all with one member.
func checkSplit(tb testing.TB, got map[string][]Event, want []Event) map[string]string {
	tb.Helper()
	owner := map[string]string{}
	seen := map[int64]string{}
	for member, events := range got {
		for _, e := range events {
			if prev, ok := seen[e.Position]; ok {
				tb.Fatalf("position %d delivered to %s and %s", e.Position, prev, member)
			}
			seen[e.Position] = member
			if o, ok := owner[e.Stream]; ok && o != member {
				tb.Fatalf("stream %s delivered to %s and %s", e.Stream, o, member)
			}
			owner[e.Stream] = member
		}
	}
	for _, e := range want {
		if _, ok := seen[e.Position]; !ok {
			tb.Fatalf("event %d of %s delivered to nobody", e.Position, e.Stream)
		}
	}
	if len(seen) != len(want) {
		tb.Fatalf("%d events delivered, want %d", len(seen), len(want))
	}
	return owner
}

func categoryEvents(tb testing.TB, s *Store, tenant uuid.UUID, category string) []Event {
	tb.Helper()
	got, err := s.ReadCategory(context.Background(), tenant, category, 0, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

func TestConsumerGroup_EachStreamToExactlyOneMember(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	n := appendGroupLoad(t, s, tenant, 30, 3, 0)
	readAllN(t, s, tenant, n)
	if _, _, err := s.CreateSubscription(ctx, tenant, "group", SubscriptionSpec{Category: "order"}); err != nil {
		t.Fatal(err)
	}
	members := []string{"m-a", "m-b", "m-c"}
	for _, m := range members {
		if _, err := s.Join(ctx, tenant, "group", m); err != nil {
			t.Fatal(err)
		}
	}
	// Members drain concurrently.
	got := map[string][]Event{}
	var mu sync.Mutex // guards got
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			events, err := groupDrainE(s, tenant, "group", m)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got[m] = events
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	want := categoryEvents(t, s, tenant, "order")
	if len(want) != 90 {
		t.Fatalf("category holds %d events, want 90", len(want))
	}
	owner := checkSplit(t, got, want)
	for stream, m := range owner {
		if members[OwnerOf(stream, 3)] != m {
			t.Fatalf("stream %s went to %s, OwnerOf says %s", stream, m, members[OwnerOf(stream, 3)])
		}
	}
	for _, m := range members {
		if len(got[m]) == 0 {
			t.Fatalf("member %s got nothing: the split is not spread", m)
		}
	}
	// The group's floor is every member's checkpoint now.
	sub, err := s.GetSubscription(ctx, tenant, "group")
	if err != nil || len(sub.Members) != 3 || sub.Generation != 3 {
		t.Fatalf("group: %+v %v", sub, err)
	}
	// A single consumer cannot use a group's subscription.
	_, err = s.Fetch(ctx, tenant, "group", "", 10)
	wantCode(t, err, problem.CodeConflict)
	_, err = s.Ack(ctx, tenant, "group", "", 0, 1)
	wantCode(t, err, problem.CodeConflict)
}

func TestConsumerGroup_StoppedMemberIsTakenOver(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	ttl := 700 * time.Millisecond
	n := appendGroupLoad(t, s, tenant, 30, 2, 0)
	readAllN(t, s, tenant, n)
	if _, _, err := s.CreateSubscription(ctx, tenant, "group", SubscriptionSpec{Category: "order", MemberTTL: ttl}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if _, err := s.Join(ctx, tenant, "group", m); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"a", "b", "c"} {
		groupDrain(t, s, tenant, "group", m)
	}
	// c fetches a batch of new events and stops without acknowledging.
	before := len(categoryEvents(t, s, tenant, "order"))
	n += appendGroupLoad(t, s, tenant, 30, 2, 1)
	readAllN(t, s, tenant, n)
	lost := mustFetch(t, s, tenant, "group", "c", 1000)
	if len(lost.Events) == 0 {
		t.Fatal("c got no new events")
	}
	// a and b heartbeat until c has been silent for longer than the TTL.
	deadline := time.Now().Add(ttl + 500*time.Millisecond)
	for time.Now().Before(deadline) {
		for _, m := range []string{"a", "b"} {
			if _, err := s.Join(ctx, tenant, "group", m); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(ttl / 7)
	}
	a, err := s.Join(ctx, tenant, "group", "a")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Members, []string{"a", "b"}) {
		t.Fatalf("members after c stopped: %v", a.Members)
	}
	// c's ack of its old generation is refused.
	_, err = s.Ack(ctx, tenant, "group", "c", lost.Generation, lost.Through)
	wantCode(t, err, problem.CodeConflict)

	got := map[string][]Event{"a": groupDrain(t, s, tenant, "group", "a"), "b": groupDrain(t, s, tenant, "group", "b")}
	newEvents := categoryEvents(t, s, tenant, "order")[before:]
	owner := checkSplit(t, got, newEvents)
	for stream, m := range owner {
		if want := []string{"a", "b"}[OwnerOf(stream, 2)]; want != m {
			t.Fatalf("stream %s went to %s, want %s", stream, m, want)
		}
	}
	for _, e := range lost.Events {
		if owner[e.Stream] == "" {
			t.Fatalf("c's stream %s was not taken over", e.Stream)
		}
	}
}

// A member that falls behind and leaves: the streams it owned move to a
// member that is ahead, which must still get the events it never handled.
func TestConsumerGroup_RebalanceLosesNothing(t *testing.T) {
	s, db := newStore(t, testConfig())
	tenant := newTenant(t, db)
	ctx := context.Background()
	ttl := 500 * time.Millisecond
	n := appendGroupLoad(t, s, tenant, 20, 2, 0)
	readAllN(t, s, tenant, n)
	if _, _, err := s.CreateSubscription(ctx, tenant, "group", SubscriptionSpec{Category: "order", MemberTTL: ttl}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"fast", "slow"} {
		if _, err := s.Join(ctx, tenant, "group", m); err != nil {
			t.Fatal(err)
		}
	}
	groupDrain(t, s, tenant, "group", "fast") // slow handles nothing
	deadline := time.Now().Add(ttl + 300*time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := s.Join(ctx, tenant, "group", "fast"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ttl / 5)
	}
	got := groupDrain(t, s, tenant, "group", "fast")
	seen := map[int64]bool{}
	for _, e := range got {
		seen[e.Position] = true
	}
	for _, e := range categoryEvents(t, s, tenant, "order") {
		if OwnerOf(e.Stream, 2) == 1 && !seen[e.Position] { // slow's ("slow" sorts after "fast")
			t.Fatalf("event %d of slow's stream %s was lost in the rebalance", e.Position, e.Stream)
		}
	}
}
