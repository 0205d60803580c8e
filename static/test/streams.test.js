// Tests of the parts of static/streams.js that need no page.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const streams = require("../streams.js");

test("the category is the part of the name before the first dash, as on the server", () => {
  assert.strictEqual(streams.categoryOf("order-1001"), "order");
  assert.strictEqual(streams.categoryOf("order-a-b"), "order");
  assert.strictEqual(streams.categoryOf("order"), "order");
  assert.strictEqual(streams.categoryOf("-odd"), "-odd");
});

test("members keep the raw text of each value, big numbers included", () => {
  const m = streams.members('{"type":"event","data":{"total":12345678901234567890,"s":"a,}b"},"seq":3}');
  assert.strictEqual(m.data, '{"total":12345678901234567890,"s":"a,}b"}');
  assert.strictEqual(m.seq, "3");
});

test("pretty indents as the server does and keeps every digit", () => {
  assert.strictEqual(streams.pretty('{"z":12345678901234567890,"a":[1,{}]}'),
    '{\n  "z": 12345678901234567890,\n  "a": [\n    1,\n    {}\n  ]\n}');
});

test("times read as on every page: to the second, in UTC", () => {
  assert.strictEqual(streams.stamp("2025-01-31T09:30:05.123Z"), "2025-01-31 09:30:05 UTC");
});
