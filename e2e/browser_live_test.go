package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"switchboard/e2e/client"
)

// waitFor polls the JavaScript expression in the page until it is truthy,
// within stepTimeout, and fails the test (with a screenshot) otherwise.
func (b *browser) waitFor(t *testing.T, what, expr string) {
	t.Helper()
	value(t, b, what, chromedp.Poll[bool]("!!("+expr+")", chromedp.WithPollingInterval(50*time.Millisecond)))
}

// TestBrowser_LocksElectionsAndTailAreLive changes state through the REST
// API while a page is open, and checks the page follows without a reload:
// locks and elections appear and go on the "Locks & elections" page, a
// looked-up election follows its leader, and a stream's live tail shows new
// events.
func TestBrowser_LocksElectionsAndTailAreLive(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	b := newBrowser(t, s)

	b.do(t, "log in on the way to the coordination page",
		chromedp.Navigate(s.URL+"/t/acme/coordination"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-locks"]`)),
	)
	for _, section := range []string{"coordination-locks", "coordination-elections"} {
		b.waitFor(t, "the live view of "+section+" to connect",
			`document.querySelector('[data-testid="`+section+`"]').getAttribute('data-live') === 'on'`)
	}
	// A mark on the window shows whether the page was ever reloaded.
	value(t, b, "mark the page", chromedp.Evaluate[bool](`window.__notReloaded = true`))

	// The cluster card names this node as the leader.
	if state := value(t, b, "read the cluster state", chromedp.Text(chromedp.CSS(`[data-testid="cluster-state"]`))); !strings.Contains(state, "Leader") {
		b.fail(t, "the cluster card says %q, want this single node to be the Leader", state)
	}

	t.Run("a lock appears when acquired and goes when released", func(t *testing.T) {
		l, err := api.AcquireLock(ctx, "acme", "orders-migrator", client.AcquireLockRequest{Owner: "pod-a", TTLMs: 60_000})
		mustOK(t, "acquire", err)
		row := `document.querySelector('tr[data-lock="orders-migrator"]')`
		// The table is redrawn when a reload lands, so the row is read in
		// the same step that finds it.
		b.waitFor(t, "the lock's row with owner pod-a and its fencing token", fmt.Sprintf(
			`((%s || {textContent: ''}).textContent).includes('pod-a') && (%s || {textContent: ''}).textContent.includes('%d')`,
			row, row, l.FencingToken))
		b.screenshot(t, "lock-held")
		// The reload names the event's Raft index, so a node that serves it
		// before applying the change waits for it.
		b.waitFor(t, "a reload that names the event's index", fmt.Sprintf(
			`performance.getEntriesByType('resource').some(e => e.name.includes('/coordination/locks?index=%d'))`, l.FencingToken))
		mustOK(t, "release", api.ReleaseLock(ctx, "acme", "orders-migrator", l.Token))
		b.waitFor(t, "the lock's row to go", "!"+row)
	})

	t.Run("a looked-up election follows its leader", func(t *testing.T) {
		first, err := api.Campaign(ctx, "acme", "primary", client.CampaignRequest{Candidate: "pod-a", TTLMs: 60_000})
		mustOK(t, "campaign pod-a", err)
		leader := `(document.querySelector('[data-testid="election-leader"]') || {dataset: {}}).dataset.leader`
		listed := `(document.querySelector('tr[data-election="primary"]') || {textContent: ''}).textContent`
		// The list grows by a table when the election appears, which moves
		// the lookup form down; look it up once the page has settled, or the
		// click can land where the button was.
		b.waitFor(t, "pod-a in the list of elections", listed+`.includes('pod-a')`)
		b.do(t, "look the election up",
			chromedp.SendKeys(chromedp.ID("election"), "primary"),
			chromedp.Click(chromedp.CSS(`[data-testid="coordination-election-form"] button[type=submit]`)),
		)
		b.waitFor(t, "pod-a as the leader", leader+` === 'pod-a'`)
		b.waitFor(t, "the election's live view to connect",
			`(document.querySelector('#election-result [data-live]') || {getAttribute: () => ''}).getAttribute('data-live') === 'on'`)
		mustOK(t, "resign pod-a", api.Resign(ctx, "acme", "primary", first.Token))
		b.waitFor(t, "no leader after the resignation", leader+` === ''`)
		b.waitFor(t, "the election to leave the list", listed+` === ''`)
		_, err = api.Campaign(ctx, "acme", "primary", client.CampaignRequest{Candidate: "pod-b", TTLMs: 60_000})
		mustOK(t, "campaign pod-b", err)
		b.waitFor(t, "pod-b as the leader", leader+` === 'pod-b'`)
		b.waitFor(t, "pod-b in the list of elections", listed+`.includes('pod-b')`)
		b.screenshot(t, "election-followed")

		// A name the service refuses says why, and opens no stream.
		bad := value(t, b, "look up a name with a control character", chromedp.Evaluate[string](
			`fetch('/t/acme/coordination/election?election=%00', {headers: {'HX-Request': 'true'}}).then(r => r.text())`, awaitPromise))
		if strings.Contains(bad, "data-ws") || !strings.Contains(bad, "NUL character") {
			b.fail(t, "the lookup of a bad name answered %q", bad)
		}
	})

	if !value(t, b, "check the page was never reloaded", chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		b.fail(t, "the page was reloaded: the updates came from a reload, not live")
	}

	t.Run("a stream's tail shows new events", func(t *testing.T) {
		_, err := api.AppendEvents(ctx, "acme", "order-1001", client.AppendRequest{ExpectedVersion: client.ExpectNoStream,
			Events: []client.EventInput{{Type: "OrderPlaced", Data: json.RawMessage(`{"total":42}`)}}})
		mustOK(t, "append the first event", err)
		b.do(t, "open the stream",
			chromedp.Navigate(s.URL+"/t/acme/streams/order-1001"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="stream-tail"]`)),
		)
		b.waitFor(t, "the tail to go live",
			`document.querySelector('[data-testid="tail-state"]').textContent.trim() === 'live'`)
		_, err = api.AppendEvents(ctx, "acme", "order-1001", client.AppendRequest{ExpectedVersion: client.ExpectVersion(0),
			Events: []client.EventInput{{Type: "OrderShipped", Data: json.RawMessage(`{"carrier":"<b>post</b>"}`)}}})
		mustOK(t, "append the second event", err)
		tail := `[...document.querySelectorAll('[data-testid="stream-tail"] [data-tail-body] tr')]`
		b.waitFor(t, "the new event in the tail", tail+`.some(tr => tr.textContent.includes('OrderShipped'))`)
		// Event data is shown as text, never as markup.
		if bold := value(t, b, "look for markup from event data", chromedp.Evaluate[bool](
			`!!document.querySelector('[data-testid="stream-tail"] [data-tail-body] b')`)); bold {
			b.fail(t, "the tail rendered event data as HTML")
		}
		b.screenshot(t, "tail-live")
	})

	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// awaitPromise makes Evaluate wait for the promise the expression returns.
func awaitPromise(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }

// TestBrowser_ElectionsHiddenWhereThePolicyDeniesThem: a tenant's rule
// that denies viewers reading elections hides the elections from a viewer's
// page, and its live fragment and stream refuse, while locks still show.
func TestBrowser_ElectionsHiddenWhereThePolicyDeniesThem(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	owner := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	_, err := owner.CreatePolicy(ctx, "acme", client.PolicyRule{Role: client.RoleViewer, Resource: "election", Action: "read", Effect: "deny"})
	mustOK(t, "deny viewers reading elections", err)
	_, err = owner.AddMember(ctx, "acme", client.AddMemberRequest{Email: "vic@example.com", Role: client.RoleViewer})
	mustOK(t, "invite a viewer", err)
	vic := s.newClient(t)
	_, err = vic.Signup(ctx, client.SignupRequest{Email: "vic@example.com", Password: testPassword, Name: "Vic"})
	mustOK(t, "the viewer signs up", err)
	_, err = vic.VerifyEmail(ctx, verificationToken(t, s, "vic@example.com"))
	mustOK(t, "the viewer confirms the address", err)
	_, err = owner.Campaign(ctx, "acme", "primary", client.CampaignRequest{Candidate: "pod-secret", TTLMs: 60_000})
	mustOK(t, "campaign", err)

	b := newBrowser(t, s)
	b.do(t, "log in as the viewer",
		chromedp.Navigate(s.URL+"/t/acme/coordination"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), "vic@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="coordination-locks"]`)),
	)
	if shown := value(t, b, "look for the elections", chromedp.Evaluate[bool](
		`!!document.querySelector('[data-testid="coordination-elections"]') || document.body.textContent.includes('pod-secret')`)); shown {
		b.fail(t, "the page shows elections to a role the policy denies them")
	}
	status := func(path string) int {
		return value(t, b, "fetch "+path, chromedp.Evaluate[int](`fetch(`+jsString(path)+`).then(r => r.status)`, awaitPromise))
	}
	if got := status("/t/acme/coordination/elections"); got != 403 {
		b.fail(t, "the elections fragment answered %d to the viewer, want 403", got)
	}
	if got := status("/t/acme/coordination/locks?index=soon"); got != 400 {
		b.fail(t, "the locks fragment answered %d to a bad index, want 400", got)
	}
	if got := status("/t/acme/coordination/locks?index=1"); got != 200 {
		b.fail(t, "the locks fragment answered %d to an applied index, want 200", got)
	}
	// The page's streams authenticate with the session cookie: the locks
	// stream opens, the elections stream is refused.
	stream := func(path string) string {
		return value(t, b, "open "+path, chromedp.Evaluate[string](`new Promise(done => {
			const ws = new WebSocket('ws://' + location.host + `+jsString(path)+`);
			ws.onopen = () => { done('open'); ws.close(); };
			ws.onerror = () => done('refused');
		})`, awaitPromise))
	}
	if got := stream("/api/v1/tenants/acme/locks/watch"); got != "open" {
		b.fail(t, "the viewer's locks stream: %s", got)
	}
	if got := stream("/api/v1/tenants/acme/elections-watch"); got != "refused" {
		b.fail(t, "the viewer's elections stream: %s, want refused", got)
	}
	b.screenshot(t, "viewer-without-elections")
}

// TestBrowser_InvitedUserSignsUpWithoutAnOrganisation: someone invited to
// an organisation signs up leaving the organisation fields empty, follows
// the mailed link, and after signing in lands in the organisation that
// invited them; with an invalid organisation slug nothing is written and
// the form can be sent again. Until the address is confirmed the
// invitation waits.
func TestBrowser_InvitedUserSignsUpWithoutAnOrganisation(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	owner := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	_, err := owner.AddMember(ctx, "acme", client.AddMemberRequest{Email: "dave@example.com", Role: client.RoleViewer})
	mustOK(t, "invite dave", err)

	b := newBrowser(t, s)
	fill := func(slug string, then chromedp.Action[chromedp.Void]) {
		b.do(t, "send the sign-up form with organisation slug "+jsString(slug),
			chromedp.Navigate(s.URL+"/signup"),
			chromedp.WaitVisible(chromedp.ID("signup-form")),
			chromedp.SendKeys(chromedp.ID("name"), "Dave"),
			chromedp.SendKeys(chromedp.ID("email"), "dave@example.com"),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.SendKeys(chromedp.ID("tenant_slug"), slug),
			chromedp.Click(chromedp.CSS("#signup-form button[type=submit]")),
			then,
		)
	}
	fill("Not A Slug", chromedp.WaitVisible(chromedp.ID("tenant_slug-error")))
	if loc := b.location(t); loc != s.URL+"/signup" {
		b.fail(t, "after a refused sign-up the browser is at %s", loc)
	}
	fill("", chromedp.WaitVisible(chromedp.CSS(`[data-testid="check-mail"]`)))
	b.screenshot(t, "check-mail")
	// Signed in before confirming: no organisation yet, and a banner asks
	// to confirm.
	b.do(t, "sign in before confirming",
		chromedp.Navigate(s.URL+"/login"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("email"), "dave@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="verify-banner"]`)))
	if loc := b.location(t); loc != s.URL+"/tenants/new" {
		b.fail(t, "an unconfirmed invitee is at %s, want /tenants/new (the invitation waits)", loc)
	}
	b.do(t, "follow the mailed link",
		chromedp.Navigate(verificationLink(t, s, "dave@example.com")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="verify-result"]`)))
	if txt := value(t, b, "read the confirmation", chromedp.Text(chromedp.CSS("main"))); !strings.Contains(txt, "Acme") {
		b.fail(t, "the confirmation page reads %q, want it to name the organisation joined", txt)
	}
	b.do(t, "continue", chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.ID("tenant-switcher")))
	if loc := b.location(t); loc != s.URL+"/t/acme" {
		b.fail(t, "after confirming the browser is at %s, want the inviting organisation's overview", loc)
	}
	if v := b.currentOrg(t); v != "acme" {
		b.fail(t, "the organisation switcher is on %q, want acme", v)
	}
	b.screenshot(t, "invited-signed-up")
}

// TestBrowser_StreamPagesAreLiveInEveryPart: one subscription feeds every
// part of a stream page. On the streams page a new stream joins the list
// (which no longer says there are none) and a listed one moves on, even
// when the tail is filtered to another category; on a stream's page the
// summary and the events follow.
func TestBrowser_StreamPagesAreLiveInEveryPart(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	b := newBrowser(t, s)
	appendTo := func(stream, typ string) {
		t.Helper()
		_, err := api.AppendEvents(ctx, "acme", stream, client.AppendRequest{Events: []client.EventInput{{Type: typ, Data: json.RawMessage(`{"n":1}`)}}})
		mustOK(t, "append to "+stream, err)
	}
	live := `document.querySelector('[data-testid="tail-state"]').textContent.trim() === 'live'`
	row := func(stream string) string {
		return `document.querySelector('[data-streams-body] tr[data-stream="` + stream + `"]')`
	}
	version := func(stream string) string {
		return `(` + row(stream) + ` || {querySelector: () => ({textContent: ''})}).querySelector('[data-cell="version"]').textContent.trim()`
	}

	b.login(t, s, "ada@example.com", "/t/acme/streams", chromedp.WaitVisible(chromedp.CSS(`[data-testid="stream-tail"]`)))
	b.waitFor(t, "the tail to go live", live)
	value(t, b, "mark the page", chromedp.Evaluate[bool](`window.__notReloaded = true`))
	if !value(t, b, "see the empty list", chromedp.Evaluate[bool](`!!document.querySelector('[data-streams-empty]:not([hidden])')`)) {
		b.fail(t, "the empty streams page does not say so")
	}

	appendTo("order-1", "OrderPlaced")
	b.waitFor(t, "order-1 in the list", row("order-1"))
	b.waitFor(t, "the empty note to go", `document.querySelector('[data-streams-empty]').hidden`)
	b.waitFor(t, "the event in the tail", `[...document.querySelectorAll('[data-tail-body] tr')].some(tr => tr.textContent.includes('OrderPlaced'))`)
	appendTo("order-1", "OrderPaid")
	b.waitFor(t, "order-1 at version 1", version("order-1")+` === '1'`)
	appendTo("billing-7", "InvoiceSent")
	b.waitFor(t, "billing-7 in the list, in name order", `[...document.querySelectorAll('[data-streams-body] tr')].map(r => r.dataset.stream).join() === 'billing-7,order-1'`)
	if n := value(t, b, "read the count", chromedp.Text(chromedp.CSS(`[data-table-tools="streams-table"] [data-count]`))); n != "2 streams on this page" {
		b.fail(t, "the list's count reads %q", n)
	}
	b.screenshot(t, "streams-live")
	if !value(t, b, "check the page was never reloaded", chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		b.fail(t, "the page was reloaded")
	}

	b.do(t, "filter the tail to the billing category",
		chromedp.Navigate(s.URL+"/t/acme/streams?category=billing"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="stream-tail"]`)),
	)
	b.waitFor(t, "the filtered tail to go live", live)
	appendTo("order-1", "OrderShipped")
	b.waitFor(t, "order-1 moves on in the list", version("order-1")+` === '2'`)
	if shown := value(t, b, "look for the order event in the billing tail", chromedp.Evaluate[bool](
		`[...document.querySelectorAll('[data-tail-body] tr')].some(tr => tr.textContent.includes('OrderShipped'))`)); shown {
		b.fail(t, "the tail filtered to billing shows an order event")
	}
	appendTo("billing-7", "InvoicePaid")
	b.waitFor(t, "the billing event in the tail", `[...document.querySelectorAll('[data-tail-body] tr')].some(tr => tr.textContent.includes('InvoicePaid'))`)

	b.do(t, "open order-1",
		chromedp.Navigate(s.URL+"/t/acme/streams/order-1"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="summary-version"]`)),
	)
	b.waitFor(t, "the stream page to go live", live)
	appendTo("order-1", "OrderDelivered")
	b.waitFor(t, "the summary to follow", `document.querySelector('[data-testid="summary-version"]').textContent.trim() === '3'`)
	b.waitFor(t, "the new event on top", `document.querySelector('#events-table tbody tr').dataset.version === '3'`)
	b.screenshot(t, "stream-live")
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
