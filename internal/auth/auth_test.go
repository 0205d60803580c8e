package auth

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/database/dbtest"
)

func TestPassword_HashAndCheck(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("hash %q is not argon2id", h)
	}
	if !CheckPassword(h, "correct horse") {
		t.Fatal("the right password does not match")
	}
	for _, wrong := range []string{"", "correct hors", "correct horse ", "Correct horse"} {
		if CheckPassword(h, wrong) {
			t.Errorf("%q matches", wrong)
		}
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$x$y$z$w", strings.Replace(h, "v=19", "v=1", 1)} {
		if CheckPassword(bad, "correct horse") {
			t.Errorf("malformed hash %q matches", bad)
		}
	}
}

var testMAC = throttleMAC(make([]byte, 32))

func TestLimiter_BurstThenWait(t *testing.T) {
	ctx := t.Context()
	l := newLimiter(dbtest.New(t), testMAC, "email", 10*time.Second, 3)
	now := time.Unix(1000, 0)
	allow := func(key string, at time.Time) (bool, int) {
		t.Helper()
		ok, retry, err := l.allow(ctx, key, &at)
		if err != nil {
			t.Fatal(err)
		}
		return ok, retry
	}
	for i := 0; i < 3; i++ {
		if ok, _ := allow("k", now); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	if ok, retry := allow("k", now); ok || retry != 10 {
		t.Fatalf("fourth attempt: ok=%v retry=%d, want refused for 10 s", ok, retry)
	}
	if ok, retry := allow("k", now.Add(4*time.Second)); ok || retry != 6 {
		t.Fatalf("4 s later: ok=%v retry=%d, want refused for 6 s", ok, retry)
	}
	if ok, _ := allow("other", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := allow("k", now.Add(10*time.Second)); !ok {
		t.Fatal("no token back after the refill interval")
	}
	if ok, _ := allow("k", now.Add(10*time.Second)); ok {
		t.Fatal("two tokens back after one refill interval")
	}
	if ok, _ := allow("k", now.Add(time.Hour)); !ok {
		t.Fatal("the bucket did not refill")
	}
}

func TestAddrKey_IPv6ByPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"::ffff:203.0.113.7":   "::ffff:203.0.113.7",
		"not an address":       "not an address",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLimiter_DatabaseClock: with no time given, the database's clock
// decides, and the retry-after it gives is in whole seconds of that clock.
func TestLimiter_DatabaseClock(t *testing.T) {
	ctx := t.Context()
	l := newLimiter(dbtest.New(t), testMAC, "email", time.Hour, 1)
	if ok, _, err := l.allow(ctx, "k", nil); err != nil || !ok {
		t.Fatalf("first attempt: %v %v", ok, err)
	}
	ok, retry, err := l.allow(ctx, "k", nil)
	if err != nil || ok || retry < 3590 || retry > 3600 {
		t.Fatalf("second attempt: ok=%v retry=%d %v, want refused for about an hour", ok, retry, err)
	}
}

// TestLimiter_SharedByReplicas: limiters of two replicas on one database
// draw on the same buckets, also when attempts race; an address and an
// email with the same text are different keys.
func TestLimiter_SharedByReplicas(t *testing.T) {
	ctx := t.Context()
	db := dbtest.New(t)
	replicas := []*limiter{newLimiter(db, testMAC, "email", time.Minute, 5), newLimiter(db, testMAC, "email", time.Minute, 5)}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ok, _, err := replicas[i%2].allow(ctx, "ada@example.com", nil)
			if err != nil {
				t.Error(err)
			}
			if ok {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("%d of 20 racing attempts on two replicas allowed, want the burst of 5", n)
	}
	if ok, _, err := newLimiter(db, testMAC, "addr", time.Minute, 5).allow(ctx, "ada@example.com", nil); err != nil || !ok {
		t.Fatalf("an address key shares an email's bucket: %v %v", ok, err)
	}
}

func TestLimiter_SweepForgetsRefilledBuckets(t *testing.T) {
	ctx := t.Context()
	db := dbtest.New(t)
	l := newLimiter(db, testMAC, "addr", time.Second, 2)
	now := time.Unix(1000, 0)
	for i := 0; i < 10; i++ {
		if _, _, err := l.allow(ctx, uuid.NewString(), &now); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Minute)
	if _, _, err := l.allow(ctx, "recent", &later); err != nil {
		t.Fatal(err)
	}
	n, err := sweepLoginThrottle(ctx, db, &later)
	if err != nil || n != 10 {
		t.Fatalf("swept %d, %v: want the 10 refilled buckets", n, err)
	}
	var left int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM login_throttle`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("%d rows left, %v: want the recent one", left, err)
	}
}

func TestParseToken(t *testing.T) {
	id := uuid.New()
	good := "sb_" + strings.ReplaceAll(id.String(), "-", "") + "_" + strings.Repeat("A", 43)
	if got, secret, ok := parseToken(good); !ok || got != id || len(secret) != 32 {
		t.Fatalf("parse %q = %v %d %v", good, got, len(secret), ok)
	}
	for _, bad := range []string{"", "sb_", "sb_zz_yy", good[:len(good)-1], good + "A", strings.Replace(good, "sb_", "sk_", 1), "sb_" + strings.Repeat("g", 32) + "_" + strings.Repeat("A", 43)} {
		if _, _, ok := parseToken(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
