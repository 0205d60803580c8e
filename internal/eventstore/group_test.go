package eventstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"switchboard/internal/problem"
)

// Appends that share a commit keep their own outcomes: successes, version
// mismatches, duplicates and tombstones side by side, repeated until some of
// them really ran as a group.
func TestAppend_GroupedAppendsKeepTheirOwnOutcomes(t *testing.T) {
	s, db := newStore(t, Config{AppendFlushers: 1, MaxGroupSize: 64, LeaderRetry: 50 * time.Millisecond})
	tenant := newTenant(t, db)
	ctx := context.Background()
	stored := evs("Stored", 0, 2)
	mustAppend(t, s, tenant, "dup-1", NoStream(), stored...)
	mustAppend(t, s, tenant, "old-1", NoStream(), evs("E", 0, 3)...)
	if err := s.TombstoneStream(ctx, tenant, "gone-1"); err != nil {
		t.Fatal(err)
	}

	for round := 0; round < 50 && s.groupFlushes.Load() < 3; round++ {
		type call struct {
			stream string
			exp    ExpectedVersion
			events []EventData
			want   string // "ok", "duplicate" or a problem code
		}
		var calls []call
		for i := 0; i < 6; i++ {
			exp := NoStream()
			if i == 0 {
				exp = Any() // another call appends to this stream too
			}
			calls = append(calls, call{fmt.Sprintf("new-%d-%d", round, i), exp, evs("E", 0, 2), "ok"})
		}
		calls = append(calls,
			call{"dup-1", Exact(0), stored, "duplicate"},
			call{"old-1", Exact(0), evs("E", 0, 1), problem.CodeConflict},
			call{"gone-1", Any(), evs("E", 0, 1), problem.CodeConflict},
			call{fmt.Sprintf("new-%d-0", round), Any(), evs("E", 0, 1), "ok"}, // same stream as a group mate
		)
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]string, len(calls))
		versions := make([]int64, len(calls))
		for i, c := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := s.Append(ctx, tenant, c.stream, c.exp, c.events)
				switch {
				case err != nil:
					results[i] = problem.Code(err)
				case res.Duplicate:
					results[i] = "duplicate"
				default:
					results[i] = "ok"
				}
				versions[i] = res.LastVersion
			}()
		}
		close(start)
		wg.Wait()
		for i, c := range calls {
			if results[i] != c.want {
				t.Fatalf("round %d: append to %s = %s, want %s", round, c.stream, results[i], c.want)
			}
		}
		if versions[6] != 1 {
			t.Fatalf("duplicate reported last version %d, want 1", versions[6])
		}
		got, err := s.ReadStream(ctx, tenant, fmt.Sprintf("new-%d-0", round), 0, Forward, 10)
		if err != nil || len(got) != 3 {
			t.Fatalf("new-%d-0 holds %d events (%v), want 3", round, len(got), err)
		}
	}
	if s.groupFlushes.Load() < 3 {
		t.Fatalf("only %d group commits happened; the group path went untested", s.groupFlushes.Load())
	}
	// Nothing was written twice and every stream is gapless.
	list, _, err := s.ListStreams(ctx, tenant, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range list {
		got, err := s.ReadStream(ctx, tenant, si.Name, 0, Forward, 1000)
		if err != nil || int64(len(got)) != si.Version+1 {
			t.Fatalf("%s: %d events, version %d (%v)", si.Name, len(got), si.Version, err)
		}
	}
}

// A grouped append whose stream another transaction holds is not stuck in
// its group, nor does it hold the group up: it runs alone, waits, and
// succeeds once the holder commits.
func TestAppend_GroupedAppendToABusyStreamRunsAlone(t *testing.T) {
	s, db := newStore(t, Config{AppendFlushers: 1, MaxGroupSize: 64, LeaderRetry: 50 * time.Millisecond})
	tenant := newTenant(t, db)
	ctx := context.Background()
	tx := holdAppend(t, s, db, tenant, "busy-1", ev("Held", 0))

	busy := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, tenant, "busy-1", Exact(0), []EventData{ev("After", 1)})
		busy <- err
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Append(ctx, tenant, fmt.Sprintf("free-%d", i), NoStream(), []EventData{ev("E", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-busy:
		t.Fatalf("append to the held stream returned %v before the holder committed", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-busy; err != nil {
		t.Fatalf("append to the formerly held stream: %v", err)
	}
}

func TestAppend_LockWaitIsBounded(t *testing.T) {
	s, db := newStore(t, Config{AppendLockWait: 100 * time.Millisecond, LeaderRetry: 50 * time.Millisecond})
	tenant := newTenant(t, db)
	tx := holdAppend(t, s, db, tenant, "busy-1", ev("Held", 0))
	defer tx.Rollback(context.Background()) //nolint:errcheck // cleanup
	start := time.Now()
	_, err := s.Append(context.Background(), tenant, "busy-1", Any(), []EventData{ev("E", 1)})
	p := wantCode(t, err, problem.CodeUnavailable)
	if p.RetryAfter < 1 || time.Since(start) > 3*time.Second {
		t.Fatalf("err %+v after %v", p, time.Since(start))
	}
}
