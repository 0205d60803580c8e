package ui_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/app/apptest"
	"switchboard/internal/connectors/rabbitmq/rabbittest"
	"switchboard/internal/dlq"
	"switchboard/views"
)

// dlqEnv is a running server with the organisation acme, its owner ada
// (signed in to the UI), a RabbitMQ broker in the catalog, a work queue
// that dead-letters into its DLQ through the default exchange, and both
// queues declared on the machine's RabbitMQ.
type dlqEnv struct {
	t     *testing.T
	srv   *apptest.Server
	owner string // ada's access token
	ada   *browser
	work  string
	dead  string
	ch    *amqp.Channel
}

// browser is a cookie-keeping HTTP client signed in to the UI; it does not
// follow redirects, so a test sees each 303 and where it goes.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

type page struct {
	status   int
	location string
	html     string // unescaped: entities turned back into text
	raw      string
	ctype    string // the answer's Content-Type
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return b.send(req)
}

// send sends req with the session's cookie and reads the whole answer.
func (b *browser) send(req *http.Request) page {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: res.StatusCode, location: res.Header.Get("Location"), ctype: res.Header.Get("Content-Type"),
		raw: string(raw), html: html.UnescapeString(string(raw))}
}

// get fetches path and fails unless it answers want.
func (b *browser) get(path string, want int) page {
	b.t.Helper()
	p := b.do(http.MethodGet, path, nil)
	if p.status != want {
		b.t.Fatalf("GET %s: %d, want %d\n%s", path, p.status, want, p.html)
	}
	return p
}

// csrf is the session's CSRF token, read from a page's form.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	m := csrfField.FindStringSubmatch(b.get(path, http.StatusOK).raw)
	if m == nil {
		b.t.Fatalf("%s has no CSRF field", path)
	}
	return m[1]
}

// post sends form (with the session's CSRF token) and, when it redirects,
// follows the redirect once and returns the page it leads to (with the
// flash the redirect left).
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	if form.Get("_csrf") == "" {
		form.Set("_csrf", b.csrf(strings.SplitN(path, "/act", 2)[0]))
	}
	p := b.do(http.MethodPost, path, form)
	if p.status == http.StatusSeeOther {
		next := b.do(http.MethodGet, p.location, nil)
		next.location = p.location
		return next
	}
	return p
}

func newBrowser(t *testing.T, srv *apptest.Server, email string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	m := csrfField.FindStringSubmatch(b.get("/login", http.StatusOK).raw)
	if m == nil {
		t.Fatal("the sign-in form has no CSRF field")
	}
	res := b.do(http.MethodPost, "/login", url.Values{"_csrf": {m[1]}, "email": {email}, "password": {"correct horse battery"}, "next": {"/"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("sign in as %s: %d\n%s", email, res.status, res.html)
	}
	return b
}

// api calls the REST API with token and fails unless it answers want.
func api(t *testing.T, srv *apptest.Server, token, method, path string, body any, want int) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, out)
	}
	return out
}

// signup creates a verified user (with the organisation tenant when not
// empty) and returns an access token.
func signup(t *testing.T, srv *apptest.Server, email, tenant string) string {
	t.Helper()
	body := map[string]any{"email": email, "password": "correct horse battery", "name": "Test " + email}
	if tenant != "" {
		body["tenant"] = map[string]string{"slug": tenant, "name": "Tenant " + tenant}
	}
	api(t, srv, "", http.MethodPost, "/api/v1/auth/signup", body, http.StatusAccepted)
	m := srv.Mail.WaitFor(t, email)
	link, ok := m.Link(srv.URL + "/verify-email?token=")
	if !ok {
		t.Fatalf("no verification link in the mail to %s:\n%s", email, m.Text)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	api(t, srv, "", http.MethodPost, "/api/v1/auth/verify-email", map[string]string{"token": u.Query().Get("token")}, http.StatusOK)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(api(t, srv, "", http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery"}, http.StatusOK), &login); err != nil {
		t.Fatal(err)
	}
	return login.AccessToken
}

func newDLQEnv(t *testing.T) *dlqEnv {
	t.Helper()
	srv := apptest.Start(t)
	owner := signup(t, srv, "ada@example.com", "acme")
	base := "/api/v1/tenants/acme"
	api(t, srv, owner, http.MethodPost, base+"/teams", map[string]string{"slug": "payments", "name": "Payments"}, http.StatusCreated)

	work, dead, ch := rabbittest.DeadLettering(t, "ui-work-", nil)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	api(t, srv, owner, http.MethodPost, base+"/brokers", map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": rabbittest.URL}, http.StatusCreated)
	api(t, srv, owner, http.MethodPost, base+"/queues", map[string]any{"name": dead, "broker": "rabbit", "owner_team": "payments"}, http.StatusCreated)
	api(t, srv, owner, http.MethodPost, base+"/queues", map[string]any{"name": work, "broker": "rabbit", "owner_team": "payments", "dead_letter_queue": dead}, http.StatusCreated)
	return &dlqEnv{t: t, srv: srv, owner: owner, ada: newBrowser(t, srv, "ada@example.com"), work: work, dead: dead, ch: ch}
}

func (e *dlqEnv) ref() string  { return "queue:" + e.dead }
func (e *dlqEnv) path() string { return "/t/acme/dlq/" + e.ref() }

// deadLetter publishes msgs to the work queue and rejects each, so the
// broker dead-letters them into the DLQ, and waits until the page lists
// them all (rows it had before plus these).
func (e *dlqEnv) deadLetter(msgs ...amqp.Publishing) {
	t := e.t
	t.Helper()
	before := len(rowIDs(e.ada.get(e.path(), http.StatusOK).raw))
	for _, m := range msgs {
		dc, err := e.ch.PublishWithDeferredConfirm("", e.work, true, false, m)
		if err != nil {
			t.Fatal(err)
		}
		if !dc.Wait() {
			t.Fatal("the broker did not confirm a publish")
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for got := 0; got < len(msgs); {
		d, ok, err := e.ch.Get(e.work, false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if time.Now().After(deadline) {
				t.Fatalf("rejected %d of %d", got, len(msgs))
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err := d.Reject(false); err != nil {
			t.Fatal(err)
		}
		got++
	}
	e.waitPage(e.path(), fmt.Sprintf("%d rows", before+len(msgs)), func(p page) bool { return len(rowIDs(p.raw)) == before+len(msgs) })
}

// replayed waits for the one message a replay put back on the work queue
// and takes it, or fails after 30 s.
func (e *dlqEnv) replayed() amqp.Delivery {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, ok, err := e.ch.Get(e.work, true)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok {
			return m
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the replayed message never reached %s", e.work)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPage reloads path until ok holds of it (the capture and the replay
// runner work in the background), or fails after 30 s.
func (e *dlqEnv) waitPage(path, what string, ok func(page) bool) page {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := e.ada.get(path, http.StatusOK)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: never %s\n%s", path, what, p.html)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var rowRE = regexp.MustCompile(`data-testid="dlq-row-(\d+)"`)

// rowIDs are the message ids of a page's table, in its order.
func rowIDs(raw string) []string {
	var ids []string
	for _, m := range rowRE.FindAllStringSubmatch(raw, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wantIn(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s lacks %q", what, p)
		}
	}
}

func wantNotIn(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(s, p) {
			t.Errorf("%s holds %q", what, p)
		}
	}
}

// The overview counts each DLQ; its page lists the messages newest first,
// opens each in a drawer (JSON indented, binary as hex, typed headers,
// properties), groups them, filters them, and says what is wrong with a
// bad filter or link on the page instead of failing.
func TestDLQPages_OverviewTableDrawerGroupsAndFilters(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t)
	e.deadLetter(
		amqp.Publishing{MessageId: "order-42", ContentType: "application/json", CorrelationId: "corr-7", Body: []byte(`{"order":42,"lines":[1,2]}`),
			Headers: amqp.Table{"x-tenant-region": "eu", "x-attempt": int32(3), "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		amqp.Publishing{MessageId: "blob-1", ContentType: "application/octet-stream", Body: []byte{0x00, 0x01, 0xfe, 0xff, 'A'}},
	)

	over := e.ada.get("/t/acme/dlq", http.StatusOK)
	row := over.html[strings.Index(over.html, `data-testid="dlq-`+e.ref()+`"`):]
	row = row[:strings.Index(row, "</tr>")]
	wantIn(t, "the overview's row", row, `href="`+e.path()+`"`, "payments", "rabbit", "<td>2</td>")

	p := e.ada.get(e.path(), http.StatusOK)
	ids := rowIDs(p.raw)
	if len(ids) != 2 || atoi(t, ids[0]) <= atoi(t, ids[1]) {
		t.Fatalf("rows %v, want two, newest first", ids)
	}
	blob, order := ids[0], ids[1]
	wantIn(t, "the page", p.html, `data-rows="insert"`, `data-ws="/api/v1/tenants/acme/dlq/`+e.ref()+`/live"`, `data-testid="dlq-actions"`,
		`<script src="/static/dlq.js" defer>`)

	// The JSON message's drawer.
	drawer := between(t, p.html, `data-testid="dlq-drawer-`+order+`"`, "</details>")
	wantIn(t, "the JSON message's drawer", drawer,
		"{\n  \"lines\": [\n    1,\n    2\n  ],\n  \"order\": 42\n}", // indented
		"<td>x-attempt</td><td>int32</td><td>3</td>", "<td>x-tenant-region</td><td>string</td><td>eu</td>",
		"<td>x-death</td><td>array</td><td>[{", `"reason":"rejected"`, // x-death as plain JSON
		"correlation", "corr-7", "queue "+e.work, "rejected", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "order-42")
	// The binary one: a hex dump.
	drawer = between(t, p.html, `data-testid="dlq-drawer-`+blob+`"`, "</details>")
	wantIn(t, "the binary message's drawer", drawer, "00000000  00 01 fe ff 41", "|....A|", "binary (hex dump)")

	// The drawer alone, as the page's script fetches it for a live row.
	frag := e.ada.get(e.path()+"/messages/"+order, http.StatusOK)
	wantIn(t, "the drawer fragment", frag.html, `"order": 42`, "<td>x-attempt</td><td>int32</td>")
	wantNotIn(t, "the drawer fragment", frag.html, "<html")
	e.ada.get(e.path()+"/messages/999999", http.StatusNotFound)
	e.ada.get(e.path()+"/messages/nope", http.StatusNotFound)

	// Groups by reason, exception, original.
	groups := between(t, p.html, `data-testid="dlq-groups"`, "</table>")
	wantIn(t, "the groups", groups, `value="=rejected"`, "<td>2</td>")
	groups = between(t, e.ada.get(e.path()+"?group_by=original", http.StatusOK).html, `data-testid="dlq-groups"`, "</table>")
	wantIn(t, "the groups by original", groups, e.work)

	// Filters: the table holds what matches, and the page stops inserting
	// live rows (they may not match).
	f := e.ada.get(e.path()+"?text=order", http.StatusOK)
	if got := rowIDs(f.raw); len(got) != 1 || got[0] != order {
		t.Errorf("text=order: rows %v, want [%s]", got, order)
	}
	wantIn(t, "the filtered page", f.html, `data-rows="count"`, `name="filter" value="text=order"`)
	if got := rowIDs(e.ada.get(e.path()+"?header=x-tenant-region%3Deu&status=dead", http.StatusOK).raw); len(got) != 1 || got[0] != order {
		t.Errorf("header filter: rows %v, want [%s]", got, order)
	}
	if got := rowIDs(e.ada.get(e.path()+"?status=replayed", http.StatusOK).raw); len(got) != 0 {
		t.Errorf("status=replayed: rows %v, want none", got)
	}
	// A bad filter is said on the page, not a failure.
	bad := e.ada.get(e.path()+"?since=yesterday", http.StatusUnprocessableEntity)
	wantIn(t, "a bad filter's page", bad.html, `data-testid="dlq-filter-error"`, "since")
	// A broken cursor is a page that says so.
	if p := e.ada.do(http.MethodGet, e.path()+"?cursor=not-a-cursor", nil); p.status >= 500 || p.status < 400 {
		t.Errorf("a broken cursor: %d", p.status)
	}
	// A DLQ that is not in the catalog, or not a DLQ: not found.
	e.ada.get("/t/acme/dlq/queue:nowhere", http.StatusNotFound)
	e.ada.get("/t/acme/dlq/"+url.PathEscape("queue:"+e.work), http.StatusNotFound)
	e.ada.get("/t/acme/dlq/bogus", http.StatusNotFound)

	// Another organisation's member sees none of it.
	signup(t, e.srv, "eve@example.com", "globex")
	eve := newBrowser(t, e.srv, "eve@example.com")
	eve.get(e.path(), http.StatusNotFound)
	wantNotIn(t, "another organisation's overview", eve.get("/t/globex/dlq", http.StatusOK).html, e.dead)
}

// A replay started from the page: a dry run shows the plan, the replay
// publishes with the replay header, the watched replay's progress bar
// reaches 100%, the history lists it, and the controls refuse what no
// longer applies on the page, never with a failure.
func TestDLQPages_ReplayFromThePage(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t)
	e.deadLetter(amqp.Publishing{MessageId: "order-1", ContentType: "application/json", Body: []byte(`{"order":1}`)},
		amqp.Publishing{MessageId: "order-2", ContentType: "application/json", Body: []byte(`{"order":2}`)})
	ids := rowIDs(e.ada.get(e.path(), http.StatusOK).raw)
	act := e.path() + "/act"

	// Nothing selected, or two ways at once: said, nothing done.
	p := e.ada.post(act, url.Values{"action": {"replay"}})
	wantIn(t, "replaying nothing", p.html, "Select messages or a group first")
	p = e.ada.post(act, url.Values{"action": {"replay"}, "id": {ids[0]}, "all": {"true"}})
	wantIn(t, "replaying two selections", p.html, "Choose one of")
	p = e.ada.post(act, url.Values{"action": {"replay"}, "id": {ids[0]}, "rate_per_second": {"fast"}})
	wantIn(t, "a rate that is not a number", p.html, "rate per second must be a whole number")
	p = e.ada.post(act, url.Values{"action": {"launch"}, "id": {ids[0]}})
	wantIn(t, "an unknown action", p.html, "Choose replay, dry run or discard")
	// Without the session's CSRF token: refused.
	if p := e.ada.do(http.MethodPost, act, url.Values{"_csrf": {"forged"}, "action": {"replay"}, "id": {ids[0]}}); p.status != http.StatusForbidden {
		t.Errorf("a forged CSRF token: %d, want 403", p.status)
	}

	// A dry run of the whole group "rejected": the plan, nothing sent.
	p = e.ada.post(act, url.Values{"action": {"dry_run"}, "group": {"=rejected"}, "group_by": {"reason"}})
	if p.status != http.StatusOK {
		t.Fatalf("dry run: %d\n%s", p.status, p.html)
	}
	plan := between(t, p.html, `data-testid="dlq-plan"`, "</div>")
	wantIn(t, "the plan", plan, "2 of 2 would be replayed", "2 to queue "+e.work)
	if q, err := e.ch.QueueDeclarePassive(e.work, true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Fatalf("after a dry run the work queue holds %d (%v)", q.Messages, err)
	}
	p = e.ada.post(act, url.Values{"action": {"dry_run"}, "group": {"=rejected", "=expired"}, "group_by": {"reason"}})
	wantIn(t, "two groups", p.html, "Select one group at a time")

	// Replay the older one.
	p = e.ada.post(act, url.Values{"action": {"replay"}, "id": {ids[1]}, "rate_per_second": {"50"}, "batch_size": {"10"}})
	u, err := url.Parse(p.location)
	if err != nil || u.Path != e.path() || u.Query().Get("replay") == "" {
		t.Fatalf("replay: went to %q (%d)\n%s", p.location, p.status, p.html)
	}
	watched := p.location
	wantIn(t, "the watched replay", p.html, `data-testid="replay-panel"`, `data-testid="replay-pause"`, `data-watch="`+u.Query().Get("replay")+`"`)
	done := e.waitPage(watched, "at 100%", func(p page) bool { return strings.Contains(p.raw, `aria-valuenow="100"`) })
	wantIn(t, "the finished replay", done.html, "1 of 1 confirmed", `value="100"`)
	wantIn(t, "the history", between(t, done.html, `data-testid="dlq-replays"`, "</table>"), "?replay="+u.Query().Get("replay"), "ada@example.com")

	if m := e.replayed(); m.MessageId != "order-1" || m.Headers[dlq.HeaderReplayID] != u.Query().Get("replay") {
		t.Fatalf("on %s: %q with headers %v, want order-1 with %s", e.work, m.MessageId, m.Headers, dlq.HeaderReplayID)
	}
	e.waitPage(e.path(), "the replayed message marked", func(p page) bool {
		return strings.Contains(between(t, p.raw, `data-testid="dlq-status-`+ids[1]+`"`, "</td>"), dlq.Replayed)
	})

	// The controls: a finished replay cannot be paused; the page says so.
	e.waitPage(watched, "done", func(p page) bool { return strings.Contains(p.raw, `data-testid="replay-state">done<`) })
	control := e.path() + "/replays/" + u.Query().Get("replay")
	p = e.ada.post(control, url.Values{"_csrf": {e.ada.csrf(watched)}, "action": {"pause"}})
	if p.status != http.StatusOK || p.location != watched || !strings.Contains(p.html, "only a running replay can pause") {
		t.Errorf("pausing a finished replay: %d at %q\n%s", p.status, p.location, p.html)
	}
	p = e.ada.post(control, url.Values{"_csrf": {e.ada.csrf(watched)}, "action": {"explode"}})
	wantIn(t, "an unknown control", p.html, "Choose pause, resume or cancel")
	e.ada.get(e.path()+"?replay=not-a-uuid", http.StatusNotFound)
	e.ada.get(e.path()+"?replay=00000000-0000-0000-0000-000000000001", http.StatusNotFound)

	// Pause, resume and cancel a replay that cannot advance: with the
	// server's replay runner stopped it stays running at 0%.
	e.srv.Replays.Close()
	p = e.ada.post(act, url.Values{"action": {"replay"}, "id": {ids[0]}})
	second, err := url.Parse(p.location)
	if err != nil || second.Query().Get("replay") == "" {
		t.Fatalf("second replay: went to %q (%d)\n%s", p.location, p.status, p.html)
	}
	control = e.path() + "/replays/" + second.Query().Get("replay")
	state := func(p page) string {
		return strings.TrimSuffix(strings.TrimPrefix(between(t, p.raw, `data-testid="replay-state">`, "<"), `data-testid="replay-state">`), "<")
	}
	if s := state(p); s != dlq.Running || !strings.Contains(p.raw, `aria-valuenow="0"`) {
		t.Fatalf("the second replay is %q, want running at 0%%", s)
	}
	for _, step := range []struct{ action, want string }{{"pause", dlq.Paused}, {"resume", dlq.Running}, {"pause", dlq.Paused}, {"cancel", dlq.Cancelled}} {
		p = e.ada.post(control, url.Values{"_csrf": {e.ada.csrf(p.location)}, "action": {step.action}})
		if s := state(p); p.status != http.StatusOK || s != step.want {
			t.Fatalf("%s: %d, replay %q, want %q\n%s", step.action, p.status, s, step.want, p.html)
		}
		// Only the controls that apply are shown.
		for control, shown := range map[string]bool{"pause": step.want == dlq.Running, "resume": step.want == dlq.Paused,
			"cancel": step.want != dlq.Cancelled} {
			if got := !strings.Contains(p.raw, `data-testid="replay-`+control+`" hidden`); got != shown {
				t.Errorf("%s, replay %s: the %s button shown: %v, want %v", step.action, step.want, control, got, shown)
			}
		}
	}
	// Cancelled before it sent anything: the message is dead again.
	wantIn(t, "the message of the cancelled replay", between(t, e.ada.get(e.path(), http.StatusOK).raw, `data-testid="dlq-status-`+ids[0]+`"`, "</td>"), dlq.Dead)
}

// Discarding asks for a confirmation; someone who may browse but not read
// payloads, replay or discard sees the redacted message and no actions,
// and is refused when posting anyway.
func TestDLQPages_DiscardConfirmationAndRedaction(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t)
	e.deadLetter(amqp.Publishing{MessageId: "card-1", ContentType: "application/json", Body: []byte(`{"card":"4111111111111111","amount":5}`),
		Headers: amqp.Table{"x-secret": "hunter2"}})
	id := rowIDs(e.ada.get(e.path(), http.StatusOK).raw)[0]
	api(t, e.srv, e.owner, http.MethodPatch, "/api/v1/tenants/acme/dlq/"+e.ref(),
		map[string]any{"redaction": map[string]any{"headers": []string{"x-secret"}, "json_paths": []string{"$.card"}}}, http.StatusOK)

	// A viewer: the page, redacted, without actions.
	signup(t, e.srv, "val@example.com", "")
	api(t, e.srv, e.owner, http.MethodPost, "/api/v1/tenants/acme/members", map[string]string{"email": "val@example.com", "role": "viewer"}, http.StatusCreated)
	val := newBrowser(t, e.srv, "val@example.com")
	vp := val.get(e.path(), http.StatusOK)
	drawer := between(t, vp.html, `data-testid="dlq-drawer-`+id+`"`, "</details>")
	wantIn(t, "the viewer's drawer", drawer, `"amount": 5`, "[redacted]")
	wantNotIn(t, "the viewer's drawer", drawer, "4111111111111111", "hunter2")
	wantNotIn(t, "the viewer's page", vp.html, `data-testid="dlq-actions"`, `name="group"`)
	frag := val.get(e.path()+"/messages/"+id, http.StatusOK)
	wantNotIn(t, "the viewer's drawer fragment", frag.html, "4111111111111111", "hunter2")
	// Posting anyway: refused (not a failure), nothing discarded.
	for _, action := range []string{"discard", "replay"} {
		r := val.do(http.MethodPost, e.path()+"/act", url.Values{"_csrf": {val.csrf(e.path())}, "action": {action}, "id": {id}, "confirm": {"true"}})
		if r.status != http.StatusForbidden {
			t.Errorf("a viewer's %s: %d, want 403", action, r.status)
		}
	}
	// The owner reads it all.
	drawer = between(t, e.ada.get(e.path(), http.StatusOK).html, `data-testid="dlq-drawer-`+id+`"`, "</details>")
	wantIn(t, "the owner's drawer", drawer, "4111111111111111", "hunter2")

	// Discard: first without the confirmation, then with it.
	p := e.ada.post(e.path()+"/act", url.Values{"action": {"discard"}, "id": {id}})
	wantIn(t, "discarding unconfirmed", p.html, "Tick the confirmation to discard")
	wantIn(t, "the message after an unconfirmed discard", between(t, p.raw, `data-testid="dlq-status-`+id+`"`, "</td>"), dlq.Dead)
	p = e.ada.post(e.path()+"/act", url.Values{"action": {"discard"}, "id": {id}, "confirm": {"true"}})
	wantIn(t, "discarding", p.html, "1 messages discarded.")
	wantIn(t, "the discarded message", between(t, p.raw, `data-testid="dlq-status-`+id+`"`, "</td>"), dlq.Discarded)
	// Again: nothing dead is selected; said on the page.
	p = e.ada.post(e.path()+"/act", url.Values{"action": {"discard"}, "id": {id}, "confirm": {"true"}})
	if p.status != http.StatusOK || !strings.Contains(p.html, "no dead message") {
		t.Errorf("discarding a discarded message: %d\n%s", p.status, p.html)
	}
}

// between returns the part of s from the first start up to and including
// the first end after it, failing the test when either is missing.
func between(t testing.TB, s, start, end string) string {
	t.Helper()
	i := strings.Index(s, start)
	if i < 0 {
		t.Fatalf("%q not found in:\n%s", start, s)
	}
	j := strings.Index(s[i:], end)
	if j < 0 {
		t.Fatalf("%q not found after %q", end, start)
	}
	return s[i : i+j+len(end)]
}

// postJSON posts body as JSON to path with the session's cookie and, when
// csrf is not empty, its CSRF token in the header, as the page's script
// does.
func (b *browser) postJSON(path string, body any, csrf string) page {
	b.t.Helper()
	buf, err := json.Marshal(body)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, b.base+path, bytes.NewReader(buf))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	return b.send(req)
}

// problemDoc is the part of a problem+json answer the page's script reads.
type problemDoc struct {
	Detail string            `json:"detail"`
	Code   string            `json:"code"`
	Errors map[string]string `json:"errors"`
}

func decodeProblem(t *testing.T, what string, p page, status int) problemDoc {
	t.Helper()
	if p.status != status || !strings.HasPrefix(p.ctype, "application/problem+json") {
		t.Fatalf("%s: %d %s, want %d problem+json\n%s", what, p.status, p.ctype, status, p.raw)
	}
	var d problemDoc
	if err := json.Unmarshal([]byte(p.raw), &d); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, p.raw)
	}
	return d
}

// A drawer offers "Edit and replay" to those who may replay: the body in a
// text box (JSON indented with its keys in their order), the headers with
// the broker's read-only, the original destination as the target; for a
// binary body it says why the body is not edited; those who may not replay
// get no form.
func TestDLQPages_EditFormInTheDrawer(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t)
	e.deadLetter(
		amqp.Publishing{MessageId: "order-42", ContentType: "application/json", Body: []byte(`{"order":42,"lines":[1,2],"total":12345678901234567890}`),
			Headers: amqp.Table{"x-tenant-region": "eu", "x-attempt": int32(3), "x-flags": amqp.Table{"a": true}}},
		amqp.Publishing{MessageId: "blob-1", ContentType: "application/octet-stream", Body: []byte{0x00, 0x01, 0xfe, 0xff, 'A'}},
	)
	p := e.ada.get(e.path(), http.StatusOK)
	ids := rowIDs(p.raw)
	blob, order := ids[0], ids[1]

	form := between(t, p.html, `data-edit-form data-id="`+order+`"`, `data-testid="dlq-edit-plan-`+order+`"`)
	wantIn(t, "the JSON message's edit form", form,
		`data-kind="queue"`, `data-edit="body" data-json="true"`,
		// Indented, keys in their order, numbers as written.
		"{\n  \"order\": 42,\n  \"lines\": [\n    1,\n    2\n  ],\n  \"total\": 12345678901234567890\n}</textarea>",
		`<tr data-header="x-tenant-region" data-type="string" data-mode="edit">`, `value="eu" data-edit="value"`,
		`<tr data-header="x-attempt" data-type="int32" data-mode="edit">`, `value="3" data-edit="value"`,
		`<tr data-header="x-flags" data-type="table" data-mode="remove">`, `aria-label="Remove header x-flags"`,
		`<tr data-header="x-death" data-type="array" data-mode="broker">`, "set by the broker or the replay",
		`data-error-for="edit.headers.x-attempt"`, `data-error-for="edit.body"`, `data-error-for="target"`,
		`value="" data-edit="exchange"`, `value="`+e.work+`" data-edit="routing_key"`, "It was going to queue "+e.work,
		`data-edit-action="preview"`, `data-edit-action="replay"`, `data-edit-action="add-header"`)
	wantNotIn(t, "the JSON message's edit form", form, `aria-label="Remove header x-death"`, ` name="`) // the page's form must not send it
	blobEdit := between(t, p.html, `data-testid="dlq-edit-`+blob+`"`, "</details>")
	wantIn(t, "the binary message's edit form", blobEdit, `data-testid="dlq-edit-body-fixed-`+blob+`"`, "editing is not offered", "5 bytes that are not UTF-8")
	wantNotIn(t, "the binary message's edit form", blobEdit, "<textarea")

	// The drawer a live row fetches has the form too.
	wantIn(t, "the drawer fragment", e.ada.get(e.path()+"/messages/"+order, http.StatusOK).html, `data-testid="dlq-edit-form-`+order+`"`)

	// A viewer gets no form, on the page or in the fragment.
	signup(t, e.srv, "val@example.com", "")
	api(t, e.srv, e.owner, http.MethodPost, "/api/v1/tenants/acme/members", map[string]string{"email": "val@example.com", "role": "viewer"}, http.StatusCreated)
	val := newBrowser(t, e.srv, "val@example.com")
	wantNotIn(t, "the viewer's page", val.get(e.path(), http.StatusOK).html, "dlq-edit")
	wantNotIn(t, "the viewer's drawer fragment", val.get(e.path()+"/messages/"+order, http.StatusOK).html, "dlq-edit")
}

// The form is not offered, and says why, for a message that cannot be
// replayed or whose payload the viewer may not read.
func TestDLQMessage_EditRefusedSaysWhy(t *testing.T) {
	t.Parallel()
	m := dlq.Message{ID: 9, DLQ: "queue:orders.dlq", Status: dlq.Dead, ContentType: "application/json", Body: `{"a":1}`, BodyEncoding: "text",
		Headers: dlq.Headers{}}
	render := func(v views.DLQMessageView) string {
		var buf bytes.Buffer
		if err := views.DLQMessage(v).Render(t.Context(), &buf); err != nil {
			t.Fatal(err)
		}
		return html.UnescapeString(buf.String())
	}
	wantIn(t, "a dead message's drawer", render(views.DLQMessageView{Message: m, CanReplay: true, Payloads: true}), `data-testid="dlq-edit-form-9"`)
	wantNotIn(t, "the drawer of one who may not replay", render(views.DLQMessageView{Message: m, Payloads: true}), "dlq-edit")
	for why, c := range map[string]struct {
		change   func(*dlq.Message)
		payloads bool
	}{
		"Only a dead message is replayed; this one is replayed.": {func(m *dlq.Message) { m.Status = dlq.Replayed }, true},
		"The loop guard holds this message back":                 {func(m *dlq.Message) { m.Held = true }, true},
		"it was over the capture's size cap":                     {func(m *dlq.Message) { m.Truncated = true }, true},
		"You may replay this DLQ but not read its payloads":      {func(*dlq.Message) {}, false},
		"not read its payloads: an edit would start from":        {func(m *dlq.Message) { m.Body, m.BodyEncoding = "", "redacted" }, true},
	} {
		mm := m
		c.change(&mm)
		got := render(views.DLQMessageView{Message: mm, CanReplay: true, Payloads: c.payloads})
		wantIn(t, why, got, `data-testid="dlq-edit-refused-9"`, why)
		wantNotIn(t, why, got, "data-edit-form")
	}
}

// The drawer's script posts the REST API's replay request to the page:
// a dry run answers the plan and sends nothing; bad edits are problem+json
// naming their fields; the replay publishes the edited message with the
// replay's header, and the page it names follows it to 100%. Without the
// CSRF token, replay rights or the organisation: refused.
func TestDLQPages_EditAndReplayThroughThePageScript(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t)
	e.deadLetter(amqp.Publishing{MessageId: "order-7", ContentType: "application/json", Body: []byte(`{"order":7}`),
		Headers: amqp.Table{"x-tenant-region": "eu", "x-attempt": int32(3), "x-drop-me": "x"}})
	id := atoi(t, rowIDs(e.ada.get(e.path(), http.StatusOK).raw)[0])
	to := e.path() + "/replays"
	csrf := e.ada.csrf(e.path())
	edit := map[string]any{"body": `{"order": 7, "fixed": true}`, "body_encoding": "text",
		"headers":        map[string]any{"x-tenant-region": map[string]any{"type": "string", "value": "us"}, "x-attempt": map[string]any{"type": "int32", "value": 4}},
		"remove_headers": []string{"x-drop-me"}}
	req := func(dry bool, edit any) map[string]any {
		return map[string]any{"message_ids": []int64{id}, "dry_run": dry, "edit": edit}
	}

	// The preview: the plan, nothing sent.
	p := e.ada.postJSON(to, req(true, edit), csrf)
	if p.status != http.StatusOK {
		t.Fatalf("dry run: %d\n%s", p.status, p.raw)
	}
	var plan struct {
		Plan   dlq.Plan    `json:"plan"`
		Replay *dlq.Replay `json:"replay"`
	}
	if err := json.Unmarshal([]byte(p.raw), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Replay != nil || plan.Plan.Replay != 1 || len(plan.Plan.Destinations) != 1 || plan.Plan.Destinations[0].Destination.Queue != e.work {
		t.Fatalf("dry run answered %s", p.raw)
	}
	if q, err := e.ch.QueueDeclarePassive(e.work, true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Fatalf("after a dry run the work queue holds %d (%v)", q.Messages, err)
	}

	// Bad edits: problem+json naming the field.
	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"a body that is not JSON", req(true, map[string]any{"body": `{"order": 7,`}), "edit.body"},
		{"an int32 out of range", req(true, map[string]any{"headers": map[string]any{"x-attempt": map[string]any{"type": "int32", "value": 99999999999}}}), "edit.headers.x-attempt"},
		{"a replay header", req(true, map[string]any{"headers": map[string]any{"x-switchboard-replay-id": map[string]any{"type": "string", "value": "mine"}}}), "edit.headers.x-switchboard-replay-id"},
		{"an edit of two messages", map[string]any{"message_ids": []int64{id, id + 1}, "dry_run": true, "edit": edit}, "edit"},
		{"a target that is this DLQ", map[string]any{"message_ids": []int64{id}, "dry_run": true, "target": map[string]any{"exchange": "", "routing_key": e.dead}}, "target"},
	} {
		p := e.ada.postJSON(to, c.body, csrf)
		d := decodeProblem(t, c.name, p, map[bool]int{true: http.StatusUnprocessableEntity, false: http.StatusBadRequest}[c.field == "target"])
		if d.Errors[c.field] == "" {
			t.Errorf("%s: errors %v, want one on %s", c.name, d.Errors, c.field)
		}
	}
	decodeProblem(t, "an unknown field", e.ada.postJSON(to, map[string]any{"message_ids": []int64{id}, "dry_run": true, "speed": "max"}, csrf), http.StatusBadRequest)

	// Refused: no CSRF token, a viewer, another organisation, a DLQ that is not.
	if p := e.ada.postJSON(to, req(false, edit), ""); p.status != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d, want 403", p.status)
	}
	signup(t, e.srv, "val@example.com", "")
	api(t, e.srv, e.owner, http.MethodPost, "/api/v1/tenants/acme/members", map[string]string{"email": "val@example.com", "role": "viewer"}, http.StatusCreated)
	val := newBrowser(t, e.srv, "val@example.com")
	decodeProblem(t, "a viewer's replay", val.postJSON(to, req(false, edit), val.csrf(e.path())), http.StatusForbidden)
	signup(t, e.srv, "eve@example.com", "globex")
	eve := newBrowser(t, e.srv, "eve@example.com")
	if p := eve.postJSON(to, req(false, edit), eve.csrf("/t/globex/dlq")); p.status != http.StatusNotFound {
		t.Errorf("another organisation's replay: %d, want 404", p.status)
	}
	decodeProblem(t, "a queue that is not a DLQ", e.ada.postJSON("/t/acme/dlq/queue:"+e.work+"/replays", req(true, edit), csrf), http.StatusNotFound)

	// The replay: 202, the page that follows it, the edited message on its queue.
	p = e.ada.postJSON(to, req(false, edit), csrf)
	if p.status != http.StatusAccepted {
		t.Fatalf("replay: %d\n%s", p.status, p.raw)
	}
	var started struct {
		Replay dlq.Replay `json:"replay"`
		Watch  string     `json:"watch"`
	}
	if err := json.Unmarshal([]byte(p.raw), &started); err != nil {
		t.Fatal(err)
	}
	if started.Watch != e.path()+"?replay="+started.Replay.ID.String() {
		t.Fatalf("the replay's page is %q", started.Watch)
	}
	e.waitPage(started.Watch, "at 100%", func(p page) bool { return strings.Contains(p.raw, `aria-valuenow="100"`) })
	if m := e.replayed(); string(m.Body) != `{"order": 7, "fixed": true}` || m.Headers["x-tenant-region"] != "us" || m.Headers["x-attempt"] != int32(4) ||
		m.Headers["x-drop-me"] != nil || m.Headers[dlq.HeaderReplayID] != started.Replay.ID.String() || m.MessageId != "order-7" {
		t.Fatalf("on %s: %q %s with headers %v", e.work, m.MessageId, m.Body, m.Headers)
	}
	// Replayed: its drawer no longer offers the edit.
	e.waitPage(e.path(), "the message replayed", func(p page) bool {
		return strings.Contains(between(t, p.raw, `data-testid="dlq-status-`+fmt.Sprint(id)+`"`, "</td>"), dlq.Replayed)
	})
	wantIn(t, "the replayed message's drawer", e.ada.get(e.path()+"/messages/"+fmt.Sprint(id), http.StatusOK).html, "Only a dead message is replayed")
}
