"use strict";
const test = require("node:test");
const assert = require("node:assert");
const DLQ = require("../dlq.js");

test("percent counts what is settled of the total", () => {
  assert.strictEqual(DLQ.percent({ total: 0, confirmed: 0, failed: 0, skipped: 0 }), 0);
  assert.strictEqual(DLQ.percent({ total: 200, confirmed: 100, failed: 1, skipped: 0 }), 50);
  assert.strictEqual(DLQ.percent({ total: 3, confirmed: 2, failed: 0, skipped: 1 }), 100);
  assert.strictEqual(DLQ.percent({ total: 3, confirmed: 1 }), 33); // counts left out are none
  assert.strictEqual(DLQ.percent({ total: 2, confirmed: 2, failed: 1, skipped: 0 }), 100); // never past 100
  assert.strictEqual(DLQ.percent(null), 0);
});

test("destination reads like the page", () => {
  assert.strictEqual(DLQ.destination({ topic: "orders" }), "topic orders");
  assert.strictEqual(DLQ.destination({ queue: "orders" }), "queue orders");
  assert.strictEqual(DLQ.destination({ exchange: "", routing_key: "orders", queue: "orders" }), "queue orders"); // the default exchange
  assert.strictEqual(DLQ.destination({ exchange: "shop", routing_key: "order.paid", queue: "orders" }), "exchange shop, key order.paid (queue orders)");
  assert.strictEqual(DLQ.destination({ exchange: "shop" }), 'exchange shop, key ""');
  assert.strictEqual(DLQ.destination({}), "unknown");
  assert.strictEqual(DLQ.destination(undefined), "unknown");
});

test("a live row has the table's columns", () => {
  const m = { id: 7, captured_at: "2026-12-03T15:04:05.123456Z", reason: "rejected", original: { queue: "orders" },
    death_count: 2, status: "dead", body_size: 12 };
  assert.deepStrictEqual(DLQ.cells(m), ["7", "2026-12-03 15:04:05", "rejected", "queue orders", "2", "dead", "12 B"]);
  assert.deepStrictEqual(DLQ.cells({ id: 8 }), ["8", "", "", "unknown", "0", "", "0 B"]);
});

test("the replay panel's counts and the notice read as sentences", () => {
  assert.strictEqual(DLQ.counts({ total: 4, confirmed: 2, failed: 1, skipped: 1, returned: 0 }),
    "2 of 4 confirmed, 1 failed, 1 skipped, 0 came back");
  assert.strictEqual(DLQ.counts(undefined), "0 of 0 confirmed, 0 failed, 0 skipped, 0 came back");
  assert.strictEqual(DLQ.notice(1), "1 new dead letter since this page was drawn.");
  assert.strictEqual(DLQ.notice(3), "3 new dead letters since this page was drawn.");
});

test("a message's drawer is fetched under the page's path", () => {
  assert.strictEqual(DLQ.messagePath("/t/acme/dlq/queue:orders.dlq", 42), "/t/acme/dlq/queue:orders.dlq/messages/42");
});

test("only the controls that apply to a replay's state are offered", () => {
  assert.deepStrictEqual(DLQ.controls("running"), ["pause", "cancel"]);
  assert.deepStrictEqual(DLQ.controls("paused"), ["resume", "cancel"]);
  assert.deepStrictEqual(DLQ.controls("done"), []);
  assert.deepStrictEqual(DLQ.controls("cancelled"), []);
});

// A drawer's form as readForm reads it: a JSON body, three headers (one
// the broker set), the original destination as the target.
function form(over) {
  return Object.assign({
    id: 7, kind: "queue", dryRun: true,
    body: { text: '{\n  "order": 42\n}', original: '{\n  "order": 42\n}', json: true },
    headers: [
      { name: "x-death", type: "array", mode: "broker", text: "[]", original: "[]" },
      { name: "x-region", type: "string", mode: "edit", text: "eu", original: "eu" },
      { name: "x-attempt", type: "int32", mode: "edit", text: "3", original: "3" },
      { name: "x-blob", type: "bytes", mode: "remove", text: "", original: "" },
    ],
    target: { exchange: "", routing_key: "orders", original: { exchange: "", routing_key: "orders" } },
  }, over);
}

test("an untouched form replays the message as it was: no edit, no target", () => {
  assert.deepStrictEqual(DLQ.editRequest(form()), { request: { message_ids: [7], dry_run: true } });
  assert.deepStrictEqual(DLQ.editRequest(form({ dryRun: false })).request, { message_ids: [7], dry_run: false });
  assert.strictEqual(DLQ.changes({ message_ids: [7] }), "No change: it is replayed as it was.");
});

test("only what changed is sent: the body as typed, headers with their types, removals, the target", () => {
  const f = form({ dryRun: false });
  f.body.text = '{"order": 43}';
  f.headers[1].text = "us";
  f.headers[2].text = "4";
  f.headers[3].removed = true;
  f.headers.push({ name: " x-fixed-by ", type: "string", mode: "edit", added: true, text: "ada", original: "" });
  f.headers.push({ name: "x-gone", type: "string", mode: "edit", added: true, removed: true, text: "", original: "" });
  f.target.exchange = "shop";
  const r = DLQ.editRequest(f);
  assert.deepStrictEqual(r, { request: { message_ids: [7], dry_run: false,
    edit: { body: '{"order": 43}', body_encoding: "text",
      headers: { "x-region": { type: "string", value: "us" }, "x-attempt": { type: "int32", value: 4 }, "x-fixed-by": { type: "string", value: "ada" } },
      remove_headers: ["x-blob"] },
    target: { exchange: "shop", routing_key: "orders" } } });
  assert.strictEqual(DLQ.changes(r.request),
    "Changes: body edited; headers set: x-attempt, x-fixed-by, x-region; headers removed: x-blob; target: exchange shop, key orders.");
});

test("a JSON body that does not parse is refused before anything is sent", () => {
  const f = form();
  f.body.text = '{"order": 43,';
  const r = DLQ.editRequest(f);
  assert.strictEqual(r.request, undefined);
  assert.deepStrictEqual(Object.keys(r.errors), ["edit.body"]);
  assert.match(r.errors["edit.body"], /^is not valid JSON/);
  // A text body is not held to JSON.
  f.body.json = false;
  assert.strictEqual(DLQ.editRequest(f).request.edit.body, '{"order": 43,');
});

test("bad header edits are refused next to their rows", () => {
  const f = form();
  f.headers[2].text = "99999999999"; // past int32
  f.headers.push({ name: "", type: "string", mode: "edit", added: true, text: "v", original: "" });
  f.headers.push({ name: "x-region", type: "string", mode: "edit", added: true, text: "v", original: "" });
  f.headers.push({ name: "X-Region", type: "string", mode: "edit", added: true, text: "v", original: "" }); // another header
  f.headers.push({ name: "x-switchboard-replay-id", type: "string", mode: "edit", added: true, text: "v", original: "" });
  const r = DLQ.editRequest(f);
  assert.deepStrictEqual(Object.keys(r.errors).sort(),
    ["edit.headers.", "edit.headers.x-attempt", "edit.headers.x-region", "edit.headers.x-switchboard-replay-id"]);
  assert.strictEqual(r.errors["edit.headers.x-attempt"], "must be a whole number from -2147483648 to 2147483647");
  // A removed header's name may be added again.
  const g = form();
  g.headers[1].removed = true;
  g.headers.push({ name: "x-region", type: "string", mode: "edit", added: true, text: "us", original: "" });
  assert.deepStrictEqual(DLQ.editRequest(g).request.edit, { headers: { "x-region": { type: "string", value: "us" } }, remove_headers: ["x-region"] });
});

test("header values keep their types", () => {
  assert.deepStrictEqual(DLQ.headerValue("string", " a "), { type: "string", value: " a " });
  assert.deepStrictEqual(DLQ.headerValue("bytes", "é"), { type: "bytes", value: "w6k=" }); // UTF-8, base64
  assert.deepStrictEqual(DLQ.headerValue("bool", "true"), { type: "bool", value: true });
  assert.ok(DLQ.headerValue("bool", "yes").error);
  assert.deepStrictEqual(DLQ.headerValue("uint8", "255"), { type: "uint8", value: 255 });
  assert.ok(DLQ.headerValue("uint8", "256").error);
  assert.ok(DLQ.headerValue("int16", "1.5").error);
  assert.ok(DLQ.headerValue("int64", "9007199254740993").error); // not exact as a JavaScript number
  assert.deepStrictEqual(DLQ.headerValue("float64", "2.5e3"), { type: "float64", value: 2500 });
  assert.deepStrictEqual(DLQ.headerValue("float32", "NaN"), { type: "float32", value: "NaN" });
  assert.ok(DLQ.headerValue("float64", "").error);
  assert.deepStrictEqual(DLQ.headerValue("timestamp", "2026-01-02T15:04:05Z"), { type: "timestamp", value: "2026-01-02T15:04:05Z" });
  assert.ok(DLQ.headerValue("timestamp", "yesterday").error);
  assert.ok(DLQ.headerValue("table", "{}").error);
});

test("a Kafka message's target is a topic; an emptied one means where it was going", () => {
  const f = form({ kind: "topic", target: { topic: "orders", original: { topic: "orders" } } });
  assert.strictEqual(DLQ.editRequest(f).request.target, undefined);
  f.target.topic = "orders-retry";
  assert.deepStrictEqual(DLQ.editRequest(f).request.target, { topic: "orders-retry" });
  f.target.topic = " ";
  assert.strictEqual(DLQ.editRequest(f).request.target, undefined);
});

test("headers the broker sets are known as the page knows them", () => {
  for (const k of ["x-death", "X-Death", "x-first-death-reason", "x-last-death-queue", "x-delivery-count", "x-switchboard-replay-id"]) {
    assert.ok(DLQ.brokerSet(k), k);
  }
  for (const k of ["x-region", "x-deathly", "traceparent"]) {
    assert.ok(!DLQ.brokerSet(k), k);
  }
});

test("the server's errors go next to the fields they name", () => {
  assert.strictEqual(DLQ.slotOf("edit.body"), "edit.body");
  assert.strictEqual(DLQ.slotOf("edit.body_encoding"), "edit.body");
  assert.strictEqual(DLQ.slotOf("edit.headers.x-a.b"), "edit.headers.x-a.b");
  assert.strictEqual(DLQ.slotOf("target"), "target");
  assert.strictEqual(DLQ.slotOf("target.exchange"), "target");
  assert.strictEqual(DLQ.slotOf("edit"), "");
  assert.strictEqual(DLQ.slotOf("message_ids"), "");
});

test("a preview says what would go where", () => {
  assert.deepStrictEqual(DLQ.planLines({ total: 1, replay: 1, destinations: [{ destination: { exchange: "", routing_key: "orders", queue: "orders" }, count: 1 }], skipped: [] }),
    ["1 of 1 would be replayed.", "1 to queue orders"]);
  assert.deepStrictEqual(DLQ.planLines({ total: 1, replay: 0, destinations: [], skipped: [{ message_id: 7, reason: "held back" }] }),
    ["0 of 1 would be replayed.", "message 7 skipped: held back"]);
  assert.deepStrictEqual(DLQ.planLines(undefined), ["0 of 0 would be replayed."]);
});
