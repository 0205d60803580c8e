package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"switchboard/e2e/client"
	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/database"
	"switchboard/internal/database/dbtest"
	"switchboard/internal/mail/mailtest"
)

// benchNodes and benchEdges are the size of the graph the topology page is
// timed on: 2,000 services and 4,000 relations between them.
const (
	benchNodes = 2000
	benchEdges = 4000
)

// BenchmarkTopologyPage times the topology page of a tenant with 2,000
// nodes and 4,000 relations in headless Chromium, from navigation until
// the page reports the graph laid out and interactive
// (body[data-graph-ready] holds the node count). The catalog is written
// straight into the server's database with one catalog import.
func BenchmarkTopologyPage(b *testing.B) {
	if _, err := os.Stat(chromiumPath); err != nil {
		b.Fatalf("the benchmark needs Chromium at %s: %v", chromiumPath, err)
	}
	s := startServerTB(b)
	ctx := b.Context()
	api := signupAndLoginTB(b, ctx, s, "ada@example.com", "acme")
	me, err := api.Me(ctx)
	if err != nil {
		b.Fatalf("me: %v", err)
	}
	var tenant string
	for _, m := range me.Memberships {
		if m.Tenant.Slug == "acme" {
			tenant = m.Tenant.ID
		}
	}
	seedTopology(b, ctx, s.dbURL, tenant)
	tab := newTabTB(b)
	ready := chromedp.Poll[bool](`document.body.dataset.graphReady === '`+strconv.Itoa(benchNodes)+`'`, chromedp.WithPollingInterval(10*time.Millisecond))
	stepTB(b, tab, "log in", chromedp.Navigate(s.URL+"/t/acme/topology"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("topology-canvas")))
	waitTB(b, tab, "the first load", ready)

	var total time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		stepTB(b, tab, "navigate", chromedp.Navigate(s.URL+"/t/acme/topology"), chromedp.WaitVisible(chromedp.ID("topology-canvas")))
		waitTB(b, tab, "the graph laid out", ready)
		total += time.Since(start)
		n++
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms/load")
}

// startServerTB is startServer for a benchmark.
func startServerTB(b *testing.B) *server {
	b.Helper()
	dbURL := dbtest.NewURL(b)
	s, err := launch(dbURL, b.TempDir(), launchOptions{Mail: mailtest.New(b)})
	if err != nil {
		b.Fatalf("start server: %v", err)
	}
	b.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM) // a benchmark checks speed; the tests check shutdown
		<-s.exited
	})
	return s
}

// signupAndLoginTB is signupAndLogin for a benchmark.
func signupAndLoginTB(b *testing.B, ctx context.Context, s *server, email, slug string) *client.Client {
	b.Helper()
	c := client.New(s.URL)
	b.Cleanup(c.CloseIdleConnections)
	if _, err := c.Signup(ctx, client.SignupRequest{Email: email, Password: testPassword, Name: "ada", Tenant: &client.NewTenant{Slug: slug, Name: slug}}); err != nil {
		b.Fatalf("signup: %v", err)
	}
	m := s.Mail.WaitFor(b, email)
	token := ""
	for _, link := range m.Links() {
		if _, rest, ok := strings.Cut(link, "/verify-email?token="); ok && rest != "" {
			u, err := url.Parse(link)
			if err == nil {
				token = u.Query().Get("token")
			}
		}
	}
	if _, err := c.VerifyEmail(ctx, token); err != nil {
		b.Fatalf("confirm: %v", err)
	}
	if _, err := c.Login(ctx, email, testPassword); err != nil {
		b.Fatalf("login: %v", err)
	}
	return c
}

// newTabTB starts headless Chromium (with the flags of newBrowser) for a
// benchmark and returns its tab.
func newTabTB(b *testing.B) context.Context {
	b.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.UserDataDir(b.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		b.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

func stepTB(b *testing.B, tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.Helper()
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.Fatalf("%s: %v", what, err)
	}
}

func waitTB(b *testing.B, tab context.Context, what string, poll chromedp.Action[bool]) {
	b.Helper()
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, poll); err != nil {
		state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`(document.body.dataset.graphReady || 'not ready') + ': ' + ((document.querySelector('[data-topology-count]') || {}).textContent || '') + ' ' + ((document.querySelector('[data-topology-error]') || {}).textContent || '')`))
		b.Fatalf("wait for %s: %v (page: %s)", what, err, state)
	}
}

// seedTopology imports benchNodes services and benchEdges relations into
// tenant (a UUID) through the catalog store on the server's database.
func seedTopology(b *testing.B, ctx context.Context, dbURL, tenant string) {
	b.Helper()
	db, err := database.Open(ctx, dbURL)
	if err != nil {
		b.Fatalf("open the database: %v", err)
	}
	defer db.Close()
	id, err := uuid.Parse(tenant)
	if err != nil {
		b.Fatalf("tenant id %q: %v", tenant, err)
	}
	ents := make([]catalog.Entity, benchNodes)
	for i := range ents {
		ents[i] = catalog.Entity{Kind: catalog.KindService, Name: fmt.Sprintf("svc-%04d", i), Labels: map[string]string{"tier": strconv.Itoa(i % 5)}}
	}
	// A layered shape, as service graphs are: eight tiers of 250, each
	// node calling two of the next tier and some one tier further.
	const tiers = 8
	per := benchNodes / tiers
	rels := make([]catalog.Relation, 0, benchEdges)
	seen := map[[2]int]bool{}
	add := func(from, to int) {
		if len(rels) < benchEdges && from != to && !seen[[2]int{from, to}] {
			seen[[2]int{from, to}] = true
			rels = append(rels, catalog.Relation{From: fmt.Sprintf("service:svc-%04d", from), Type: catalog.Calls, To: fmt.Sprintf("service:svc-%04d", to)})
		}
	}
	for step := 1; len(rels) < benchEdges; step++ {
		for i := 0; i < benchNodes-per && len(rels) < benchEdges; i++ {
			tier := i / per
			skip := 1 + step/3%2 // mostly the next tier, then the one after
			if tier+skip >= tiers {
				skip = 1
			}
			add(i, (tier+skip)*per+(i*7+step*31)%per)
		}
	}
	allow := func(context.Context, access.Object) error { return nil }
	if _, err := catalog.New(db, nil).Import(ctx, id, "bench", ents, rels, allow); err != nil {
		b.Fatalf("import the catalog: %v", err)
	}
}
