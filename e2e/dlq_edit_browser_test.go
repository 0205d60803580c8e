package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/dlq"
)

// replayPosts is how many requests the server has answered on the DLQ
// page's replay route (the drawer's preview and replay), from its metrics.
func replayPosts(t *testing.T, ctx context.Context, s *server) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/metrics", nil)
	mustOK(t, "build GET /metrics", err)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	resp, err := http.DefaultClient.Do(req)
	mustOK(t, "GET /metrics", err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics answered %d", resp.StatusCode)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "switchboard_http_requests_total{") || !strings.Contains(line, `method="POST"`) ||
			!strings.Contains(line, `route="/t/:tenant/dlq/:ref/replays"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		mustOK(t, "read "+line, err)
		n += int(v)
	}
	mustOK(t, "read /metrics", sc.Err())
	return n
}

// TestDLQEdit_EditAJSONDeadLetterAndReplayItFromTheDrawer opens a dead
// letter captured from the real RabbitMQ in its drawer, edits its JSON body
// and a header in "Edit and replay", is refused an invalid JSON body in the
// form without a request being sent, sees the server's refusal of a target
// next to the target, previews where the edited message would go, replays
// it and watches the progress reach 100%, and reads the message from its
// original queue: the edited body, the changed header, the replay's header.
func TestDLQEdit_EditAJSONDeadLetterAndReplayItFromTheDrawer(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	_, work, dead, ch := dlqFixture(t, s)

	b := newBrowser(t, s)
	b.login(t, s, "ada@example.com", "/t/acme/dlq/queue:"+dead, chromedp.WaitVisible(chromedp.CSS(`[data-testid="dlq-page"]`)))
	b.waitFor(t, "the live stream to connect", `document.querySelector('[data-testid="dlq-live-state"]').textContent === '(live)'`)

	// A dead letter, made by the broker.
	mustOK(t, "publish", ch.Publish("", work, true, false, amqp.Publishing{MessageId: "order-42", ContentType: "application/json",
		Body: []byte(`{"order":42,"lines":[1,2]}`), Headers: amqp.Table{"x-tenant-region": "eu", "x-attempt": int32(3)}}))
	rejectAll(t, ch, work, 1)
	row := `document.querySelector('#dlq-rows tr[data-id]')`
	b.waitFor(t, "the dead letter's row", row)
	id := value(t, b, "read the row's id", chromedp.Evaluate[string](row+`.dataset.id`))
	form := `[data-testid="dlq-edit-form-` + id + `"]`
	body := `#dlq-edit-body-` + id

	// Its drawer (fetched: the row arrived live) and its edit form.
	b.do(t, "open the drawer, then Edit and replay",
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-row-`+id+`"] td:nth-child(4)`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dlq-edit-`+id+`"] > summary`)),
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-edit-`+id+`"] > summary`)),
		chromedp.WaitVisible(chromedp.CSS(body)))
	if got := value(t, b, "read the body to edit", chromedp.Value(chromedp.CSS(body))); got != "{\n  \"order\": 42,\n  \"lines\": [\n    1,\n    2\n  ]\n}" {
		b.fail(t, "the body to edit is %q, want the JSON indented in its own order", got)
	}
	if got := value(t, b, "read the routing key", chromedp.Value(chromedp.CSS(form+` [data-edit="routing_key"]`))); got != work {
		b.fail(t, "the target's routing key starts as %q, want the original %q", got, work)
	}
	if ro := value(t, b, "look at x-death", chromedp.Evaluate[bool](`!document.querySelector('`+form+` tr[data-header="x-death"] input, `+form+` tr[data-header="x-death"] button')`)); !ro {
		b.fail(t, "x-death can be edited or removed")
	}
	b.screenshot(t, "dlq-edit-form")

	// An invalid JSON body: refused in the form, no request sent (the
	// server counts none on the route; the valid preview below is counted).
	posts := replayPosts(t, ctx, s)
	bodyErr := form + ` [data-error-for="edit.body"]`
	for _, button := range []string{"preview", "replay"} {
		b.do(t, button+" with a body that is not JSON",
			chromedp.SetValue(chromedp.CSS(body), `{"order": 43,`),
			chromedp.Click(chromedp.CSS(`[data-testid="dlq-edit-`+button+`-`+id+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(bodyErr)))
		if msg := value(t, b, "read the body's error", chromedp.Text(chromedp.CSS(bodyErr))); !strings.Contains(msg, "is not valid JSON") {
			b.fail(t, "the body's error reads %q", msg)
		}
		if inv := value(t, b, "read aria-invalid", chromedp.Evaluate[string](`document.querySelector('`+body+`').getAttribute('aria-invalid') || ''`)); inv != "true" {
			b.fail(t, "the body is not marked invalid (%q)", inv)
		}
	}
	b.screenshot(t, "dlq-edit-invalid-json")
	if n := replayPosts(t, ctx, s); n != posts {
		t.Fatalf("an invalid JSON body sent %d requests", n-posts)
	}
	if loc := b.location(t); !strings.HasSuffix(loc, "/t/acme/dlq/queue:"+dead) {
		b.fail(t, "the page went to %s", loc)
	}

	// The server's refusal, next to the field it names: a target that is
	// the DLQ itself.
	const edited = `{"order": 43, "lines": [1, 2], "note": "fixed by hand"}`
	region := form + ` tr[data-header="x-tenant-region"] [data-edit="value"]`
	targetErr := form + ` [data-error-for="target"]`
	b.do(t, "edit the body and a header, aim at the DLQ itself and preview",
		chromedp.SetValue(chromedp.CSS(body), edited),
		chromedp.SetValue(chromedp.CSS(region), "us"),
		chromedp.SetValue(chromedp.CSS(form+` [data-edit="routing_key"]`), dead),
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-edit-preview-`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(targetErr)))
	if msg := value(t, b, "read the target's error", chromedp.Text(chromedp.CSS(targetErr))); !strings.Contains(msg, "is this DLQ") {
		b.fail(t, "the target's error reads %q", msg)
	}
	if hidden := value(t, b, "look at the body's error", chromedp.Evaluate[bool](`document.querySelector('`+bodyErr+`').hidden`)); !hidden {
		b.fail(t, "the body's old error is still shown")
	}

	// The preview: what would go where.
	plan := `[data-testid="dlq-edit-plan-` + id + `"]`
	b.do(t, "put the target back and preview",
		chromedp.SetValue(chromedp.CSS(form+` [data-edit="routing_key"]`), work),
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-edit-preview-`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(plan)))
	preview := value(t, b, "read the preview", chromedp.Text(chromedp.CSS(plan)))
	for _, want := range []string{"1 of 1 would be replayed.", "1 to queue " + work, "Changes: body edited; headers set: x-tenant-region."} {
		if !strings.Contains(preview, want) {
			b.fail(t, "the preview lacks %q: %q", want, preview)
		}
	}
	if hidden := value(t, b, "look at the target's error", chromedp.Evaluate[bool](`document.querySelector('`+targetErr+`').hidden`)); !hidden {
		b.fail(t, "the target's old error is still shown")
	}
	b.screenshot(t, "dlq-edit-preview")
	if q, err := ch.QueueDeclarePassive(work, true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Fatalf("after the preview %s holds %d messages (%v)", work, q.Messages, err)
	}

	// The replay, followed to 100%.
	b.do(t, "replay the edited message",
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-edit-replay-`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="replay-panel"]`)))
	b.waitFor(t, "the progress bar at 100%", `document.querySelector('[data-testid="replay-progress"]').getAttribute('aria-valuenow') === '100'`)
	b.screenshot(t, "dlq-edit-replayed")
	replayID := value(t, b, "read the watched replay", chromedp.Evaluate[string](`document.getElementById('dlq').dataset.watch`))
	if replayID == "" {
		b.fail(t, "the page follows no replay")
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		m, ok, err := ch.Get(work, true)
		mustOK(t, "get", err)
		if ok {
			if string(m.Body) != edited || m.Headers["x-tenant-region"] != "us" || m.Headers["x-attempt"] != int32(3) ||
				m.Headers[dlq.HeaderReplayID] != replayID || m.MessageId != "order-42" {
				t.Fatalf("on %s: %q %s with headers %v; want the edited body, x-tenant-region us, x-attempt 3 and replay %s",
					work, m.MessageId, m.Body, m.Headers, replayID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replayed message never reached %s", work)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The server answered three requests: the refused target, the preview
	// and the replay; the invalid JSON bodies sent none.
	if n := replayPosts(t, ctx, s); n != posts+3 {
		t.Errorf("the server counted %d requests on the replay route since the invalid bodies, want 3", n-posts)
	}
	// The one refusal the server answered (the target) is the only failed load.
	if errs := b.scriptErrorsBut(http.StatusUnprocessableEntity); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
