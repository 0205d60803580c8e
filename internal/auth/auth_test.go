package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
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

func TestLimiter_BurstThenWait(t *testing.T) {
	l := newLimiter(10*time.Second, 3)
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("k", now); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	ok, retry := l.allow("k", now)
	if ok || retry < 1 || retry > 10 {
		t.Fatalf("fourth attempt: ok=%v retry=%d, want refused with 1..10 s", ok, retry)
	}
	if ok, _ := l.allow("other", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.allow("k", now.Add(10*time.Second)); !ok {
		t.Fatal("no token back after the refill interval")
	}
}

func TestLimiter_ForgetsRefilledBuckets(t *testing.T) {
	l := newLimiter(time.Second, 2)
	now := time.Unix(1000, 0)
	for i := 0; i < 100; i++ {
		l.allow(uuid.NewString(), now)
	}
	l.allow("trigger", now.Add(2*time.Minute))
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets kept after they refilled, want 1", n)
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
