// Package discovery reads what is actually on a broker and compares it with
// what the catalog declares.
//
// It owns three things:
//   - an Inventory of one broker: RabbitMQ queues, exchanges, bindings and
//     consumers (through the management HTTP API), or Kafka topics and
//     consumer groups with their lag (through the Kafka protocol);
//   - Drift: the declared queues and topics of a broker set against that
//     inventory (missing, undeclared, different settings);
//   - Undeclared: catalog entities for what the broker has and the catalog
//     does not, so one action can import them.
//
// Invariants:
//   - Every read of a broker is bounded: it ends within DefaultTimeout, or
//     sooner when the caller's context says so, and closes every client and
//     connection it opened before it returns.
//   - A broker that cannot be reached or answers badly is a
//     problem.CodeBadGateway error that names the broker; refused
//     credentials say so. No error text holds a password, URL user
//     information or any other credential.
//   - Drift and Undeclared are pure functions of their arguments and
//     return their results in a deterministic order.
//
// The package never stores anything; callers keep inventories and drift
// where they need them.
package discovery
