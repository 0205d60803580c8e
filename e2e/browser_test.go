package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"switchboard/e2e/client"
)

// chromiumPath is where Debian's chromium package puts the browser; .ci/run
// installs it on a fresh machine.
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds one browser step (a navigation, a form, a wait).
const stepTimeout = 20 * time.Second

// browser is one headless Chromium with one tab, driving one server.
type browser struct {
	ctx  context.Context // the tab; each step derives a timeout from it
	base string          // the server's URL
	name string          // prefix of the screenshot files: the test's name

	dialogs chan string    // messages of the JavaScript dialogs accepted
	wg      sync.WaitGroup // the goroutines that read the tab's events

	mu      sync.Mutex // guards shots and console
	shots   int
	console []chromedp.ConsoleMessage
}

// requireChromium fails the test, before anything is started, when Chromium
// is missing.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser tests need Chromium at %s and it is not there (%v): "+
			"install it with `apt-get update && apt-get install -y chromium` (.ci/run does)", chromiumPath, err)
	}
}

// newBrowser starts Chromium for the test and closes it when the test ends.
// A missing Chromium fails the test: these tests never skip. extra adds
// command-line options.
func newBrowser(t *testing.T, s *server, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	requireChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Without these Chromium keeps calling home on a machine with no
		// network, which slows every test down. Headless comes with the
		// defaults, and chromedp adds --no-sandbox itself when run as root.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
	)
	opts = append(opts, extra...)
	browserLog := &logBuffer{}
	opts = append(opts, chromedp.CombinedOutput(browserLog))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		fmt.Fprintf(browserLog, "chromedp: "+format+"\n", args...)
	}))
	b := &browser{ctx: ctx, base: s.URL, name: t.Name(), dialogs: make(chan string, 16)}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for Chromium to exit
		b.wg.Wait()
		if t.Failed() {
			t.Logf("browser output:\n%s", browserLog.tail())
		}
	})

	// Start Chromium; the first Do ties the browser's life to ctx, so it
	// gets no timeout of its own and is watched from here instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start Chromium: %v\n%s", err, browserLog.tail())
		}
	case <-time.After(60 * time.Second):
		cancelTab()
		t.Fatalf("Chromium did not start within 60s\n%s", browserLog.tail())
	}

	// Accept every JavaScript dialog (hx-confirm asks with confirm()): a
	// dialog blocks the page, and so the click that opened it, until it is
	// handled from another goroutine. The message is kept for the test.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	b.wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return // the tab is closing
			}
			select {
			case b.dialogs <- ev.Message:
			default:
			}
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				fmt.Fprintf(browserLog, "accept dialog %q: %v\n", ev.Message, err)
			}
		}
	})
	// Keep the console: a page that throws is a broken page.
	console := chromedp.Console(ctx)
	b.wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	})
	return b
}

// do runs the actions as one step within stepTimeout; on failure it saves a
// screenshot and stops the test.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(t, "%s: %v", what, err)
	}
}

// value runs one action that returns a value, as do does.
func value[T any](t *testing.T, b *browser, what string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		b.fail(t, "%s: %v", what, err)
	}
	return v
}

// fail saves a screenshot of the page as it is and stops the test.
func (b *browser) fail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
		msg += "\n(page: " + loc + ")"
	}
	if file, err := b.saveScreenshot(ctx, "FAILED"); err == nil {
		msg += "\n(screenshot: " + file + ")"
	}
	t.Fatal(msg)
}

// screenshot saves a full-page PNG into artifacts/, numbered in step order.
func (b *browser) screenshot(t *testing.T, label string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if _, err := b.saveScreenshot(ctx, label); err != nil {
		t.Fatalf("screenshot %s: %v", label, err)
	}
}

func (b *browser) saveScreenshot(ctx context.Context, label string) (string, error) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 is PNG; less is JPEG
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.shots++
	n := b.shots
	b.mu.Unlock()
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(b.name, "_")
	file := filepath.Join(artifactsDir, fmt.Sprintf("%s-%02d-%s.png", name, n, label))
	return file, os.WriteFile(file, png, 0o644)
}

func (b *browser) location(t *testing.T) string {
	t.Helper()
	return value(t, b, "read the location", chromedp.Location())
}

// flash returns the text of the page's flash message, or "".
func (b *browser) flash(t *testing.T) string {
	t.Helper()
	return value(t, b, "read the flash", chromedp.Evaluate[string](
		`(document.querySelector('#flash [data-testid="flash"]') || {textContent: ""}).textContent.trim()`))
}

// scriptErrors returns the uncaught exceptions and console errors the pages
// produced so far.
func (b *browser) scriptErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		// The server has no favicon, and Chromium logs the 404 of the
		// request it makes for one on every page; that is reported, not
		// failed on. Any other failed load, console.error or exception is.
		if strings.Contains(m.Text, "404") && strings.HasSuffix(m.URL, "/favicon.ico") {
			continue
		}
		if m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleError {
			out = append(out, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
		}
	}
	return out
}

// scriptErrorsBut is scriptErrors without the failed loads that answered
// one of the statuses (a refused form's page).
func (b *browser) scriptErrorsBut(statuses ...int) []string {
	var out []string
	for _, e := range b.scriptErrors() {
		expected := false
		for _, st := range statuses {
			if strings.Contains(e, fmt.Sprintf("status of %d ", st)) {
				expected = true
			}
		}
		if !expected {
			out = append(out, e)
		}
	}
	return out
}

// overflow measures horizontal overflow of the page: the document's width,
// the window's, and the elements that stick out past the window's right edge
// without a scrolling or clipping ancestor to contain them.
type overflow struct {
	ScrollWidth int      `json:"scrollWidth"`
	InnerWidth  int      `json:"innerWidth"`
	Culprits    []string `json:"culprits"`
}

const measureOverflow = `(() => {
	const vw = window.innerWidth;
	// The containing block: what an element is laid out in, and so which
	// ancestors' overflow can clip it. An absolutely positioned element
	// escapes every static ancestor, scroll containers included.
	const containingBlock = (el) => {
		const pos = getComputedStyle(el).position;
		if (pos === 'fixed') return null;
		let p = el.parentElement;
		if (pos === 'absolute') {
			while (p && p !== document.body && getComputedStyle(p).position === 'static') p = p.parentElement;
		}
		return p;
	};
	const contained = (el) => {
		for (let p = containingBlock(el); p && p !== document.body; p = containingBlock(p)) {
			if (getComputedStyle(p).overflowX !== 'visible') return true;
		}
		return false;
	};
	const culprits = [];
	for (const el of document.body.querySelectorAll('*')) {
		const r = el.getBoundingClientRect();
		if (r.width > 0 && r.right > vw + 1 && !contained(el)) {
			const id = el.id ? '#' + el.id : '';
			const cls = typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '';
			culprits.push(el.tagName.toLowerCase() + id + cls + ' (right edge ' + Math.round(r.right) + 'px)');
			if (culprits.length === 8) break;
		}
	}
	return {scrollWidth: document.documentElement.scrollWidth, innerWidth: vw, culprits};
})()`

// sessionCookie returns the browser's session cookie for the server.
func (b *browser) sessionCookie(t *testing.T) *network.Cookie {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base}})
	if err != nil {
		b.fail(t, "read the cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == "sb_session" {
			return c
		}
	}
	b.fail(t, "no sb_session cookie among %d cookies", len(res.Cookies))
	return nil
}

// formPoster posts forms as a script on another tab could: with the
// browser's session cookie, without following redirects.
type formPoster struct {
	base   string
	cookie *http.Cookie
	http   *http.Client
}

func newFormPoster(t *testing.T, base string, cookie *network.Cookie) *formPoster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &formPoster{
		base:   base,
		cookie: &http.Cookie{Name: cookie.Name, Value: cookie.Value},
		http: &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// do sends method path with the session cookie, the form (when not nil) and
// the extra headers; it returns the status, the Location and the body.
func (p *formPoster) do(t *testing.T, method, path string, form url.Values, header map[string]string) (int, string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, p.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req.AddCookie(p.cookie)
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func TestBrowser_SignupTeamTokenAuditLogout(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	b := newBrowser(t, s)
	api := s.newClient(t)
	ctx := t.Context()
	const (
		email  = "ada@example.com"
		slug   = "acme"
		tokenN = "ci-deploy"
	)
	teamsURL := s.URL + "/t/" + slug + "/teams"
	overviewURL := s.URL + "/t/" + slug

	run(t, "sign up", func(t *testing.T) {
		b.do(t, "open the sign-up page", chromedp.Navigate(s.URL+"/signup"), chromedp.WaitVisible(chromedp.ID("signup-form")))
		b.screenshot(t, "signup-form")
		b.do(t, "fill in and send the sign-up form",
			chromedp.SendKeys(chromedp.ID("name"), "Ada Lovelace"),
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.SendKeys(chromedp.ID("tenant_name"), "Acme Corp"),
			chromedp.SendKeys(chromedp.ID("tenant_slug"), slug),
			chromedp.Click(chromedp.CSS("#signup-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="check-mail"]`)),
		)
		b.screenshot(t, "check-mail")
		b.do(t, "sign in before confirming the address",
			chromedp.Navigate(s.URL+"/login"),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-health"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="verify-banner"]`)),
		)
		if loc := b.location(t); loc != overviewURL {
			b.fail(t, "after signing in the browser is at %s, want the overview %s", loc, overviewURL)
		}
		b.screenshot(t, "unconfirmed-banner")
		b.do(t, "follow the mailed link",
			chromedp.Navigate(verificationLink(t, s, email)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="verify-result"]`)),
			chromedp.Navigate(teamsURL),
			chromedp.WaitVisible(chromedp.ID("team-form")),
		)
		if banner := value(t, b, "look for the banner", chromedp.Evaluate[bool](`!!document.querySelector('[data-testid="verify-banner"]')`)); banner {
			b.fail(t, "the banner still asks to confirm a confirmed address")
		}
		if loc := b.location(t); loc != teamsURL {
			b.fail(t, "after sign-up the browser is at %s, want %s", loc, teamsURL)
		}
		if v := b.currentOrg(t); v != "acme" {
			b.fail(t, "the organisation switcher is on %q, want acme", v)
		}
		if name := value(t, b, "read the user name", chromedp.Text(chromedp.CSS(`[data-testid="user-name"]`))); name != "Ada Lovelace" {
			b.fail(t, "the top bar shows %q, want Ada Lovelace", name)
		}
		b.do(t, "see the empty state", chromedp.WaitVisible(chromedp.CSS(`[data-testid="empty-state"]`)))
		b.screenshot(t, "teams-empty")
	})

	run(t, "create a team", func(t *testing.T) {
		b.do(t, "fill in and send the team form",
			chromedp.SendKeys(chromedp.ID("name"), "Payments Core"),
			chromedp.SendKeys(chromedp.ID("slug"), "payments"),
			chromedp.Click(chromedp.CSS("#team-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.ID("team-payments")),
		)
		row := value(t, b, "read the team's row", chromedp.Text(chromedp.ID("team-payments")))
		if !strings.Contains(row, "Payments Core") || !strings.Contains(row, "payments") {
			b.fail(t, "the team's row reads %q", row)
		}
		if f := b.flash(t); f != "Team Payments Core created." {
			b.fail(t, "flash %q after creating the team", f)
		}
		b.screenshot(t, "team-created")
		// The message is shown once, and a link cannot make the app say
		// something of its own.
		b.do(t, "reload, then open a link carrying a message",
			chromedp.Reload(),
			chromedp.WaitVisible(chromedp.ID("team-payments")),
		)
		if f := b.flash(t); f != "" {
			b.fail(t, "flash %q after a reload", f)
		}
		b.do(t, "open a link carrying a message",
			chromedp.Navigate(s.URL+"/t/acme/teams?flash=Your+password+expired"),
			chromedp.WaitVisible(chromedp.ID("team-payments")),
		)
		if f := b.flash(t); f != "" {
			b.fail(t, "a link made the page show %q", f)
		}
	})

	var secret, tokenID string
	run(t, "create an API token", func(t *testing.T) {
		b.do(t, "open the API tokens page",
			chromedp.Click(chromedp.CSS(`nav a[data-section="tokens"]`)),
			chromedp.WaitVisible(chromedp.ID("token-form")),
		)
		expires := time.Now().UTC().AddDate(1, 0, 0).Format("2006-01-02")
		b.do(t, "fill in and send the token form",
			chromedp.SendKeys(chromedp.ID("name"), tokenN),
			chromedp.SetValue(chromedp.ID("role"), client.RoleEditor),
			chromedp.SetValue(chromedp.ID("expires_at"), expires),
			chromedp.Click(chromedp.CSS("#token-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="secret-value"]`)),
		)
		secret = value(t, b, "read the secret", chromedp.Text(chromedp.CSS(`[data-testid="secret-value"]`)))
		if !strings.HasPrefix(secret, "sb_") {
			b.fail(t, "the shown secret %q does not look like a token", secret)
		}
		tokenID = value(t, b, "find the token's row", chromedp.Evaluate[string](`(() => {
			const row = [...document.querySelectorAll('#tokens-table tbody tr')]
				.find(r => r.cells[0].textContent.trim() === `+jsString(tokenN)+`);
			return row ? row.id.replace(/^token-/, '') : '';
		})()`))
		if tokenID == "" {
			b.fail(t, "no row for the token %s", tokenN)
		}
		row := value(t, b, "read the token's row", chromedp.Attributes(chromedp.ID("token-"+tokenID)))
		text := value(t, b, "read the token's row", chromedp.Text(chromedp.ID("token-"+tokenID)))
		if row["data-state"] != "active" || !strings.Contains(text, client.RoleEditor) || !strings.Contains(text, expires) {
			b.fail(t, "the token's row (state %q) reads %q: want active, editor, expiring %s", row["data-state"], text, expires)
		}
		b.screenshot(t, "token-created")

		// The secret works against the API.
		teams, err := api.WithToken(secret).ListTeams(ctx, slug, client.ListOptions{})
		mustOK(t, "list teams with the secret shown in the page", err)
		if len(teams.Items) != 1 || teams.Items[0].Slug != "payments" {
			t.Fatalf("teams seen with the token: %+v", teams.Items)
		}

		// It is shown once: the same page opened again does not show it.
		b.do(t, "open the API tokens page again", chromedp.Navigate(s.URL+"/t/"+slug+"/tokens"), chromedp.WaitVisible(chromedp.ID("tokens-table")))
		if shown := value(t, b, "look for the secret", chromedp.Evaluate[bool](`document.body.innerHTML.includes(`+jsString(secret)+`)`)); shown {
			b.fail(t, "the token's secret is shown again after a reload")
		}
	})

	run(t, "revoke the token from the page", func(t *testing.T) {
		b.do(t, "revoke and wait for the row to say so",
			chromedp.Click(chromedp.CSS("#token-"+tokenID+" button")),
			chromedp.WaitVisible(chromedp.CSS("#token-"+tokenID+`[data-state="revoked"]`)),
		)
		select {
		case msg := <-b.dialogs:
			if !strings.Contains(msg, "Revoke token "+tokenN) {
				t.Errorf("the confirmation asked %q", msg)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("no confirmation dialog was shown before revoking")
		}
		if f := b.flash(t); f != "Token "+tokenN+" revoked." {
			b.fail(t, "flash %q after revoking", f)
		}
		buttons := value(t, b, "count the row's buttons", chromedp.Evaluate[int](
			`document.querySelectorAll('#token-`+tokenID+` button').length`))
		if buttons != 0 {
			b.fail(t, "the revoked token's row still has %d button(s)", buttons)
		}
		b.screenshot(t, "token-revoked")

		_, err := api.WithToken(secret).ListTeams(ctx, slug, client.ListOptions{})
		wantProblem(t, err, 401, "unauthenticated")
	})

	run(t, "the audit log shows the changes", func(t *testing.T) {
		b.do(t, "open the audit log",
			chromedp.Click(chromedp.CSS(`nav a[data-section="audit"]`)),
			chromedp.WaitVisible(chromedp.ID("audit-table")),
		)
		type auditRow struct {
			Who    string `json:"who"`
			What   string `json:"what"`
			Object string `json:"object"`
			From   string `json:"from"`
		}
		rows := value(t, b, "read the audit table", chromedp.Evaluate[[]auditRow](`
			[...document.querySelectorAll('#audit-table tbody tr')].map(r => ({
				who: r.cells[1].textContent.trim(), what: r.cells[2].textContent.trim(),
				object: r.cells[3].textContent.trim(), from: r.cells[4].textContent.trim()}))`))
		for _, want := range []struct{ action, object string }{
			{"team.created", "payments"},
			{"token.created", tokenID},
			{"token.revoked", tokenID},
		} {
			i := slices.IndexFunc(rows, func(r auditRow) bool { return r.What == want.action && strings.Contains(r.Object, want.object) })
			if i < 0 {
				b.fail(t, "the audit log has no %s of %s: %+v", want.action, want.object, rows)
			}
			if rows[i].Who != email || rows[i].From != "127.0.0.1" {
				t.Errorf("the %s entry shows %q from %q, want %s from 127.0.0.1", want.action, rows[i].Who, rows[i].From, email)
			}
		}
		b.screenshot(t, "audit-log")
	})

	run(t, "a form post without the CSRF token is refused", func(t *testing.T) {
		ck := b.sessionCookie(t)
		if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteLax {
			t.Errorf("session cookie: HttpOnly %v, SameSite %q; want HttpOnly and Lax", ck.HTTPOnly, ck.SameSite)
		}
		token := value(t, b, "read the page's CSRF token", chromedp.Evaluate[string](
			`document.querySelector('meta[name="csrf-token"]').content`))
		p := newFormPoster(t, s.URL, ck)
		path := "/t/" + slug + "/teams"

		status, _, body := p.do(t, http.MethodPost, path, url.Values{"name": {"No Token"}, "slug": {"no-token"}}, nil)
		if status != http.StatusForbidden || !strings.Contains(body, "security token") {
			t.Errorf("POST without _csrf: %d, want 403 saying the security token is missing", status)
		}
		status, _, _ = p.do(t, http.MethodPost, path, url.Values{"name": {"Wrong"}, "slug": {"wrong-token"}, "_csrf": {"forged"}}, nil)
		if status != http.StatusForbidden {
			t.Errorf("POST with a forged _csrf: %d, want 403", status)
		}
		status, _, _ = p.do(t, http.MethodPost, path, url.Values{"name": {"Elsewhere"}, "slug": {"elsewhere"}, "_csrf": {token}},
			map[string]string{"Origin": "http://evil.example"})
		if status != http.StatusForbidden {
			t.Errorf("POST from another origin: %d, want 403", status)
		}
		// The same request with the token is accepted, so the refusals above
		// were for the token and nothing else.
		status, loc, _ := p.do(t, http.MethodPost, path, url.Values{"name": {"With Token"}, "slug": {"with-token"}, "_csrf": {token}}, nil)
		if status != http.StatusSeeOther || !strings.HasPrefix(loc, path) {
			t.Errorf("POST with the token: %d to %q, want 303 to %s", status, loc, path)
		}
		_, err := api.Login(ctx, email, testPassword)
		mustOK(t, "log in to the API", err)
		teams, err := api.ListTeams(ctx, slug, client.ListOptions{})
		mustOK(t, "list teams", err)
		var slugs []string
		for _, tm := range teams.Items {
			slugs = append(slugs, tm.Slug)
		}
		slices.Sort(slugs)
		if !slices.Equal(slugs, []string{"payments", "with-token"}) {
			t.Errorf("teams after the posts: %v, want payments and with-token", slugs)
		}
	})

	run(t, "log out", func(t *testing.T) {
		old := b.sessionCookie(t)
		b.do(t, "open the teams page, then log out",
			chromedp.Navigate(teamsURL),
			chromedp.WaitVisible(chromedp.ID("teams-table")),
			chromedp.Click(chromedp.CSS("#logout-form button")),
			chromedp.WaitVisible(chromedp.ID("login-form")),
		)
		if loc := b.location(t); !strings.HasPrefix(loc, s.URL+"/login") {
			b.fail(t, "after logging out the browser is at %s, want the login page", loc)
		}
		b.screenshot(t, "logged-out")
		// Back shows no page of the organisation: not from the browser's
		// cache, not from htmx's copy.
		b.do(t, "go back", chromedp.NavigateBack(), chromedp.WaitVisible(chromedp.ID("login-form")))
		if shown := value(t, b, "look for the teams", chromedp.Evaluate[bool](
			`!!document.getElementById('teams-table') || document.body.textContent.includes('Payments Core')`)); shown {
			b.fail(t, "back after logging out shows the organisation's teams")
		}
		if stored := value(t, b, "look for htmx's copies of pages", chromedp.Evaluate[string](
			`localStorage.getItem('htmx-history-cache') || ''`)); strings.Contains(stored, "Payments") {
			b.fail(t, "htmx keeps a copy of a signed-in page in local storage")
		}
		// The session ended on the server too: its cookie opens nothing.
		status, loc, _ := newFormPoster(t, s.URL, old).do(t, http.MethodGet, "/t/"+slug+"/teams", nil, nil)
		if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
			t.Errorf("the old session cookie after logging out: %d to %q, want 303 to /login", status, loc)
		}
		b.do(t, "open a page signed out",
			chromedp.Navigate(teamsURL),
			chromedp.WaitVisible(chromedp.ID("login-form")),
		)
	})

	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

func TestBrowser_NarrowWindowHasNoHorizontalOverflow(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	for _, tm := range []client.CreateTeamRequest{
		{Slug: "payments", Name: "Payments Core"},
		{Slug: "customer-notifications-and-messaging", Name: "Customer Notifications and Messaging Platform Engineering"},
	} {
		_, err := api.CreateTeam(ctx, "acme", tm)
		mustOK(t, "create team "+tm.Slug, err)
	}
	_, err := api.CreateToken(ctx, "acme", client.CreateTokenRequest{Name: "ci-deploy", Role: client.RoleEditor})
	mustOK(t, "create token", err)

	b := newBrowser(t, s)
	check := func(t *testing.T, what string) {
		t.Helper()
		o := value(t, b, "measure "+what, chromedp.Evaluate[overflow](measureOverflow))
		if o.ScrollWidth > o.InnerWidth {
			t.Errorf("%s overflows a %dpx window: the document is %dpx wide; sticking out: %v",
				what, o.InnerWidth, o.ScrollWidth, o.Culprits)
		}
	}

	// A signed-out visit to the teams page goes through the login form and
	// comes back to the teams page.
	b.do(t, "open the teams page in a 400x800 window",
		chromedp.EmulateViewport(400, 800),
		chromedp.Navigate(s.URL+"/t/acme/teams"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
	check(t, "the login page")
	b.screenshot(t, "narrow-login")
	b.do(t, "log in",
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("teams-table")),
	)
	if loc := b.location(t); loc != s.URL+"/t/acme/teams" {
		b.fail(t, "after logging in the browser is at %s, want the teams page", loc)
	}
	check(t, "the teams page")
	b.screenshot(t, "narrow-teams")

	for _, section := range []string{"", "streams", "subscriptions", "kv", "members", "tokens", "audit", "policies", "coordination", "../../docs"} {
		b.do(t, "open "+section,
			chromedp.Navigate(s.URL+"/t/acme/"+section),
			chromedp.WaitVisible(chromedp.ID("main")),
		)
		name := strings.Trim(strings.ReplaceAll(section, "../", ""), "/")
		if name == "" {
			name = "overview"
		}
		check(t, "the "+name+" page")
		b.screenshot(t, "narrow-"+name)
	}
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// currentOrg returns the slug of the organisation the switcher shows.
func (b *browser) currentOrg(t *testing.T) string {
	t.Helper()
	return value(t, b, "read the organisation switcher", chromedp.Evaluate[string](
		`(document.querySelector('[data-testid="current-org"]') || {dataset: {}}).dataset.slug || ''`))
}

// login signs in through the form of the login page, on the way to path,
// and waits for the element ready on the page it lands on.
func (b *browser) login(t *testing.T, s *server, email, path string, ready chromedp.Action[chromedp.Void]) {
	t.Helper()
	b.do(t, "log in as "+email+" on the way to "+path,
		chromedp.Navigate(s.URL+path),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		ready,
	)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

// TestBrowser_ConsoleAsANewUser walks the console as someone new to it
// would: the overview they land on, a second organisation (after a refused form that must survive a reload),
// the switcher that keeps the page, an event appended from the UI (and a
// stale append refused), a key written, a stale edit and a stale delete
// refused, a lock forced free, invitations told apart from members, the
// audit log filtered, and a policy rule explained and tried.
func TestBrowser_ConsoleAsANewUser(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	b := newBrowser(t, s)
	b.login(t, s, "ada@example.com", "/", chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-health"]`)))

	run(t, "the overview says what to do first", func(t *testing.T) {
		if loc := b.location(t); loc != s.URL+"/t/acme" {
			b.fail(t, "after signing in the browser is at %s, want the overview /t/acme", loc)
		}
		steps := value(t, b, "read the next steps", chromedp.Text(chromedp.CSS(`[data-testid="next-steps"]`)))
		for _, want := range []string{"Create a team", "Invite the people you work with", "Create an API token", "Append the first event", "Read the API docs"} {
			if !strings.Contains(steps, want) {
				b.fail(t, "the next steps lack %q: %q", want, steps)
			}
		}
		if n := value(t, b, "read the member count", chromedp.Text(chromedp.CSS(`[data-stat="members"] .stat-value`))); n != "1" {
			b.fail(t, "the overview counts %q members, want 1", n)
		}
		// ada is one of the platform's operators: she sees the Raft group.
		b.do(t, "see the Raft group's health", chromedp.WaitVisible(chromedp.CSS(`[data-testid="raft-health"]`)))
		b.screenshot(t, "overview-new")
	})

	run(t, "a refused new-organisation form survives a reload", func(t *testing.T) {
		b.do(t, "send the form with a bad slug",
			chromedp.Navigate(s.URL+"/tenants/new"),
			chromedp.WaitVisible(chromedp.ID("tenant-form")),
			chromedp.SendKeys(chromedp.ID("name"), "Globex"),
			chromedp.SendKeys(chromedp.ID("slug"), "Not A Slug"),
			chromedp.Click(chromedp.CSS("#tenant-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.ID("slug-error")),
		)
		if loc := b.location(t); loc != s.URL+"/tenants/new" {
			b.fail(t, "after a refused form the browser is at %s, want /tenants/new", loc)
		}
		b.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("tenant-form")))
		b.do(t, "send the form with a good slug",
			chromedp.SetValue(chromedp.ID("name"), "Globex"),
			chromedp.SetValue(chromedp.ID("slug"), "globex"),
			chromedp.Click(chromedp.CSS("#tenant-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-health"]`)),
		)
		if loc := b.location(t); loc != s.URL+"/t/globex" {
			b.fail(t, "the new organisation opens at %s, want its overview", loc)
		}
	})

	run(t, "the switcher keeps the section and moves only on a link", func(t *testing.T) {
		b.do(t, "open the key-value page of acme",
			chromedp.Navigate(s.URL+"/t/acme/kv"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="kv-keys"]`)),
			chromedp.Focus(chromedp.CSS("#tenant-switcher > summary")),
			chromedp.KeyEvent(kb.ArrowDown),
			chromedp.KeyEvent(kb.ArrowDown),
		)
		if loc := b.location(t); loc != s.URL+"/t/acme/kv" {
			b.fail(t, "arrow keys on the switcher went to %s", loc)
		}
		b.do(t, "open the switcher with the keyboard",
			chromedp.KeyEvent("\r"),
			chromedp.WaitVisible(chromedp.CSS(`.org-menu a[data-slug="globex"]`)),
		)
		b.screenshot(t, "switcher-open")
		b.do(t, "close it with Escape", chromedp.KeyEvent(kb.Escape))
		b.waitFor(t, "the switcher to close", `!document.getElementById('tenant-switcher').open`)
		b.do(t, "switch to globex",
			chromedp.Click(chromedp.CSS("#tenant-switcher > summary")),
			chromedp.Click(chromedp.CSS(`.org-menu a[data-slug="globex"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="kv-keys"]`)),
		)
		if loc := b.location(t); loc != s.URL+"/t/globex/kv" {
			b.fail(t, "the switcher went to %s, want the same page in globex", loc)
		}
		if org := b.currentOrg(t); org != "globex" {
			b.fail(t, "the switcher shows %q after switching", org)
		}
	})

	run(t, "append an event from the streams page", func(t *testing.T) {
		b.do(t, "fill in the append form",
			chromedp.Navigate(s.URL+"/t/acme/streams"),
			chromedp.WaitVisible(chromedp.ID("append-form")),
			chromedp.SendKeys(chromedp.ID("stream"), "order-1"),
			chromedp.SendKeys(chromedp.ID("type"), "OrderPlaced"),
			chromedp.SetValue(chromedp.ID("data"), "{total: 42}"),
			chromedp.Click(chromedp.CSS("#append-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.ID("data-error")),
		)
		if msg := value(t, b, "read the data error", chromedp.Text(chromedp.ID("data-error"))); !strings.Contains(msg, "not JSON") {
			b.fail(t, "bad JSON is answered %q", msg)
		}
		b.do(t, "send good JSON",
			chromedp.SetValue(chromedp.ID("data"), `{"total": 42}`),
			chromedp.Click(chromedp.CSS("#append-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="stream-name"]`)),
		)
		if loc := b.location(t); loc != s.URL+"/t/acme/streams/order-1" {
			b.fail(t, "after appending the browser is at %s", loc)
		}
		if f := b.flash(t); f != "Appended OrderPlaced to order-1 as version 0." {
			b.fail(t, "flash %q after appending", f)
		}
		b.waitFor(t, "the event in the table", `document.querySelector('#events-table tr[data-version="0"]')`)
	})

	run(t, "an append based on an old view is refused", func(t *testing.T) {
		b.waitFor(t, "the stream page to go live", `document.querySelector('[data-testid="tail-state"]').textContent.trim() === 'live'`)
		_, err := api.AppendEvents(ctx, "acme", "order-1", client.AppendRequest{Events: []client.EventInput{{Type: "OrderPaid", Data: json.RawMessage(`{}`)}}})
		mustOK(t, "append through the API", err)
		b.waitFor(t, "the summary to follow", `document.querySelector('[data-testid="summary-version"]').textContent.trim() === '1'`)
		b.do(t, "append after version 0",
			chromedp.SendKeys(chromedp.ID("type"), "OrderShipped"),
			chromedp.SetValue(chromedp.ID("data"), `{"carrier": "post"}`),
			chromedp.Click(chromedp.CSS("#append-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="append-error"]`)),
		)
		msg := value(t, b, "read the refusal", chromedp.Text(chromedp.CSS(`[data-testid="append-error"]`)))
		if !strings.Contains(msg, "Not appended") || !strings.Contains(msg, "is at version 1, expected version 0") {
			b.fail(t, "the stale append is answered %q", msg)
		}
		b.screenshot(t, "append-refused")
		page, err := api.ReadStream(ctx, "acme", "order-1", client.ReadStreamOptions{})
		mustOK(t, "read the stream", err)
		if len(page.Items) != 2 {
			t.Fatalf("the stream holds %d events after the refused append, want 2", len(page.Items))
		}
		b.do(t, "send it again, after version 1",
			chromedp.Click(chromedp.CSS("#append-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`#events-table tr[data-version="2"]`)),
		)
	})

	run(t, "keys: write, a stale edit and a stale delete refused, delete", func(t *testing.T) {
		b.do(t, "create a key",
			chromedp.Navigate(s.URL+"/t/acme/kv"),
			chromedp.WaitVisible(chromedp.ID("kv-form")),
			chromedp.SendKeys(chromedp.ID("key"), "flags/checkout"),
			chromedp.SetValue(chromedp.ID("value"), `{"enabled": true}`),
			chromedp.Click(chromedp.CSS("#kv-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-key="flags/checkout"]`)),
		)
		if f := b.flash(t); !strings.HasPrefix(f, "Saved flags/checkout at revision ") {
			b.fail(t, "flash %q after writing a key", f)
		}
		first := value(t, b, "read the key's revision", chromedp.AttributeValue(chromedp.CSS(`tr[data-key="flags/checkout"]`), "data-revision")).Value
		// Live first: when the stream connects the list is drawn again (150
		// ms later), and a click on the row it replaces would be lost.
		b.waitFor(t, "the key list to go live", `document.querySelector('[data-testid="kv-keys"]').getAttribute('data-live') === 'on'`)
		b.do(t, "let the list be drawn again", chromedp.Sleep(300*time.Millisecond))
		b.waitFor(t, "the list's reload to end", `!document.querySelector('.htmx-request')`)
		b.do(t, "open it for editing",
			chromedp.Click(chromedp.CSS(`tr[data-key="flags/checkout"] [data-testid="kv-edit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="kv-form-revision"]`)),
		)
		rev, err := strconv.ParseUint(first, 10, 64)
		mustOK(t, "read the revision", err)
		other, err := api.PutKV(ctx, "acme", "flags/checkout", map[string]any{"enabled": "someone else"}, client.PutKVOptions{IfRevision: rev})
		mustOK(t, "change the key through the API", err)
		b.waitFor(t, "the list to show the new revision", fmt.Sprintf(
			`(document.querySelector('tr[data-key="flags/checkout"]') || {dataset: {}}).dataset.revision === '%d'`, other.Revision))
		b.do(t, "save the edit of the old revision",
			chromedp.SetValue(chromedp.ID("value"), `{"enabled": false}`),
			chromedp.Click(chromedp.CSS("#kv-form button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="kv-error"]`)),
		)
		msg := value(t, b, "read the refusal", chromedp.Text(chromedp.CSS(`[data-testid="kv-error"]`)))
		if !strings.Contains(msg, "Not saved") || !strings.Contains(msg, "changed after you opened it") || !strings.Contains(msg, "revision "+first) {
			b.fail(t, "the stale edit is answered %q", msg)
		}
		b.screenshot(t, "kv-stale-edit")
		kv, err := api.GetKV(ctx, "acme", "flags/checkout")
		mustOK(t, "read the key", err)
		if kv.Revision != other.Revision {
			t.Fatalf("the key moved to revision %d although the edit was refused", kv.Revision)
		}

		stale := value(t, b, "delete at the old revision", chromedp.Evaluate[string](`fetch('/t/acme/kv/delete', {method: 'POST',
			headers: {'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]').content, 'HX-Request': 'true',
				'Content-Type': 'application/x-www-form-urlencoded'},
			body: 'key=flags%2Fcheckout&revision=`+first+`'}).then(r => r.text())`, awaitPromise))
		if !strings.Contains(stale, "Not deleted") || !strings.Contains(stale, "changed after you opened it") {
			b.fail(t, "the stale delete is answered %q", stale)
		}
		b.do(t, "delete the key as shown",
			chromedp.Click(chromedp.CSS(`tr[data-key="flags/checkout"] [data-testid="kv-delete"]`)),
			chromedp.WaitNotPresent(chromedp.CSS(`tr[data-key="flags/checkout"]`)),
		)
		_, err = api.GetKV(ctx, "acme", "flags/checkout")
		wantProblem(t, err, 404, "not_found")
	})

	run(t, "an admin forces a lock free", func(t *testing.T) {
		_, err := api.AcquireLock(ctx, "acme", "orders-migrator", client.AcquireLockRequest{Owner: "pod-gone", TTLMs: 600_000})
		mustOK(t, "acquire", err)
		b.do(t, "force the release",
			chromedp.Navigate(s.URL+"/t/acme/coordination"),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-lock="orders-migrator"]`)),
		)
		b.screenshot(t, "lock-held")
		b.do(t, "force the release",
			chromedp.Click(chromedp.CSS(`tr[data-lock="orders-migrator"] [data-testid="force-release"]`)),
			chromedp.WaitNotPresent(chromedp.CSS(`tr[data-lock="orders-migrator"]`)),
		)
		if f := b.flash(t); !strings.Contains(f, "Lock orders-migrator released") {
			b.fail(t, "flash %q after forcing the release", f)
		}
		locks, err := api.ListLocks(ctx, "acme", client.ListOptions{})
		mustOK(t, "list locks", err)
		if len(locks.Items) != 0 {
			t.Fatalf("locks after the forced release: %+v", locks.Items)
		}
	})

	run(t, "members and invitations are told apart", func(t *testing.T) {
		_, err := api.AddMember(ctx, "acme", client.AddMemberRequest{Email: "dave@example.com", Role: client.RoleViewer})
		mustOK(t, "invite dave", err)
		b.do(t, "open the members page",
			chromedp.Navigate(s.URL+"/t/acme/members"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="invitations-table"]`)),
		)
		if joined := value(t, b, "read the members", chromedp.Text(chromedp.ID("members-table"))); strings.Contains(joined, "dave@example.com") {
			b.fail(t, "an invitee is listed as a member: %q", joined)
		}
		inv := value(t, b, "read the invitation", chromedp.Text(chromedp.CSS(`tr[data-invitation="dave@example.com"]`)))
		if !strings.Contains(inv, "Invited, not joined") {
			b.fail(t, "the invitation reads %q", inv)
		}
		b.screenshot(t, "members-and-invitations")
		b.do(t, "cancel the invitation",
			chromedp.Click(chromedp.CSS(`tr[data-invitation="dave@example.com"] button`)),
			chromedp.WaitNotPresent(chromedp.CSS(`tr[data-invitation="dave@example.com"]`)),
		)
	})

	run(t, "the audit log filters by action and actor", func(t *testing.T) {
		_, err := api.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments"})
		mustOK(t, "create a team", err)
		b.do(t, "filter the audit log",
			chromedp.Navigate(s.URL+"/t/acme/audit"),
			chromedp.WaitVisible(chromedp.ID("audit-filter")),
			chromedp.SendKeys(chromedp.ID("action"), "member."),
			chromedp.SendKeys(chromedp.ID("actor"), "ada@"),
		)
		// The unfiltered page's table stays visible until the filtered page
		// replaces it: take it away first, so the table waited for is the
		// filtered page's.
		value(t, b, "take the unfiltered table away", chromedp.Evaluate[bool](`document.getElementById('audit-table').remove(), true`))
		b.do(t, "submit the filter",
			chromedp.Click(chromedp.CSS("#audit-filter button[type=submit]")),
			chromedp.WaitVisible(chromedp.ID("audit-table")),
		)
		actions := value(t, b, "read the actions", chromedp.Evaluate[[]string](
			`[...document.querySelectorAll('#audit-table tbody tr')].map(r => r.cells[2].textContent.trim())`))
		if len(actions) == 0 || !slices.Contains(actions, "member.invited") {
			b.fail(t, "the filtered log shows %v, want the invitation", actions)
		}
		for _, a := range actions {
			if !strings.HasPrefix(a, "member.") {
				b.fail(t, "the log filtered by member. shows %s", a)
			}
		}
		if v := value(t, b, "read the filter", chromedp.Value(chromedp.ID("action"))); v != "member." {
			b.fail(t, "the filter form lost its value: %q", v)
		}
		b.screenshot(t, "audit-filtered")
	})

	run(t, "policies explain rules and try one before adding it", func(t *testing.T) {
		_, err := api.CreatePolicy(ctx, "acme", client.PolicyRule{Role: client.RoleViewer, Resource: "election", Action: "read", Effect: "deny"})
		mustOK(t, "deny viewers reading elections", err)
		b.do(t, "open the policies",
			chromedp.Navigate(s.URL+"/t/acme/policies"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="policy-matrix"]`)),
		)
		if ex := value(t, b, "read the rule's explanation", chromedp.Text(chromedp.CSS(`#tenant-rules [data-testid="rule-explained"]`))); ex != "always" {
			b.fail(t, "the rule is explained as %q", ex)
		}
		cell := `document.querySelector('[data-kind="election"] tr[data-role="viewer"] td[data-action="read"]').dataset.verdict`
		if v := value(t, b, "read the matrix", chromedp.Evaluate[string](cell)); v != "no" {
			b.fail(t, "the matrix says %q for viewers reading elections, want no", v)
		}
		if v := value(t, b, "read the matrix", chromedp.Evaluate[string](
			`document.querySelector('[data-kind="lock"] tr[data-role="admin"] td[data-action="delete"]').dataset.verdict`)); v != "yes" {
			b.fail(t, "the matrix says %q for admins deleting locks, want yes", v)
		}
		b.do(t, "try a rule on an example request",
			chromedp.SetValue(chromedp.ID("role"), "viewer"),
			chromedp.SendKeys(chromedp.ID("resource"), "kv"),
			chromedp.SendKeys(chromedp.ID("action"), "use"),
			chromedp.SetValue(chromedp.ID("try_role"), "viewer"),
			chromedp.SendKeys(chromedp.ID("try_action"), "use"),
			chromedp.SendKeys(chromedp.ID("try_kind"), "kv"),
			chromedp.Click(chromedp.CSS(`[data-testid="try-button"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="try-after"]`)),
		)
		before := value(t, b, "read the answer", chromedp.AttributeValue(chromedp.CSS(`[data-testid="try-before"]`), "data-allowed")).Value
		after := value(t, b, "read the answer", chromedp.AttributeValue(chromedp.CSS(`[data-testid="try-after"]`), "data-allowed")).Value
		if before != "false" || after != "true" {
			b.fail(t, "viewers using kv: %s before the rule and %s after, want false then true", before, after)
		}
		b.screenshot(t, "policy-tried")
		b.do(t, "reload the policies", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("tenant-rules")))
		if n := value(t, b, "count the rules", chromedp.Evaluate[int](`document.querySelectorAll('#tenant-rules tbody tr').length`)); n != 1 {
			b.fail(t, "the organisation has %d rules after trying one, want the 1 it had", n)
		}
	})

	// The refused forms answer 422 and 409 on purpose (the browser logs
	// the status of such a page); nothing else may fail.
	if errs := b.scriptErrorsBut(422, 409); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestBrowser_EditorSeesTheTabsOfTheRole: an editor's nav leaves out what
// the role may not open and says so; a kept link to such a page goes to the
// overview; and an editor cannot force a lock free.
func TestBrowser_EditorSeesTheTabsOfTheRole(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	owner := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	_, err := owner.AddMember(ctx, "acme", client.AddMemberRequest{Email: "eve@example.com", Role: client.RoleEditor})
	mustOK(t, "invite an editor", err)
	eve := s.newClient(t)
	_, err = eve.Signup(ctx, client.SignupRequest{Email: "eve@example.com", Password: testPassword, Name: "Eve"})
	mustOK(t, "the editor signs up", err)
	_, err = eve.VerifyEmail(ctx, verificationToken(t, s, "eve@example.com"))
	mustOK(t, "the editor confirms the address", err)
	_, err = owner.AcquireLock(ctx, "acme", "reports", client.AcquireLockRequest{Owner: "pod-a", TTLMs: 600_000})
	mustOK(t, "acquire", err)

	b := newBrowser(t, s)
	b.login(t, s, "eve@example.com", "/", chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)))
	sections := value(t, b, "read the nav", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('[data-testid="nav"] a')].map(a => a.dataset.section)`))
	for _, want := range []string{"overview", "teams", "members", "streams", "kv", "coordination"} {
		if !slices.Contains(sections, want) {
			b.fail(t, "the editor's nav lacks %s: %v", want, sections)
		}
	}
	for _, hidden := range []string{"tokens", "audit", "policies"} {
		if slices.Contains(sections, hidden) {
			b.fail(t, "the editor's nav offers %s, which answers 403: %v", hidden, sections)
		}
	}
	note := value(t, b, "read the nav's note", chromedp.Text(chromedp.CSS(`[data-testid="nav-note"]`)))
	if !strings.Contains(note, "API tokens, Audit log and Policies") || !strings.Contains(note, "(editor)") {
		b.fail(t, "the nav's note reads %q", note)
	}
	if shown := value(t, b, "look for the audit log on the overview", chromedp.Evaluate[bool](
		`!!document.querySelector('[data-testid="recent-activity"]') || !!document.querySelector('[data-testid="raft-health"]')`)); shown {
		b.fail(t, "the editor's overview shows the audit log or the Raft group")
	}
	b.screenshot(t, "editor-overview")

	b.do(t, "open a kept link to the tokens",
		chromedp.Navigate(s.URL+"/t/acme/tokens"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-health"]`)),
	)
	if loc := b.location(t); loc != s.URL+"/t/acme" {
		b.fail(t, "a hidden section's link went to %s, want the overview", loc)
	}
	if f := b.flash(t); !strings.Contains(f, "API tokens is not open to your role (editor)") {
		b.fail(t, "flash %q on the way to a hidden section", f)
	}

	b.do(t, "open the locks",
		chromedp.Navigate(s.URL+"/t/acme/coordination"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-lock="reports"]`)),
	)
	if n := value(t, b, "count the release buttons", chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="force-release"]').length`)); n != 0 {
		b.fail(t, "an editor is offered %d force-release buttons", n)
	}
	status := value(t, b, "force the release anyway", chromedp.Evaluate[string](`fetch('/t/acme/coordination/locks/release?name=reports', {method: 'POST',
		headers: {'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]').content}}).then(r => r.status + ' ' + r.statusText)`, awaitPromise))
	if !strings.HasPrefix(status, "403") {
		b.fail(t, "an editor's forced release answered %s, want 403", status)
	}
	locks, err := owner.ListLocks(ctx, "acme", client.ListOptions{})
	mustOK(t, "list locks", err)
	if len(locks.Items) != 1 {
		t.Fatalf("the lock is gone after the editor's attempt: %+v", locks.Items)
	}
	// The refused fetch logs its 403; nothing else may fail.
	if errs := b.scriptErrorsBut(403); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestBrowser_APIDocsFromTheHeader: the header leads to the API docs,
// which show each operation's shapes and examples, and lead back.
func TestBrowser_APIDocsFromTheHeader(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	signupAndLogin(t, t.Context(), s, "ada@example.com", "acme")
	b := newBrowser(t, s)
	b.login(t, s, "ada@example.com", "/", chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-health"]`)))
	run(t, "the header leads to the API docs and back", func(t *testing.T) {
		b.do(t, "open the docs from the header",
			chromedp.Click(chromedp.CSS(`[data-testid="docs-link"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="api-docs"]`)),
		)
		op := `document.querySelector('[data-method="PUT"][data-path="/api/v1/tenants/{tenant}/kv/{key}"]')`
		b.waitFor(t, "the docs of PUT …/kv/{key}", op)
		b.do(t, "open the operation",
			chromedp.Click(chromedp.CSS(`[data-method="PUT"][data-path="/api/v1/tenants/{tenant}/kv/{key}"] > summary`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-method="PUT"][data-path="/api/v1/tenants/{tenant}/kv/{key}"] [data-testid="docs-example"]`)),
		)
		text := value(t, b, "read the operation", chromedp.Evaluate[string](op+`.textContent`))
		for _, want := range []string{"Request body", "value", "Example request body", "If-Match", "412"} {
			if !strings.Contains(text, want) {
				b.fail(t, "the docs of PUT …/kv/{key} lack %q", want)
			}
		}
		if !value(t, b, "look for the contents", chromedp.Evaluate[bool](`!!document.querySelector('.docs-toc a[href="#tag-kv"]')`)) {
			b.fail(t, "the docs have no contents entry for the kv tag")
		}
		b.screenshot(t, "api-docs")
		b.do(t, "go back to the console",
			chromedp.Click(chromedp.CSS(`[data-testid="docs-back"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-health"]`)),
		)
	})

	b.do(t, "open the API's own docs address", chromedp.Navigate(s.URL+"/api/v1/docs"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="api-docs"]`)))
	if loc := b.location(t); loc != s.URL+"/docs" {
		b.fail(t, "/api/v1/docs ends at %s, want the console's /docs", loc)
	}
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
