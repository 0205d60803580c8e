package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/e2e/client"
	"switchboard/internal/connectors/rabbitmq/rabbittest"
)

// getJSON reads path from the REST API with api's bearer token into out.
func getJSON(t *testing.T, ctx context.Context, s *server, api *client.Client, path string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	mustOK(t, "build GET "+path, err)
	req.Header.Set("Authorization", "Bearer "+api.Token())
	resp, err := http.DefaultClient.Do(req)
	mustOK(t, "GET "+path, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	mustOK(t, "read "+path, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s answered %d: %s", path, resp.StatusCode, raw)
	}
	mustOK(t, "decode "+path, json.Unmarshal(raw, out))
}

// rabbitQueues declares on the machine's RabbitMQ a work queue that
// dead-letters into its DLQ (unique names, deleted when the test ends).
func rabbitQueues(t *testing.T) (work, dead string, ch *amqp.Channel) {
	t.Helper()
	return rabbittest.DeadLettering(t, "e2e-", amqp.Table{"x-queue-type": "quorum"})
}

// dlqFixture signs ada up in acme with a team, payments, that owns the
// machine's RabbitMQ broker and a work queue dead-lettering into its DLQ,
// declared on the broker (rabbitQueues) and registered in the catalog.
func dlqFixture(t *testing.T, s *server) (api *client.Client, work, dead string, ch *amqp.Channel) {
	t.Helper()
	ctx := t.Context()
	api = signupAndLogin(t, ctx, s, "ada@example.com", "acme")
	_, err := api.CreateTeam(ctx, "acme", client.CreateTeamRequest{Slug: "payments", Name: "Payments"})
	mustOK(t, "create the team", err)
	work, dead, ch = rabbitQueues(t)
	base := "/api/v1/tenants/acme"
	catalogCall(t, ctx, s, api, http.MethodPost, base+"/brokers", map[string]any{"name": "rabbit", "kind": "rabbitmq", "owner_team": "payments", "url": "amqp://guest:guest@127.0.0.1:5672/"})
	catalogCall(t, ctx, s, api, http.MethodPost, base+"/queues", map[string]any{"name": dead, "broker": "rabbit", "owner_team": "payments"})
	catalogCall(t, ctx, s, api, http.MethodPost, base+"/queues", map[string]any{"name": work, "broker": "rabbit", "owner_team": "payments", "dead_letter_queue": dead})
	return api, work, dead, ch
}

// rejectAll takes n messages off queue and rejects each (the broker
// dead-letters them).
func rejectAll(t *testing.T, ch *amqp.Channel, queue string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for got := 0; got < n; {
		d, ok, err := ch.Get(queue, false)
		mustOK(t, "get from "+queue, err)
		if !ok {
			if time.Now().After(deadline) {
				t.Fatalf("rejected %d of %d", got, n)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		mustOK(t, "reject", d.Reject(false))
		got++
	}
}

// A server killed with SIGKILL in the middle of a replay takes it up again
// when it restarts: every message ends replayed exactly once in the store,
// and arrives on its queue at least once (a batch in flight at the crash
// may arrive twice, each copy with the same replay id).
func TestDLQ_ReplaySurvivesAServerCrash(t *testing.T) {
	t.Parallel()
	const n = 300
	s := startServer(t)
	ctx := t.Context()
	api, work, dead, ch := dlqFixture(t, s)
	base := "/api/v1/tenants/acme"

	mustOK(t, "confirm mode", ch.Confirm(false))
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirm("", work, true, false, amqp.Publishing{MessageId: fmt.Sprintf("m-%03d", i), Body: []byte(fmt.Sprintf("order %d", i))})
		mustOK(t, "publish", err)
		if !dc.Wait() {
			t.Fatal("a publish was not confirmed")
		}
	}
	rejectAll(t, ch, work, n)
	d := base + "/dlq/queue:" + dead
	var dlq struct {
		Counts struct{ Dead, Replayed int } `json:"counts"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for dlq.Counts.Dead < n {
		getJSON(t, ctx, s, api, d, &dlq)
		if time.Now().After(deadline) {
			t.Fatalf("captured %d of %d", dlq.Counts.Dead, n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var started struct {
		Replay struct{ ID string } `json:"replay"`
	}
	startReplay(t, ctx, s, api, d+"/replays", map[string]any{"filter": map[string]any{"status": []string{"dead"}}, "rate_per_second": 100, "batch_size": 10}, &started)
	job := d + "/replays/" + started.Replay.ID
	type counts struct{ Total, Confirmed, Failed, Skipped int }
	var j struct {
		State  string
		Counts counts
	}
	for deadline := time.Now().Add(30 * time.Second); j.Counts.Confirmed < n/5; {
		getJSON(t, ctx, s, api, job, &j)
		if time.Now().After(deadline) {
			t.Fatalf("the replay did not get going: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill(t)
	t.Logf("killed the server with %d of %d confirmed", j.Counts.Confirmed, n)
	s2, err := launch(s.dbURL, s.DataDir, s.opts)
	mustOK(t, "restart the server", err)
	t.Cleanup(func() { s2.stop(t) })
	api2 := api // the same address and signing key: the token holds
	for deadline := time.Now().Add(60 * time.Second); j.State != "done"; {
		getJSON(t, ctx, s2, api2, job, &j)
		if time.Now().After(deadline) {
			t.Fatalf("the replay did not finish after the restart: %+v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if j.Counts != (counts{Total: n, Confirmed: n}) {
		t.Fatalf("counts after the crash: %+v", j.Counts)
	}
	getJSON(t, ctx, s2, api2, d, &dlq)
	if dlq.Counts.Replayed != n || dlq.Counts.Dead != 0 {
		t.Fatalf("the store after the crash: %+v", dlq.Counts)
	}
	// On the broker: every message at least once; twice at most those in
	// flight at the crash: the replay's pipeline holds up to five batches
	// marked sending (one read, two queued, one publishing, one recording).
	seen := map[string]int{}
	total := 0
	for {
		m, ok, err := ch.Get(work, true)
		mustOK(t, "get", err)
		if !ok {
			break
		}
		if m.Headers["x-switchboard-replay-id"] != started.Replay.ID {
			t.Fatalf("message %s carries replay id %v", m.MessageId, m.Headers["x-switchboard-replay-id"])
		}
		seen[m.MessageId]++
		total++
	}
	if len(seen) != n || total-n > 5*10 {
		t.Fatalf("the work queue holds %d distinct messages of %d, %d copies in all", len(seen), n, total)
	}
	t.Logf("%d messages arrived, %d of them twice (the batches in flight at the crash)", len(seen), total-n)
}

// startReplay posts a replay request and reads the 202 answer into out.
func startReplay(t *testing.T, ctx context.Context, s *server, api *client.Client, path string, body, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	mustOK(t, "encode", err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+path, bytes.NewReader(b))
	mustOK(t, "build POST "+path, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+api.Token())
	resp, err := http.DefaultClient.Do(req)
	mustOK(t, "POST "+path, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s answered %d: %s", path, resp.StatusCode, raw)
	}
	mustOK(t, "decode", json.Unmarshal(raw, out))
}
