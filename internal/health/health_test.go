package health_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"switchboard/internal/health"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheckNow(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer up.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer failing.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	c := health.New(health.Config{Timeout: 300 * time.Millisecond}, nil, nil)
	ctx := context.Background()
	cases := []struct {
		url, status, reason string
	}{
		{up.URL, "up", ""},
		{failing.URL + "/?token=s3cret", "down", "status 503"},
		{slow.URL, "down", "no answer within 300ms"},
		{"http://user:pw@127.0.0.1:1/", "down", "connection refused"},
	}
	for _, tc := range cases {
		r := c.CheckNow(ctx, health.Target{Service: "svc", URL: tc.url})
		if r.Status != tc.status || r.Error != tc.reason {
			t.Errorf("%s: %s %q, want %s %q", tc.url, r.Status, r.Error, tc.status, tc.reason)
		}
		if strings.Contains(r.Error, "s3cret") || strings.Contains(r.Error, "pw") {
			t.Errorf("the reason holds a secret: %q", r.Error)
		}
	}
}

// The checker checks each target on its interval, stops checking one that
// goes, and leaves no goroutine behind.
func TestChecker_FollowsItsTargets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	tenant := uuid.New()
	var mu sync.Mutex // guards targets and seen
	targets := []health.Target{{Tenant: tenant, Service: "a", URL: srv.URL, Interval: time.Second}, {Tenant: tenant, Service: "b", URL: srv.URL, Interval: time.Second}}
	seen := map[string]int{}
	c := health.New(health.Config{Reload: 50 * time.Millisecond},
		func(context.Context) ([]health.Target, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]health.Target(nil), targets...), nil
		},
		func(_ context.Context, r health.Result) error {
			mu.Lock()
			defer mu.Unlock()
			if r.Status != "up" {
				t.Errorf("%s: %s %s", r.Service, r.Status, r.Error)
			}
			seen[r.Service]++
			return nil
		})
	c.Start()
	defer c.Close()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("both services checked", func() bool { return seen["a"] > 0 && seen["b"] > 0 })
	mu.Lock()
	targets = targets[:1]
	mu.Unlock()
	time.Sleep(200 * time.Millisecond) // a reload or more
	mu.Lock()
	b := seen["b"]
	mu.Unlock()
	wait("a checked again", func() bool { return seen["a"] >= 3 })
	mu.Lock()
	defer mu.Unlock()
	if seen["b"] > b+1 {
		t.Fatalf("b was checked %d more times after it went", seen["b"]-b)
	}
}
