package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

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
			chromedp.WaitVisible(chromedp.ID("team-form")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="verify-banner"]`)),
		)
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
		if v := value(t, b, "read the tenant switcher", chromedp.Value(chromedp.ID("tenant-switcher"))); v != "/t/acme/teams" {
			b.fail(t, "the tenant switcher is on %q, want /t/acme/teams", v)
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
		b.do(t, "log out",
			chromedp.Click(chromedp.CSS("#logout-form button")),
			chromedp.WaitVisible(chromedp.ID("login-form")),
		)
		if loc := b.location(t); !strings.HasPrefix(loc, s.URL+"/login") {
			b.fail(t, "after logging out the browser is at %s, want the login page", loc)
		}
		b.screenshot(t, "logged-out")
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

	for _, section := range []string{"streams", "members", "tokens", "audit", "policies", "coordination"} {
		b.do(t, "open "+section,
			chromedp.Navigate(s.URL+"/t/acme/"+section),
			chromedp.WaitVisible(chromedp.ID("main")),
		)
		check(t, "the "+section+" page")
		b.screenshot(t, "narrow-"+section)
	}
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}
