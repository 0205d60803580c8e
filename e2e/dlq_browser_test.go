package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/dlq"
)

// TestDLQ_DeadLetterArrivesLiveAndIsReplayedFromTheUI opens a DLQ's page,
// makes the broker dead-letter a message, sees its row appear without a
// reload, opens it, replays it from the page, watches the progress bar
// reach 100%, and finds the message back on its queue with the replay's
// header.
func TestDLQ_DeadLetterArrivesLiveAndIsReplayedFromTheUI(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api, work, dead, ch := dlqFixture(t, s)
	base := "/api/v1/tenants/acme"

	b := newBrowser(t, s)
	b.login(t, s, "ada@example.com", "/t/acme/dlq/queue:"+dead, chromedp.WaitVisible(chromedp.CSS(`[data-testid="dlq-page"]`)))
	b.waitFor(t, "the live stream to connect", `document.querySelector('[data-testid="dlq-live-state"]').textContent === '(live)'`)
	value(t, b, "mark the page", chromedp.Evaluate[bool](`window.__notReloaded = true`))

	mustOK(t, "publish", ch.Publish("", work, true, false, amqp.Publishing{MessageId: "order-42", ContentType: "application/json", Body: []byte(`{"order":42}`)}))
	rejectAll(t, ch, work, 1)
	row := `document.querySelector('#dlq-rows tr[data-id]')`
	b.waitFor(t, "the dead letter's row, live", row)
	if !value(t, b, "check the page was not reloaded", chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		b.fail(t, "the row came through a reload, not live")
	}
	id := value(t, b, "read the row's id", chromedp.Evaluate[string](row+`.dataset.id`))
	b.screenshot(t, "dlq-live-row")

	// The drawer of the live row: a click on the row opens it, and its
	// content (the payload) is fetched without reloading the page.
	b.do(t, "open the drawer by clicking the row",
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-row-`+id+`"] td:nth-child(4)`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="dlq-body-`+id+`"]`)))
	body := value(t, b, "read the body", chromedp.Text(chromedp.CSS(`[data-testid="dlq-body-`+id+`"]`)))
	if !strings.Contains(body, `"order": 42`) {
		b.fail(t, "the drawer shows %q, want the JSON pretty-printed", body)
	}
	if !value(t, b, "check the page was not reloaded", chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		b.fail(t, "the drawer came through a reload")
	}
	b.screenshot(t, "dlq-drawer")

	// Replay it from the page.
	b.do(t, "select it and replay",
		chromedp.Click(chromedp.CSS(`#dlq-rows input[value="`+id+`"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-replay"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="replay-panel"]`)))
	b.waitFor(t, "the progress bar at 100%", `document.querySelector('[data-testid="replay-progress"]').getAttribute('aria-valuenow') === '100'`)
	b.screenshot(t, "dlq-replayed")
	replayID := value(t, b, "read the watched replay", chromedp.Evaluate[string](`document.getElementById('dlq').dataset.watch`))

	deadline := time.Now().Add(20 * time.Second)
	for {
		m, ok, err := ch.Get(work, true)
		mustOK(t, "get", err)
		if ok {
			if m.MessageId != "order-42" || m.Headers[dlq.HeaderReplayID] != replayID {
				t.Fatalf("on %s: %q with headers %v", work, m.MessageId, m.Headers)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replayed message never reached %s", work)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Redaction from the page's settings.
	b.do(t, "open the settings and redact $.order",
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-settings"] > summary`)),
		chromedp.SetValue(chromedp.ID("redact_paths"), "$.order"),
		chromedp.Click(chromedp.CSS(`[data-testid="dlq-settings-save"]`)),
		// The page the save leads to: the one before it had no flash.
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))
	if f := b.flash(t); !strings.Contains(f, "Settings saved.") {
		b.fail(t, "saving the settings said %q", f)
	}
	var settings struct {
		Redaction struct {
			JSONPaths []string `json:"json_paths"`
		} `json:"redaction"`
	}
	getJSON(t, ctx, s, api, base+"/dlq/queue:"+dead, &settings)
	if len(settings.Redaction.JSONPaths) != 1 || settings.Redaction.JSONPaths[0] != "$.order" {
		t.Fatalf("the redaction saved from the page: %+v", settings.Redaction)
	}
	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
