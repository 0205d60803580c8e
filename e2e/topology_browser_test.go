package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"switchboard/e2e/client"
)

// catalogCall sends a JSON request to the REST API with api's bearer token
// and fails the test unless it answers 2xx.
func catalogCall(t *testing.T, ctx context.Context, s *server, api *client.Client, method, path string, body any) {
	t.Helper()
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		mustOK(t, "encode "+path, err)
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, in)
	mustOK(t, "build "+method+" "+path, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+api.Token())
	resp, err := http.DefaultClient.Do(req)
	mustOK(t, method+" "+path, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16)) // only for the failure message
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		t.Fatalf("%s %s answered %d: %s", method, path, resp.StatusCode, raw)
	}
}

// TestTopology_DrawARelationAndSeeProblemsLive registers a service and a
// queue through the REST API, draws a publishes relation between them by
// clicking the two nodes on the graph, reloads and finds the edge in the
// page's list of relations, then changes the queue's consumers through the
// API and watches its no_consumer problem go and come back without a
// reload.
func TestTopology_DrawARelationAndSeeProblemsLive(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	_, err := api.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments"})
	mustOK(t, "create the team", err)
	base := "/api/v1/tenants/acme"
	catalogCall(t, ctx, s, api, http.MethodPost, base+"/services", map[string]any{"name": "checkout", "owner_team": "payments",
		"description": "takes orders", "labels": map[string]string{"env": "prod"}, "endpoints": []map[string]string{{"url": "http://10.0.0.5:8080", "protocol": "http"}}})
	catalogCall(t, ctx, s, api, http.MethodPost, base+"/brokers", map[string]any{"name": "main-rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://127.0.0.1:5672/"})
	catalogCall(t, ctx, s, api, http.MethodPost, base+"/queues", map[string]any{"name": "orders", "broker": "main-rabbit", "vhost": "/", "owner_team": "payments"})

	b := newBrowser(t, s)
	graphReady := `document.body.dataset.graphReady === '3'`
	b.login(t, s, "ada@example.com", "/t/acme/topology", chromedp.WaitVisible(chromedp.CSS(`[data-testid="topology-canvas"]`)))
	b.waitFor(t, "the graph to be laid out", graphReady)
	b.waitFor(t, "the live stream to connect", `document.querySelector('[data-testid="topology"]').getAttribute('data-live') === 'live'`)

	// Draw: "Pick on graph", then click the service, then the queue.
	value(t, b, "bring the graph into view", chromedp.Evaluate[bool](
		`document.getElementById('topology-canvas').scrollIntoView({block: 'start'}), true`))
	b.do(t, "start picking", chromedp.Click(chromedp.CSS(`[data-testid="topology-pick"]`)))
	value(t, b, "bring the graph into view again", chromedp.Evaluate[bool](
		`document.getElementById('topology-canvas').scrollIntoView({block: 'start'}), true`))
	for _, ref := range []string{"service:checkout", "queue:orders"} {
		type point struct{ X, Y float64 }
		pt := value(t, b, "find "+ref+" on the canvas", chromedp.Evaluate[point](`window.SwitchboardTopology.point(`+jsString(ref)+`)`))
		b.do(t, "click "+ref, chromedp.MouseClickXY(pt.X, pt.Y))
	}
	from := value(t, b, "read the picked source", chromedp.Value(chromedp.ID("relation-from")))
	to := value(t, b, "read the picked target", chromedp.Value(chromedp.ID("relation-to")))
	if from != "service:checkout" || to != "queue:orders" {
		b.fail(t, "clicking the two nodes picked %q → %q, want service:checkout → queue:orders", from, to)
	}
	b.do(t, "choose publishes and add the relation",
		chromedp.SetValue(chromedp.ID("relation-type"), "publishes"),
		chromedp.Click(chromedp.CSS(`[data-testid="topology-relate-submit"]`)),
	)
	b.waitFor(t, "the relation to be added", `document.querySelector('[data-testid="topology-pick-state"]').textContent.startsWith('Added')`)

	// Reload: the edge is there, in the list of relations.
	edgeRow := `document.querySelector('#topology-edges tr[data-from="service:checkout"][data-type="publishes"][data-to="queue:orders"]')`
	b.do(t, "reload the page", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-testid="topology-canvas"]`)))
	b.waitFor(t, "the graph to be laid out after the reload", graphReady)
	b.do(t, "open the lists", chromedp.Click(chromedp.CSS(`#topology-lists > summary`)))
	b.waitFor(t, "the drawn edge in the list of relations", edgeRow)
	png := value(t, b, "take a screenshot", chromedp.FullScreenshot(100))
	shot := filepath.Join(t.TempDir(), "topology.png")
	mustOK(t, "save the screenshot", os.WriteFile(shot, png, 0o644))
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("the screenshot %s is not a PNG", shot)
	}
	t.Logf("screenshot: %s", shot)
	b.screenshot(t, "topology-edge")

	// Live: the queue's no_consumer problem follows its consumers.
	b.waitFor(t, "the live stream to connect after the reload", `document.querySelector('[data-testid="topology"]').getAttribute('data-live') === 'live'`)
	value(t, b, "mark the page", chromedp.Evaluate[bool](`window.__notReloaded = true`))
	queueProblems := `(document.querySelector('#topology-nodes tr[data-id="queue:orders"]') || {dataset: {}}).dataset.problems`
	b.waitFor(t, "the queue's no_consumer problem", queueProblems+` !== undefined && `+queueProblems+`.split(' ').includes('no_consumer')`)
	consumes := map[string]string{"from": "service:checkout", "type": "consumes", "to": "queue:orders"}
	catalogCall(t, ctx, s, api, http.MethodPost, base+"/relations", consumes)
	b.waitFor(t, "the problem to go once something consumes the queue", queueProblems+` !== undefined && !`+queueProblems+`.split(' ').includes('no_consumer')`)
	b.waitFor(t, "the consumes edge in the list", `document.querySelector('#topology-edges tr[data-type="consumes"][data-to="queue:orders"]')`)
	catalogCall(t, ctx, s, api, http.MethodDelete, base+"/relations", consumes)
	b.waitFor(t, "the problem marker to come back live", queueProblems+` !== undefined && `+queueProblems+`.split(' ').includes('no_consumer')`)
	b.waitFor(t, "the consumes edge to leave the list", `!document.querySelector('#topology-edges tr[data-type="consumes"][data-to="queue:orders"]')`)
	if !value(t, b, "check the page was never reloaded", chromedp.Evaluate[bool](`window.__notReloaded === true`)) {
		b.fail(t, "the page was reloaded: the problem came back through a reload, not live")
	}
	b.screenshot(t, "topology-problem-live")

	// Delete the drawn relation from the list (the keyboard's way to what
	// selecting the edge on the canvas does).
	b.do(t, "delete the drawn relation", chromedp.Click(chromedp.CSS(
		`#topology-edges tr[data-from="service:checkout"][data-type="publishes"] [data-action="unrelate"]`)))
	b.waitFor(t, "the drawn edge to leave the list", "!"+edgeRow)

	if errs := b.scriptErrors(); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestTopology_CatalogPagesShowErrorsProblemsAndHistory drives the catalog
// pages: a broker and a queue made with the forms; a queue with a bad name is refused at its field; the
// queue's page shows its problems, its relations and its history; it is
// deleted only once the confirmation box is ticked; a saved topology view
// opens from its URL.
func TestTopology_CatalogPagesShowErrorsProblemsAndHistory(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	_, err := api.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments"})
	mustOK(t, "create the team", err)
	b := newBrowser(t, s)
	b.login(t, s, "ada@example.com", "/t/acme/catalog?kind=broker", chromedp.WaitVisible(chromedp.CSS(`[data-testid="entity-create-form"]`)))

	b.do(t, "create a broker",
		chromedp.SendKeys(chromedp.ID("name"), "main-rabbit"),
		chromedp.SetValue(chromedp.ID("owner_team"), "payments"),
		chromedp.SendKeys(chromedp.ID("url"), "amqp://127.0.0.1:5672/"),
		chromedp.Click(chromedp.CSS(`[data-testid="entity-create"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="entity-ref"]`)),
	)
	if ref := value(t, b, "read the entity", chromedp.Text(chromedp.CSS(`[data-testid="entity-ref"]`))); ref != "broker:main-rabbit" {
		b.fail(t, "landed on %q, want broker:main-rabbit", ref)
	}
	if owner := value(t, b, "read the owner", chromedp.Text(chromedp.CSS(`[data-testid="entity-owner"]`))); owner != "payments" {
		b.fail(t, "the broker's owner reads %q, want payments", owner)
	}

	b.do(t, "try a queue with a name RabbitMQ reserves",
		chromedp.Navigate(s.URL+"/t/acme/catalog?kind=queue"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="entity-create-form"]`)),
		chromedp.SendKeys(chromedp.ID("name"), "amq.orders"),
		chromedp.SetValue(chromedp.ID("broker"), "main-rabbit"),
		chromedp.SetValue(chromedp.ID("owner_team"), "payments"),
		chromedp.Click(chromedp.CSS(`[data-testid="entity-create"]`)),
		chromedp.WaitVisible(chromedp.ID("name-error")),
	)
	b.do(t, "create the queue",
		chromedp.SetValue(chromedp.ID("name"), "orders"),
		chromedp.Click(chromedp.CSS(`[data-testid="entity-create"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="entity-ref"]`)),
	)
	problems := value(t, b, "read the problems", chromedp.Text(chromedp.CSS(`[data-testid="entity-problems"]`)))
	if !strings.Contains(problems, "no_consumer") {
		b.fail(t, "the queue's problems read %q, want no_consumer", problems)
	}
	history := value(t, b, "read the history", chromedp.Text(chromedp.CSS(`[data-testid="entity-history"]`)))
	if !strings.Contains(history, "queue.created") {
		b.fail(t, "the queue's history reads %q, want queue.created", history)
	}
	b.screenshot(t, "queue-page")

	b.do(t, "delete without ticking the box",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('confirm').required = false`),
		chromedp.Click(chromedp.CSS(`[data-testid="entity-delete"]`)),
		chromedp.WaitVisible(chromedp.ID("confirm-error")),
	)
	b.do(t, "delete with the box ticked",
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.Click(chromedp.CSS(`[data-testid="entity-delete"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="catalog-kinds"]`)),
	)
	if f := b.flash(t); !strings.Contains(f, "queue:orders is deleted") {
		b.fail(t, "the flash reads %q", f)
	}

	b.do(t, "save a view of the topology",
		chromedp.Navigate(s.URL+"/t/acme/topology?kind=broker"),
		chromedp.WaitVisible(chromedp.ID("topology-canvas")),
	)
	b.waitFor(t, "the graph of brokers", `document.body.dataset.graphReady === '1'`)
	b.do(t, "name and save the view",
		chromedp.SendKeys(chromedp.ID("view-name"), "brokers"),
		chromedp.Click(chromedp.CSS(`[data-testid="topology-save-view"] button[type=submit]`)),
	)
	b.waitFor(t, "the view's link", `document.querySelector('[data-testid="topology-view-link"] a')`)
	link := value(t, b, "read the view's link", chromedp.Evaluate[string](`document.querySelector('[data-testid="topology-view-link"] a').href`))
	b.do(t, "open the view", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("topology-canvas")))
	b.waitFor(t, "the saved view's graph", `document.body.dataset.graphReady === '1'`)
	if kind := value(t, b, "read the kind filter", chromedp.Value(chromedp.ID("kind"))); kind != "broker" {
		b.fail(t, "the saved view opened with kind %q, want broker", kind)
	}

	// Import: every error at its document and line, nothing applied; then
	// the fixed file applies and its source's last import is listed.
	bad := "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: billing\nspec:\n  type: service\n  owner: payments\n" +
		"---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Not A Valid Name!\nspec:\n  type: service\n  owner: payments\n"
	b.do(t, "import a file with an error",
		chromedp.Navigate(s.URL+"/t/acme/catalog/import"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="import-form"]`)),
		chromedp.SetValue(chromedp.ID("source"), "repo/catalog-info.yaml"),
		chromedp.SetValue(chromedp.ID("yaml"), bad),
		chromedp.Click(chromedp.CSS(`[data-testid="import-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="import-result"]`)),
	)
	located := value(t, b, "read where the errors are", chromedp.Evaluate[bool](
		`[...document.querySelectorAll('[data-testid="import-result"] [data-testid="import-errors"] li')].some(li => li.dataset.document === '1' && li.textContent.includes('document 2') && +li.dataset.line > 0)`))
	if !located {
		text := value(t, b, "read the result", chromedp.Text(chromedp.CSS(`[data-testid="import-result"]`)))
		b.fail(t, "the import's errors do not name the second document and a line: %q", text)
	}
	good := strings.Replace(bad, "Not A Valid Name!", "ledger", 1)
	b.do(t, "import the fixed file",
		chromedp.SetValue(chromedp.ID("yaml"), good),
		chromedp.Click(chromedp.CSS(`[data-testid="import-submit"]`)),
		// The failed import is in the history too, so the new page is told
		// from the old one by its result.
		chromedp.WaitVisible(chromedp.Search(`//*[@data-testid="import-result"][contains(., "2 created")]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="import-history"] tr[data-source="repo/catalog-info.yaml"]`)),
	)
	b.screenshot(t, "import")

	if errs := b.scriptErrorsBut(422); len(errs) > 0 {
		t.Errorf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestTopology_BrokerCredentialsAreNeverShownBack creates a broker through
// the form with a URL holding a user and password: the broker's page says
// credentials are stored and never shows them, nor does its edit form.
func TestTopology_BrokerCredentialsAreNeverShownBack(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	s := startServer(t)
	ctx := t.Context()
	api := signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	_, err := api.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments"})
	mustOK(t, "create the team", err)
	b := newBrowser(t, s)
	b.login(t, s, "ada@example.com", "/t/acme/catalog?kind=broker", chromedp.WaitVisible(chromedp.CSS(`[data-testid="entity-create-form"]`)))
	const secret = "pa55-w0rd-never-shown"
	b.do(t, "create a broker with credentials in its URL",
		chromedp.SendKeys(chromedp.ID("name"), "main-rabbit"),
		chromedp.SetValue(chromedp.ID("owner_team"), "payments"),
		chromedp.SendKeys(chromedp.ID("url"), "amqp://app:"+secret+"@127.0.0.1:5672/"),
		chromedp.Click(chromedp.CSS(`[data-testid="entity-create"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="entity-ref"], [data-testid="form-error"]`)),
	)
	html := value(t, b, "read the page", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if strings.Contains(html, secret) {
		b.fail(t, "the page after the broker form shows the password")
	}
	b.waitFor(t, "the broker's page", `document.querySelector('[data-testid="entity-ref"]')`)
	html = value(t, b, "read the broker's page", chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if strings.Contains(html, secret) || strings.Contains(html, "app:") {
		b.fail(t, "the broker's page shows its credentials")
	}
	if !strings.Contains(html, "stored encrypted") {
		b.fail(t, "the broker's page does not say credentials are stored")
	}
}
