package egress_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"switchboard/internal/egress"
	"switchboard/internal/problem"
)

func guard(t *testing.T, deny ...string) *egress.Guard {
	t.Helper()
	g, err := egress.New(deny)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGuard_RefusesDeniedAddressesAfterResolution(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Nothing denied: the server is reached by name and by address.
	open := guard(t).HTTPClient(5 * time.Second)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		res, err := open.Get("http://" + net.JoinHostPort(host, port))
		if err != nil {
			t.Fatalf("%s with an empty list: %v", host, err)
		}
		res.Body.Close()
	}
	// Loopback denied: refused by address, by a name resolving to it, and
	// as an IPv4-mapped IPv6 address.
	deny := guard(t, "127.0.0.0/8", "::1").HTTPClient(5 * time.Second)
	for _, host := range []string{"127.0.0.1", "localhost", "[::ffff:127.0.0.1]"} {
		_, err := deny.Get("http://" + host + ":" + port)
		if err == nil {
			t.Fatalf("%s was reached through a deny-list holding it", host)
		}
	}
	_, err := guard(t, "127.0.0.1").DialContext(ctx, "tcp", net.JoinHostPort("localhost", port))
	if !egress.IsDenied(err) || problem.Code(err) != problem.CodeUnprocessable {
		t.Fatalf("dial localhost with 127.0.0.1 denied: %v", err)
	}
	// A redirect from an allowed server to a denied address is refused.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{}, 1)
	target := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached <- struct{}{}
	})}}
	target.Start()
	defer target.Close()
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/", http.StatusFound)
	}))
	defer allowed.Close()
	g := guard(t, "127.0.0.2/32")
	if _, err := g.HTTPClient(5 * time.Second).Get(allowed.URL); err == nil {
		t.Fatal("a redirect to a denied address was followed")
	}
	select {
	case <-reached:
		t.Fatal("the denied server was reached")
	default:
	}
	if res, err := guard(t).HTTPClient(5 * time.Second).Get(allowed.URL); err != nil {
		t.Fatalf("the same redirect with an empty list: %v", err)
	} else {
		res.Body.Close()
	}
}

func TestNew_RefusesBadEntries(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "10.0.0.0/8/1"} {
		if _, err := egress.New([]string{bad}); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
	if got := egress.ParseList(" 10.0.0.0/8, ,169.254.169.254 "); len(got) != 2 {
		t.Fatalf("ParseList: %q", got)
	}
}
