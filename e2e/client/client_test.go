package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRedirects: a 307 is followed with its method, body and credential; a
// 302, which would turn the write into a GET, is refused.
func TestRedirects(t *testing.T) {
	var got []string
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"key":"k","value":1,"revision":7}`)
	}))
	defer leader.Close()
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusTemporaryRedirect
		if strings.Contains(r.URL.Path, "found") {
			code = http.StatusFound
		}
		http.Redirect(w, r, leader.URL+r.URL.Path, code)
	}))
	defer follower.Close()

	c := New(follower.URL).WithToken("secret")
	defer c.CloseIdleConnections()
	kv, err := c.PutKV(context.Background(), "acme", "k", 1, PutKVOptions{})
	if err != nil || kv.Revision != 7 {
		t.Fatalf("put through a 307: %+v, %v", kv, err)
	}
	if len(got) != 1 || got[0] != `PUT /api/v1/tenants/acme/kv/k Bearer secret {"value":1}` {
		t.Fatalf("the leader got %q", got)
	}

	got = nil
	if _, err := c.PutKV(context.Background(), "acme", "found", 1, PutKVOptions{}); err == nil || !strings.Contains(err.Error(), "only 307 and 308") {
		t.Fatalf("put through a 302: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("a 302 was followed: %q", got)
	}
}
