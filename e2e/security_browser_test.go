package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"switchboard/e2e/client"
)

// onNewDocument has the tab run src in every document it loads from now on,
// before the document's own scripts. Such a script is the browser's own
// instrumentation: the page's Content-Security-Policy does not apply to it.
func (b *browser) onNewDocument(t *testing.T, src string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
		b.fail(t, "add a script to every document: %v", err)
	}
}

// signIn opens path signed out, which shows the sign-in form, and signs in
// as email through it; ready waits for the page the sign-in leads to.
func (b *browser) signIn(t *testing.T, email, path string, ready chromedp.Action[chromedp.Void]) {
	t.Helper()
	b.do(t, "sign in as "+email+" on the way to "+path,
		chromedp.Navigate(b.base+path),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		ready,
	)
}

// settle evaluates expr until done accepts its value, within stepTimeout,
// and returns that value. Evaluation errors count as not yet: a navigation
// may be replacing the document. On timeout it fails with the last value.
func settle[T any](t *testing.T, b *browser, what, expr string, done func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var (
		last    T
		lastErr error
	)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		cancel()
		if err == nil && done(v) {
			return v
		}
		last, lastErr = v, err
		time.Sleep(100 * time.Millisecond)
	}
	b.fail(t, "%s: not within %s (last: %+v, %v)", what, stepTimeout, last, lastErr)
	return last
}

// currentEntry returns the URL of the tab's current history entry: the URL
// the browser went to, even when it could not load it. While a navigation
// swaps the page's process the tab cannot answer for a moment; it is asked
// again then, within stepTimeout.
func (b *browser) currentEntry(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		h, err := chromedp.Run(ctx, chromedp.NavigationEntries())
		cancel()
		if err == nil && h.CurrentIndex >= 0 && int(h.CurrentIndex) < len(h.Entries) {
			return h.Entries[h.CurrentIndex].URL
		}
		if time.Now().After(deadline) {
			b.fail(t, "read the history: %v (index %d of %d entries)", err, h.CurrentIndex, len(h.Entries))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The sign-in form's next parameter never sends the browser to another
// site, however the browser would read it; a path of this site is honoured.
func TestSecurity_SignInNeverRedirectsOffSite(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	// Two accounts share the sign-ins (each account may sign in ten times
	// in a row before the rate limit), none of them through the API.
	users := []string{"ada@example.com", "bob@example.com"}
	for i, email := range users {
		c := s.newClient(t)
		_, err := c.Signup(ctx, client.SignupRequest{Email: email, Password: testPassword, Name: strings.Split(email, "@")[0],
			Tenant: &client.NewTenant{Slug: []string{"acme", "globex"}[i], Name: []string{"Acme", "Globex"}[i]}})
		mustOK(t, "sign up "+email, err)
		_, err = c.VerifyEmail(ctx, verificationToken(t, s, email))
		mustOK(t, "confirm "+email, err)
	}

	// evil.test is a page the browser can load (there is no network here),
	// so a redirect there shows as that page, not as a failed lookup.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>evil</title><h1 id="evil">You left Switchboard</h1>`)
	}))
	t.Cleanup(evil.Close)
	b := newBrowser(t, s, chromedp.Flag("host-resolver-rules", "MAP evil.test "+strings.TrimPrefix(evil.URL, "http://")))
	own, err := url.Parse(s.URL)
	mustOK(t, "parse the server's URL", err)

	// land signs in through the form of /login?next=<next> and returns where
	// the browser ends: the URL of its history entry and of the document.
	type place struct {
		Href string `json:"href"`
		Host string `json:"host"`
	}
	land := func(t *testing.T, email, next string) (*url.URL, place) {
		t.Helper()
		b.do(t, "open the sign-in form with next="+jsString(next),
			chromedp.Navigate(s.URL+"/login?next="+url.QueryEscape(next)),
			chromedp.WaitVisible(chromedp.ID("login-form")),
		)
		held := value(t, b, "read the form's next", chromedp.Evaluate[string](
			`(document.querySelector('#login-form [name="next"]') || {value: '(no next field)'}).value`))
		t.Logf("next %q: the form holds %q", next, held)
		before := b.currentEntry(t)
		b.do(t, "sign in",
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		)
		// The sign-in is over when another history entry is current and its
		// document has loaded.
		deadline := time.Now().Add(stepTimeout)
		for {
			entry := b.currentEntry(t)
			if entry != before {
				at := settle(t, b, "the page after signing in to load",
					`document.readyState === 'complete' ? {href: location.href, host: location.host} : null`,
					func(p *place) bool { return p != nil })
				u, err := url.Parse(entry)
				if err != nil {
					b.fail(t, "the browser's history holds %q: %v", entry, err)
				}
				return u, *at
			}
			if time.Now().After(deadline) {
				b.fail(t, "signing in with next=%q led nowhere within %s", next, stepTimeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	for i, next := range []string{
		"/\t/evil.test/",
		"/\t\\evil.test/",
		"/\n/evil.test/",
		"/\r\n/evil.test/",
		"//evil.test",
		"/\\evil.test",
		"https://evil.test",
		"\t//evil.test/",
		"\\/evil.test/",
	} {
		email := users[i%len(users)]
		t.Run(fmt.Sprintf("next=%q", next), func(t *testing.T) {
			entry, at := land(t, email, next)
			if entry.Host != own.Host || at.Host != own.Host {
				b.screenshot(t, "left-the-site")
				t.Fatalf("signing in with next=%q sent the browser to %s (document %s, host %q), want a page of %s",
					next, entry, at.Href, at.Host, own.Host)
			}
			if entry.Path == "/login" {
				b.fail(t, "signing in with next=%q did not sign in: the browser is at %s", next, entry)
			}
		})
	}

	t.Run("a path of this site is honoured", func(t *testing.T) {
		entry, at := land(t, users[0], "/t/acme/streams")
		if entry.String() != s.URL+"/t/acme/streams" || at.Href != s.URL+"/t/acme/streams" {
			b.fail(t, "signing in with next=/t/acme/streams led to %s (document %s)", entry, at.Href)
		}
		b.do(t, "see the streams page", chromedp.WaitVisible(chromedp.CSS(`[data-testid="stream-tail"]`)))
		b.screenshot(t, "next-honoured")
	})
}

// cspViolation is what a securitypolicyviolation event says.
type cspViolation struct {
	Document  string `json:"documentURI"`
	Directive string `json:"effectiveDirective"`
	Blocked   string `json:"blockedURI"`
	Source    string `json:"sourceFile"`
	Line      int    `json:"lineNumber"`
	Sample    string `json:"sample"`
}

func (v cspViolation) String() string {
	return fmt.Sprintf("%s blocked %q on %s (%s:%d) %s", v.Directive, v.Blocked, v.Document, v.Source, v.Line, v.Sample)
}

// cspLog holds the violations the tab's documents reported.
type cspLog struct {
	mu   sync.Mutex // guards seen
	seen []cspViolation
}

func (l *cspLog) all() []cspViolation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]cspViolation(nil), l.seen...)
}

// recordCSPViolations has every document the tab loads from now on report
// each Content-Security-Policy violation to the test, from the first byte
// of the document on.
func recordCSPViolations(t *testing.T, b *browser) *cspLog {
	t.Helper()
	l := &cspLog{}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.ExposeFunc("__sbReportCSP", func(_ context.Context, v cspViolation) (chromedp.Void, error) {
		l.mu.Lock()
		l.seen = append(l.seen, v)
		l.mu.Unlock()
		return chromedp.Void{}, nil
	}))
	if err != nil {
		b.fail(t, "expose the violation reporter: %v", err)
	}
	b.onNewDocument(t, `document.addEventListener('securitypolicyviolation', function (e) {
		window.__sbReportCSP({documentURI: e.documentURI, effectiveDirective: e.effectiveDirective || e.violatedDirective,
			blockedURI: e.blockedURI, sourceFile: e.sourceFile, lineNumber: e.lineNumber, sample: e.sample});
	}, true);`)
	return l
}

// consoleMentions returns the console and log messages so far that
// contain text.
func (b *browser) consoleMentions(text string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if strings.Contains(m.Text, text) {
			out = append(out, m.String())
		}
	}
	return out
}

// liveState is the data-live of the element sel, or "" when it is not there.
func liveState(sel string) string {
	return `((document.querySelector(` + jsString(sel) + `) || {getAttribute: () => ''}).getAttribute('data-live') || '')`
}

// openPage opens path, checks it is answered 200, waits until it has loaded
// and until each of its live views (at least live of them) is connected:
// data-live "on" or "live".
func openPage(t *testing.T, b *browser, name, path string, live int) {
	t.Helper()
	res := value(t, b, "open the "+name, chromedp.NavigateResponse(b.base+path))
	if res == nil || res.Status != http.StatusOK {
		status := int64(0)
		if res != nil {
			status = res.Status
		}
		b.fail(t, "the %s (%s) answered %d, want 200", name, path, status)
	}
	b.waitFor(t, "the "+name+" to load", `document.readyState === 'complete'`)
	b.waitFor(t, fmt.Sprintf("the %s's live views (at least %d) to connect", name, live), fmt.Sprintf(`(() => {
		const els = [...document.querySelectorAll('[data-live]')];
		return els.length >= %d && els.every(e => /^(on|live)$/.test(e.getAttribute('data-live')));
	})()`, live))
}

// Every page a signed-in owner reaches loads under the Content-Security-
// Policy without a violation, and its live views connect; a script
// injected into a page is refused, and the refusal is reported.
func TestSecurity_PagesRunUnderTheContentSecurityPolicy(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	b := newBrowser(t, s)
	violations := recordCSPViolations(t, b)
	const email = "ada@example.com"

	// checked is how many violations were looked at already.
	checked := 0
	noViolation := func(t *testing.T, where string) {
		t.Helper()
		all := violations.all()
		for _, v := range all[checked:] {
			t.Errorf("%s: Content-Security-Policy violation: %s", where, v)
		}
		checked = len(all)
	}

	b.do(t, "open the sign-up page", chromedp.Navigate(s.URL+"/signup"), chromedp.WaitVisible(chromedp.ID("signup-form")))
	noViolation(t, "the sign-up page")
	b.do(t, "sign up",
		chromedp.SendKeys(chromedp.ID("name"), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.SendKeys(chromedp.ID("tenant_name"), "Acme Corp"),
		chromedp.SendKeys(chromedp.ID("tenant_slug"), "acme"),
		chromedp.Click(chromedp.CSS("#signup-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="check-mail"]`)),
	)
	noViolation(t, "the check-mail page")
	b.do(t, "follow the mailed link",
		chromedp.Navigate(verificationLink(t, s, email)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="verify-result"]`)),
	)
	noViolation(t, "the confirmation page")
	b.signIn(t, email, "/login", chromedp.WaitVisible(chromedp.ID("logout-form")))
	noViolation(t, "the sign-in page and the page it leads to")

	// Something to show, through the API.
	api := s.newClient(t)
	_, err := api.Login(ctx, email, testPassword)
	mustOK(t, "sign in to the API", err)
	_, err = api.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments"})
	mustOK(t, "create a team", err)
	_, err = api.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "ci", Role: client.RoleViewer})
	mustOK(t, "create a token", err)
	_, err = api.AddMember(ctx, "acme", client.AddMemberRequest{Email: "vic@example.com", Role: client.RoleViewer})
	mustOK(t, "invite a member", err)
	_, err = api.CreatePolicy(ctx, "acme", client.PolicyRule{Role: client.RoleViewer, Resource: "kv", Action: "read", Effect: "deny"})
	mustOK(t, "add a policy rule", err)
	_, err = api.AppendEvents(ctx, "acme", "order-1", client.AppendRequest{ExpectedVersion: client.ExpectNoStream,
		Events: []client.EventInput{{Type: "OrderPlaced", Data: json.RawMessage(`{"total":42}`)}}})
	mustOK(t, "append an event", err)
	_, err = api.AcquireLock(ctx, "acme", "orders-migrator", client.AcquireLockRequest{Owner: "pod-a", TTLMs: 120_000})
	mustOK(t, "take a lock", err)
	_, err = api.Campaign(ctx, "acme", "primary", client.CampaignRequest{Candidate: "pod-a", TTLMs: 120_000})
	mustOK(t, "campaign", err)

	// Every page: answered 200, loaded, and each live view on it connected
	// (live: how many the page has at least).
	for _, pg := range []struct {
		name, path string
		live       int
	}{
		{"overview", "/t/acme", 0},
		{"teams", "/t/acme/teams", 0},
		{"members", "/t/acme/members", 0},
		{"tokens", "/t/acme/tokens", 0},
		{"audit", "/t/acme/audit", 0},
		{"policies", "/t/acme/policies", 0},
		{"locks & elections", "/t/acme/coordination", 2},
		{"event streams", "/t/acme/streams", 1},
		{"a stream's", "/t/acme/streams/order-1", 1},
		{"subscriptions", "/t/acme/subscriptions", 0},
		{"key-value", "/t/acme/kv", 1},
		{"new organisation", "/tenants/new", 0},
		{"API docs", "/docs", 0},
		{"API reference", "/api/v1/docs", 0},
	} {
		openPage(t, b, pg.name+" page", pg.path, pg.live)
		noViolation(t, "the "+pg.name+" page")
	}

	// htmx swaps a fragment with its own live view into a page.
	openPage(t, b, "locks & elections page", "/t/acme/coordination", 2)
	b.waitFor(t, "the held lock", `document.querySelector('tr[data-lock="orders-migrator"]')`)
	b.do(t, "look an election up",
		chromedp.SendKeys(chromedp.ID("election"), "primary"),
		chromedp.Click(chromedp.CSS(`[data-testid="coordination-election-form"] button[type=submit]`)),
	)
	b.waitFor(t, "the looked-up election's live view to connect", liveState(`#election-result [data-live]`)+` === 'on'`)
	b.screenshot(t, "coordination-under-csp")
	noViolation(t, "the locks & elections page with an election looked up")

	// A live tail shows what is appended.
	openPage(t, b, "stream's page", "/t/acme/streams/order-1", 1)
	_, err = api.AppendEvents(ctx, "acme", "order-1", client.AppendRequest{ExpectedVersion: client.ExpectVersion(0),
		Events: []client.EventInput{{Type: "OrderShipped", Data: json.RawMessage(`{"carrier":"post"}`)}}})
	mustOK(t, "append a second event", err)
	b.waitFor(t, "the new event in the tail",
		`[...document.querySelectorAll('[data-testid="stream-tail"] [data-tail-body] tr')].some(tr => tr.textContent.includes('OrderShipped'))`)
	b.screenshot(t, "stream-under-csp")
	noViolation(t, "a stream's page with a new event")

	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}

	t.Run("an injected inline script is refused and reported", func(t *testing.T) {
		openPage(t, b, "locks & elections page", "/t/acme/coordination", 2)
		doc := b.location(t)
		noViolation(t, "the locks & elections page, opened again")
		before := checked
		// Three ways markup runs script when the policy allows it: a parsed
		// fragment's script, a script element, an inline event handler (on
		// an image of this site, which loads).
		value(t, b, "inject inline script", chromedp.Evaluate[bool](`(() => {
			document.body.appendChild(document.createRange().createContextualFragment('<script>window.__inline = 1<\/script>'));
			const s = document.createElement('script');
			s.textContent = 'window.__inlineElement = 1';
			document.body.appendChild(s);
			document.body.insertAdjacentHTML('beforeend',
				'<img id="sb-injected" alt="" src="/static/favicon.svg" onload="window.__inlineHandler = 1">');
			return true;
		})()`))
		b.waitFor(t, "the injected image to load", `document.getElementById('sb-injected').complete`)
		type ran struct {
			Fragment bool `json:"fragment"`
			Element  bool `json:"element"`
			Handler  bool `json:"handler"`
		}
		got := value(t, b, "see what ran", chromedp.Evaluate[ran](
			`({fragment: window.__inline === 1, element: window.__inlineElement === 1, handler: window.__inlineHandler === 1})`))
		if got.Fragment || got.Element || got.Handler {
			b.screenshot(t, "inline-script-ran")
			t.Errorf("injected inline script ran: %+v; the policy must refuse inline script", got)
		}

		// The refusals are reported to the page (securitypolicyviolation)
		// and in the console.
		deadline := time.Now().Add(stepTimeout)
		var elem, attr int
		for {
			elem, attr = 0, 0
			for _, v := range violations.all()[before:] {
				if v.Document != doc || v.Blocked != "inline" {
					continue
				}
				switch v.Directive {
				case "script-src-elem", "script-src":
					elem++
				case "script-src-attr":
					attr++
				}
			}
			if (elem >= 1 && attr >= 1) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if elem == 0 || attr == 0 {
			t.Errorf("reported violations after the injection: %d of script-src-elem, %d of script-src-attr; want both; all: %v",
				elem, attr, violations.all()[before:])
		}
		if len(b.consoleMentions("Content Security Policy")) == 0 {
			t.Errorf("the console shows no refusal by the Content Security Policy")
		}
		// Everything reported besides the injection is a defect of a page.
		for _, v := range violations.all()[before:] {
			if v.Document != doc || v.Blocked != "inline" || !strings.HasPrefix(v.Directive, "script-src") {
				t.Errorf("a violation that is not the injection's: %s", v)
			}
		}
		b.screenshot(t, "inline-refused")
	})
	// The injection's violations were checked above; any other fails.
	checked = len(violations.all())
}

// liveSocketsScript counts the WebSockets each document opens and keeps the
// code and reason of each one's close, in window.__sbWS.
const liveSocketsScript = `(function () {
	var W = window.WebSocket;
	var log = window.__sbWS = {opened: 0, closes: []};
	window.WebSocket = new Proxy(W, {construct: function (target, args) {
		var ws = Reflect.construct(target, args);
		log.opened++;
		ws.addEventListener('close', function (e) { log.closes.push({code: e.code, reason: e.reason}); });
		return ws;
	}});
})();`

// socketLog is window.__sbWS.
type socketLog struct {
	Opened int `json:"opened"`
	Closes []struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"closes"`
}

// watchLiveStates keeps every value each [data-live] element of the page
// takes from now on, in order, in window.__sbLive.
const watchLiveStates = `(() => {
	window.__sbLive = [];
	new MutationObserver(ms => ms.forEach(m => window.__sbLive.push(m.target.getAttribute('data-live'))))
		.observe(document.body, {attributes: true, attributeFilter: ['data-live'], subtree: true});
	return true;
})()`

// wantLiveClosed waits until every element of sels shows its stream closed
// with a reason, checks that the sockets closed with code, and that nothing
// reconnects afterwards.
func wantLiveClosed(t *testing.T, b *browser, code int, sels ...string) {
	t.Helper()
	for _, sel := range sels {
		b.waitFor(t, sel+" to show its stream closed", liveState(sel)+`.startsWith('closed: ')`)
		state := value(t, b, "read "+sel, chromedp.Evaluate[string](liveState(sel)))
		if strings.TrimSpace(strings.TrimPrefix(state, "closed: ")) == "" {
			b.fail(t, "%s shows %q: closed without a reason", sel, state)
		}
		t.Logf("%s: %q", sel, state)
	}
	closed := value(t, b, "read the sockets", chromedp.Evaluate[socketLog](`window.__sbWS`))
	n := 0
	for _, c := range closed.Closes {
		if c.Code == code {
			n++
		}
	}
	if n < len(sels) {
		b.fail(t, "the sockets closed with %+v, want %d of them with %d", closed.Closes, len(sels), code)
	}
	// The page gives up: a client that reconnected would retry within about
	// a second (live.js backs off from 1s), so a few seconds show it.
	time.Sleep(4 * time.Second)
	later := value(t, b, "read the sockets again", chromedp.Evaluate[socketLog](`window.__sbWS`))
	if later.Opened != closed.Opened {
		b.fail(t, "the page opened %d more socket(s) after its streams were closed", later.Opened-closed.Opened)
	}
	history := value(t, b, "read the states", chromedp.Evaluate[[]string](`window.__sbLive`))
	for _, sel := range sels {
		if s := value(t, b, "read "+sel, chromedp.Evaluate[string](liveState(sel))); !strings.HasPrefix(s, "closed: ") {
			b.fail(t, "%s went from closed to %q (states: %v)", sel, s, history)
		}
	}
	for _, s := range history {
		if s == "reconnecting" || s == "connecting" {
			b.fail(t, "a live view tried again after the server closed it (states: %v)", history)
		}
	}
}

// A viewer's page with live views open: once the owner removes the viewer
// from the organisation, each live view shows its stream closed with the
// reason and tries no more.
func TestSecurity_LiveViewsCloseWhenTheMemberIsRemoved(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	owner := signupAndLogin(t, t.Context(), s, "ada@example.com", "acme")
	_, vicID := joinAs(t, s, owner, "acme", "vic@example.com", client.RoleViewer)

	b := newBrowser(t, s)
	b.onNewDocument(t, liveSocketsScript)
	b.signIn(t, "vic@example.com", "/t/acme/coordination", chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-locks"]`)))
	sections := []string{`[data-testid="coordination-locks"]`, `[data-testid="coordination-elections"]`}
	for _, sel := range sections {
		b.waitFor(t, sel+" to go live", liveState(sel)+` === 'on'`)
	}
	value(t, b, "watch the live states", chromedp.Evaluate[bool](watchLiveStates))
	b.screenshot(t, "viewer-live")

	removeMember(t, s.URL, owner, "acme", vicID)
	wantLiveClosed(t, b, 4403, sections...)
	b.screenshot(t, "viewer-removed")
}

// A page with a live view: once its session ends (signed out in another
// tab), the live view shows its stream closed and tries no more.
func TestSecurity_LiveViewsCloseWhenTheSessionEnds(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	owner := signupAndLogin(t, t.Context(), s, "ada@example.com", "acme")
	joinAs(t, s, owner, "acme", "vic@example.com", client.RoleViewer)
	_, err := owner.AppendEvents(t.Context(), "acme", "order-1", client.AppendRequest{
		Events: []client.EventInput{{Type: "OrderPlaced", Data: json.RawMessage(`{"total":42}`)}}})
	mustOK(t, "append an event", err)

	b := newBrowser(t, s)
	b.onNewDocument(t, liveSocketsScript)
	b.signIn(t, "vic@example.com", "/t/acme/streams", chromedp.WaitVisible(chromedp.CSS(`[data-testid="stream-tail"]`)))
	tail := `[data-testid="stream-tail"]`
	b.waitFor(t, "the tail to go live", liveState(tail)+` === 'live'`)
	value(t, b, "watch the live states", chromedp.Evaluate[bool](watchLiveStates))

	// Another tab of the same browser shares the session, and signs out.
	other, cancel := chromedp.NewContext(b.ctx)
	defer cancel()
	stepCtx, stepCancel := context.WithTimeout(other, stepTimeout)
	err = chromedp.Do(stepCtx,
		chromedp.Navigate(s.URL+"/t/acme/teams"),
		chromedp.WaitVisible(chromedp.ID("logout-form")),
		chromedp.Click(chromedp.CSS("#logout-form button")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
	stepCancel()
	if err != nil {
		b.fail(t, "sign out in another tab: %v", err)
	}
	cancel()

	wantLiveClosed(t, b, 4401, tail)
	b.screenshot(t, "session-ended")
}

// pageShow is one pageshow event of a document: whether the document came
// back from the back/forward cache, and whether it showed the tenant's data
// (rendered, not merely present).
type pageShow struct {
	Href      string `json:"href"`
	Persisted bool   `json:"persisted"`
	Tenant    bool   `json:"tenant"`
}

// Back after signing out shows the sign-in page, not the tenant's page
// from the browser's caches: neither reloaded from the HTTP cache nor
// restored, even for a moment, from the back/forward cache.
func TestSecurity_BackAfterSignOutShowsSignIn(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	owner := signupAndLogin(t, t.Context(), s, "ada@example.com", "acme")
	_, err := owner.CreateTeam(t.Context(), "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments Core"})
	mustOK(t, "create a team", err)

	b := newBrowser(t, s)
	// Every document reports each time it is shown, before the page's own
	// handlers of that moment run.
	var (
		mu    sync.Mutex // guards shown
		shown []pageShow
	)
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	err = chromedp.Do(ctx, chromedp.ExposeFunc("__sbPageShown", func(_ context.Context, v pageShow) (chromedp.Void, error) {
		mu.Lock()
		shown = append(shown, v)
		mu.Unlock()
		return chromedp.Void{}, nil
	}))
	cancel()
	if err != nil {
		b.fail(t, "expose the page-show reporter: %v", err)
	}
	b.onNewDocument(t, `window.addEventListener('pageshow', function (e) {
		var row = document.getElementById('team-payments');
		window.__sbPageShown({href: location.href, persisted: e.persisted, tenant: !!row && row.getClientRects().length > 0});
	}, true);`)

	b.signIn(t, "ada@example.com", "/t/acme/teams", chromedp.WaitVisible(chromedp.ID("team-payments")))
	// A mark on the window shows whether Back brings this very page back.
	value(t, b, "mark the page", chromedp.Evaluate[bool](`window.__sbTenantPage = true`))
	b.do(t, "sign out",
		chromedp.Click(chromedp.CSS("#logout-form button")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
	signedOut := b.location(t)
	if u, err := url.Parse(signedOut); err != nil || u.Path != "/login" {
		b.fail(t, "after signing out the browser is at %s, want the sign-in page", signedOut)
	}
	mu.Lock()
	before := len(shown)
	mu.Unlock()

	// Whether the browser used its back/forward cache is the browser's
	// choice (it may not, under memory pressure say); the reasons it gives
	// for not using it are logged, to read a pass on a build that still
	// lets the page be restored.
	evCtx, stopEvents := context.WithCancel(b.ctx)
	notUsed := chromedp.Events(evCtx, page.BackForwardCacheNotUsed)
	var (
		reasonsMu sync.Mutex // guards reasons
		reasons   []string
		readers   sync.WaitGroup
	)
	readers.Go(func() {
		for ev, err := range notUsed {
			if err != nil {
				return
			}
			reasonsMu.Lock()
			for _, r := range ev.NotRestoredExplanations {
				reasons = append(reasons, fmt.Sprintf("%s (%s)", r.Reason, r.Type))
			}
			reasonsMu.Unlock()
		}
	})
	defer func() {
		stopEvents()
		readers.Wait()
		reasonsMu.Lock()
		defer reasonsMu.Unlock()
		if len(reasons) > 0 {
			t.Logf("the browser did not use its back/forward cache: %s", strings.Join(reasons, ", "))
		}
	}()

	value(t, b, "press Back", chromedp.Evaluate[bool](`history.back(), true`))
	type state struct {
		Href     string `json:"href"`
		Ready    string `json:"ready"`
		Login    bool   `json:"login"`
		Tenant   bool   `json:"tenant"`
		Restored bool   `json:"restored"`
	}
	// The page Back leads to has settled when it has loaded and stayed put
	// for a second (a page may go on by itself, a reload say).
	var (
		prev  string
		since time.Time
	)
	got := settle(t, b, "the page Back shows", `({href: location.href, ready: document.readyState,
		login: !!document.getElementById('login-form'), tenant: !!document.getElementById('team-payments'),
		restored: window.__sbTenantPage === true})`,
		func(v state) bool {
			if v.Href == signedOut || v.Ready != "complete" {
				prev = ""
				return false
			}
			if v.Href != prev {
				prev, since = v.Href, time.Now()
				return false
			}
			return time.Since(since) >= time.Second
		})

	mu.Lock()
	after := append([]pageShow(nil), shown[before:]...)
	mu.Unlock()
	for _, p := range after {
		if p.Tenant {
			b.screenshot(t, "back-showed-tenant")
			t.Errorf("Back after signing out showed the tenant's page %s (from the back/forward cache: %v); pages shown since: %+v",
				p.Href, p.Persisted, after)
			break
		}
	}
	if got.Tenant || got.Restored || !got.Login {
		b.screenshot(t, "back-shows-tenant")
		t.Fatalf("Back after signing out ends at %s (tenant data shown: %v, the same page restored: %v, sign-in form: %v); want the sign-in page",
			got.Href, got.Tenant, got.Restored, got.Login)
	}
	if u, err := url.Parse(got.Href); err != nil || u.Path != "/login" {
		b.fail(t, "Back after signing out ends at %s, want the sign-in page", got.Href)
	}
	b.screenshot(t, "back-shows-sign-in")
}
