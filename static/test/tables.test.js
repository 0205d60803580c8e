// Tests of the parts of static/tables.js that need no page.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const tables = require("../tables.js");

test("numbers sort by value, not as text", () => {
  const xs = ["10", "9", "100", "x"].sort((a, b) => tables.compare(a, b, "number"));
  assert.deepStrictEqual(xs, ["9", "10", "100", "x"]);
});

test("times sort by instant, and what is not a time sorts last", () => {
  const xs = ["2025-02-01T00:00:00Z", "never", "2025-01-31T09:30:05Z"].sort((a, b) => tables.compare(a, b, "time"));
  assert.deepStrictEqual(xs, ["2025-01-31T09:30:05Z", "2025-02-01T00:00:00Z", "never"]);
});

test("text sorts without regard to case, numbers inside in order", () => {
  const xs = ["order-10", "Order-9", "billing"].sort((a, b) => tables.compare(a, b, "text"));
  assert.deepStrictEqual(xs, ["billing", "Order-9", "order-10"]);
});

test("a row matches when it holds every word typed, in any case", () => {
  assert.ok(tables.matches("Payments Core payments ada@example.com", "pay ADA"));
  assert.ok(tables.matches("anything", "   "));
  assert.ok(!tables.matches("Payments Core", "pay bob"));
});

test("the count says how many rows show", () => {
  assert.strictEqual(tables.countText(3, 3, "team", "teams"), "3 teams");
  assert.strictEqual(tables.countText(1, 1, "team", "teams"), "1 team");
  assert.strictEqual(tables.countText(2, 5, "team", "teams"), "2 of 5 teams");
  assert.strictEqual(tables.countText(0, 1, "key", "keys"), "0 of 1 key");
});
