// Package api serves Switchboard's JSON REST API under /api/v1 and the
// operator endpoints (/healthz, /readyz, /metrics).
//
// Handlers decode, authorize, call one domain method and encode; they hold no
// SQL and no business rules. Errors become RFC 9457 problem+json in one place
// (errors.go) with one code-to-status table. Every route is declared once in
// routes.go with the metadata the OpenAPI document is generated from, so the
// document cannot drift from the routes.
package api
