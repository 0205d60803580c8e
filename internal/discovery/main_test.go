package discovery_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"switchboard/internal/discovery"
	"switchboard/internal/problem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// unique returns a name no other test (or test run) uses.
func unique(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// eventually retries check until it passes or 20 s have gone by: the
// management API's statistics catch up with the broker on their own
// schedule. It is a wait, not a timing assertion.
func eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertBadGateway checks err is a CodeBadGateway problem that holds none
// of the secrets, and that it came back before the test's own generous
// deadline ran out (the discovery bound ended it, not the test).
func assertBadGateway(t testing.TB, ctx context.Context, err error, wantIn string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("discovery of an unreachable broker succeeded")
	}
	t.Logf("answer: %v", err)
	if ctx.Err() != nil {
		t.Fatalf("discovery outlived the test's deadline: %v", err)
	}
	p, ok := problem.As(err)
	if !ok || p.Code != problem.CodeBadGateway {
		t.Fatalf("err = %v, want a %s problem", err, problem.CodeBadGateway)
	}
	if !strings.Contains(p.Message, wantIn) {
		t.Errorf("message %q does not contain %q", p.Message, wantIn)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q holds a secret", err)
		}
		var wrapped interface{ Unwrap() error }
		if errors.As(err, &wrapped) && strings.Contains(wrapped.Unwrap().Error(), s) {
			t.Errorf("wrapped error holds a secret")
		}
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// assertDrift compares drift with want on every field but Message, which
// must be present.
func assertDrift(t testing.TB, got []discovery.Item, want []discovery.Item) {
	t.Helper()
	stripped := make([]discovery.Item, len(got))
	for i, it := range got {
		if it.Message == "" {
			t.Errorf("item %+v has no message", it)
		}
		it.Message = ""
		stripped[i] = it
	}
	if !slices.Equal(stripped, want) {
		t.Errorf("drift =\n%+v\nwant\n%+v", stripped, want)
	}
}
