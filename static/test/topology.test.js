// Tests of the parts of static/topology.js and static/catalog.js that need
// no page.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const topo = require("../topology.js");
const catalogForms = require("../catalog.js");

const sample = {
  nodes: [
    { id: "service:checkout", kind: "service", name: "checkout", namespace: "default", owner_team: "payments", labels: { env: "prod" }, status: "ok", problems: [] },
    { id: "queue:orders", kind: "queue", name: "orders", namespace: "default", labels: {}, status: "warning",
      problems: [{ code: "no_consumer", message: "no registered service consumes it" }, { code: "no_dlq", message: "x" }] },
    { id: "queue:orders.dlq", kind: "queue", name: "orders.dlq", namespace: "default", labels: {}, status: "ok", problems: [] }
  ],
  edges: [
    { from: "service:checkout", to: "queue:orders", type: "publishes" },
    { from: "queue:orders", to: "queue:orders.dlq", type: "dead_letters_to", derived: true },
    { from: "service:checkout", to: "api:team/payments", type: "consumes_api" }
  ]
};

test("every node and every edge of the JSON becomes an element", () => {
  const els = topo.elementsFrom(sample);
  assert.deepStrictEqual(els.edges.map((e) => [e.data.source, e.data.type, e.data.target]), [
    ["service:checkout", "publishes", "queue:orders"],
    ["queue:orders", "dead_letters_to", "queue:orders.dlq"],
    ["service:checkout", "consumes_api", "api:team/payments"]
  ]);
  assert.strictEqual(els.nodes.length, 4);
});

test("an edge to a node the JSON lacks gets a missing node, never dropped", () => {
  const els = topo.elementsFrom(sample);
  const missing = els.nodes.find((n) => n.data.id === "api:team/payments");
  assert.ok(missing);
  assert.strictEqual(missing.data.status, "missing");
  assert.strictEqual(missing.data.namespace, "team");
  assert.strictEqual(missing.data.name, "payments");
  assert.strictEqual(missing.data.color, topo.STATUS_COLORS.missing);
});

test("two edges with the same key both stay, under different ids", () => {
  const t = { nodes: sample.nodes, edges: [sample.edges[0], sample.edges[0]] };
  const ids = topo.elementsFrom(t).edges.map((e) => e.data.id);
  assert.strictEqual(ids.length, 2);
  assert.notStrictEqual(ids[0], ids[1]);
});

test("a derived relation and a declared one between the same nodes are two edges", () => {
  const e = { from: "queue:a", to: "queue:a.dlq", type: "dead_letters_to" };
  assert.notStrictEqual(topo.edgeKey(e), topo.edgeKey(Object.assign({}, e, { derived: true })));
});

test("nodes are coloured by status, and marked when they have problems", () => {
  const els = topo.elementsFrom(sample);
  const byId = Object.fromEntries(els.nodes.map((n) => [n.data.id, n]));
  assert.strictEqual(byId["service:checkout"].data.color, "#2f9e44");
  assert.strictEqual(byId["queue:orders"].data.color, topo.statusColor("warning"));
  assert.match(byId["queue:orders"].classes, /has-problems/);
  assert.match(byId["queue:orders"].data.label, /^\u26a0 orders$/);
  assert.strictEqual(byId["queue:orders"].data.problems, "no_consumer no_dlq");
  assert.doesNotMatch(byId["service:checkout"].classes, /has-problems/);
  for (const s of ["ok", "warning", "down", "missing", "orphaned"]) {
    assert.match(topo.statusColor(s), /^#[0-9a-f]{6}$/);
  }
  assert.strictEqual(new Set(["ok", "warning", "down", "missing", "orphaned"].map(topo.statusColor)).size, 5);
  assert.strictEqual(topo.statusColor("strange"), topo.statusColor("ok"));
});

test("dead-letter edges get their own class, derived ones too", () => {
  const els = topo.elementsFrom(sample);
  assert.strictEqual(els.edges[0].classes, "");
  assert.strictEqual(els.edges[1].classes, "dead-letter derived");
  const styled = topo.stylesheet().find((s) => s.selector === "edge.dead-letter");
  assert.strictEqual(styled.style["line-style"], "dashed");
});

test("kinds have shapes, unknown kinds an ellipse", () => {
  assert.strictEqual(topo.shapeOf("service"), "round-rectangle");
  assert.strictEqual(topo.shapeOf("queue"), "barrel");
  assert.strictEqual(topo.shapeOf("group"), "ellipse");
});

test("filters become the JSON route's query, in order, empty ones left out", () => {
  assert.strictEqual(topo.filterQuery({ q: "pay", owner_team: "payments", labels: "env=prod,tier!=web", kind: "", depth: 2, around: "service:checkout" }),
    "owner_team=payments&labels=env%3Dprod%2Ctier!%3Dweb&q=pay&around=service%3Acheckout&depth=2");
  assert.strictEqual(topo.filterQuery({}), "");
  assert.strictEqual(topo.filterQuery({ unknown: "x", q: "  " }), "");
});

test("a query string reads back into the same filters", () => {
  const f = { owner_team: "payments", labels: "env=prod,tier!=web", kind: "queue", q: "a b", around: "service:checkout", depth: "2" };
  assert.deepStrictEqual(topo.filtersFromQuery("?" + topo.filterQuery(f)), f);
  assert.deepStrictEqual(topo.filtersFromQuery("?view=123&q=x+y"), { q: "x y" });
});

test("diff adds what is new, removes what is gone, updates the rest", () => {
  const els = topo.elementsFrom(sample);
  const drawn = { "service:checkout": true, "gone:x": true, [els.edges[0].data.id]: true };
  const d = topo.diff(drawn, els);
  assert.deepStrictEqual(d.remove, ["gone:x"]);
  assert.deepStrictEqual(d.update.map((e) => e.data.id).sort(), ["service:checkout", els.edges[0].data.id].sort());
  assert.strictEqual(d.add.length, els.nodes.length + els.edges.length - 2);
});

test("saved positions are used only when every node has one; large graphs take the layers", () => {
  const saved = topo.layoutOptions(3, { a: { x: 1, y: 2 } }, true);
  assert.strictEqual(saved.name, "preset");
  assert.deepStrictEqual(saved.positions({ id: () => "a" }), { x: 1, y: 2 });
  assert.strictEqual(topo.layoutOptions(3, {}, false).name, "dagre");
  const big = topo.layoutOptions(2000, {}, false, { b: { x: 5, y: 6 } });
  assert.strictEqual(big.name, "preset");
  assert.deepStrictEqual(big.positions({ id: () => "b" }), { x: 5, y: 6 });
});

test("layers puts every node right of its predecessors, even around a cycle", () => {
  const ids = ["a", "b", "c", "d", "e"];
  const at = topo.layers(ids, [["a", "b"], ["b", "c"], ["c", "a"], ["a", "d"], ["x", "a"], ["d", "d"]]);
  assert.deepStrictEqual(Object.keys(at).sort(), ids);
  assert.ok(at.a.x < at.b.x && at.b.x < at.c.x, "a → b → c go left to right");
  assert.ok(at.a.x < at.d.x);
  assert.strictEqual(at.e.x, 0, "a node without edges sits in the first layer");
  const seen = new Set(ids.map((id) => at[id].x + "," + at[id].y));
  assert.strictEqual(seen.size, ids.length, "no two nodes share a place");
});

test("layers lays out 2,000 nodes and 4,000 edges, each node once", () => {
  const ids = Array.from({ length: 2000 }, (_, i) => "service:s" + i);
  const edges = [];
  for (let i = 0; edges.length < 4000; i++) {
    const f = i % 2000, t = (f * 7 + 1 + Math.floor(i / 2000) * 13) % 2000;
    if (t !== f) { edges.push([ids[f], ids[t]]); }
  }
  const at = topo.layers(ids, edges);
  assert.strictEqual(Object.keys(at).length, 2000);
  const places = new Set(Object.values(at).map((p) => p.x + "," + p.y));
  assert.strictEqual(places.size, 2000);
});

test("references split into kind, namespace and name", () => {
  assert.deepStrictEqual(topo.refParts("queue:orders"), { kind: "queue", namespace: "default", name: "orders" });
  assert.deepStrictEqual(topo.refParts("user:guests/guest"), { kind: "user", namespace: "guests", name: "guest" });
});

test("a broker form shows the fields of its type", () => {
  assert.deepStrictEqual(catalogForms.brokerFields("kafka"), ["bootstrap_servers"]);
  assert.deepStrictEqual(catalogForms.brokerFields("rabbitmq"), ["url", "vhost", "management_url"]);
});

test("a node with drift is marked apart from other problems", () => {
  const els = topo.elementsFrom({
    nodes: [
      { id: "topic:ghost", kind: "topic", name: "ghost", status: "warning", problems: [{ code: "drift", message: "missing on the broker" }] },
      { id: "queue:q", kind: "queue", name: "q", status: "warning", problems: [{ code: "no_consumer", message: "x" }] },
    ],
    edges: [],
  });
  const byId = Object.fromEntries(els.nodes.map((n) => [n.data.id, n]));
  assert.match(byId["topic:ghost"].classes, /has-drift/);
  assert.doesNotMatch(byId["queue:q"].classes, /has-drift/);
});

test("traffic from traces: undeclared, silent and traced edges, and what nodes show", () => {
  const t = {
    nodes: [
      { id: "service:checkout", kind: "service", name: "checkout", status: "ok", problems: [],
        traced: { count: 120, errors: 6, rate: 2, p50_ms: 4.2, p99_ms: 31.7 } },
      { id: "queue:orders.dlq", kind: "queue", name: "orders.dlq", status: "ok", problems: [], dead_letters: 12 }
    ],
    edges: [
      { from: "service:checkout", to: "service:stock", type: "calls", declared: false, traced: { count: 60, errors: 0, rate: 1, p50_ms: 2, p99_ms: 9 } },
      { from: "service:checkout", to: "service:stock", type: "calls", declared: true, traced: { count: 1, errors: 1, rate: 0.01, p50_ms: 2, p99_ms: 9 } },
      { from: "service:checkout", to: "queue:orders", type: "publishes", declared: true, silent: true }
    ]
  };
  const els = topo.elementsFrom(t);
  const [undeclared, declared, silent] = els.edges;
  assert.notStrictEqual(undeclared.data.id, declared.data.id, "an undeclared and a declared edge keep apart");
  assert.match(undeclared.classes, /\bundeclared\b/);
  assert.match(undeclared.classes, /\btraced\b/);
  assert.strictEqual(undeclared.data.undeclared, true);
  assert.strictEqual(undeclared.data.label, "1.00/s");
  assert.doesNotMatch(declared.classes, /undeclared/);
  assert.strictEqual(declared.data.label, "0.01/s \u2717100%");
  assert.match(silent.classes, /\bsilent\b/);
  assert.strictEqual(silent.data.label, "");
  const checkout = els.nodes.find((n) => n.data.id === "service:checkout");
  assert.strictEqual(checkout.data.label, "checkout\n2.00/s \u27175% p99 32ms");
  const dlq = els.nodes.find((n) => n.data.id === "queue:orders.dlq");
  assert.strictEqual(dlq.data.label, "orders.dlq\n\u2709 12 dead");
  assert.strictEqual(dlq.data.deadLetters, 12);
  assert.strictEqual(topo.filterQuery({ traced_since: "1h", kind: "service" }), "kind=service&traced_since=1h");
});
