// Package tracing keeps the spans tenants send over OTLP and serves them
// back: a trace by its id, a search, the services and operations seen, and
// a live tail.
//
// Spans arrive as OTLP requests decoded by the OpenTelemetry collector's
// pdata module (the API's ingest route does that); Decode checks each span
// against the limits (ids, times, sizes), and a span over one is rejected
// with a reason, never stored cut short; the rest go into PostgreSQL in one
// COPY, so a request's spans are stored all or none.
//
// Storage (migrations/00014_spans.sql): one table partitioned by the day
// its spans expire, which is their start day plus the tenant's retention
// when they arrived. Retention drops whole partitions (DropExpired) and
// never deletes rows; tenants with different retentions share the days.
// Attribute keys in Store.Indexed are indexed as "key=value" pairs for
// search; any other key is matched on the span's attributes as it is read.
// A span an exporter sent twice is stored twice and answered once.
//
// The live tail (Tail) is in memory, on the replica that took the spans
// in: subscribers are offered each batch after it commits, filtered, and
// one that cannot keep up skips batches and is told how many spans it
// skipped.
package tracing
