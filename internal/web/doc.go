// Package web is Switchboard's one HTTP server: the echo instance, the
// middleware every request passes (request id, access log and metrics,
// recovery, body limits and deadlines, security headers, path parameters
// decoded once), authentication at the edge, and error rendering for both
// faces. The REST API (internal/api) and the browser UI (internal/ui) mount
// their routes on it; neither imports the other.
//
// # Invariants
//
//   - Every answer carries X-Content-Type-Options: nosniff, a
//     Content-Security-Policy without inline script, and Cache-Control:
//     no-store unless a handler (static files) sets its own; HSTS when the
//     server is reached over TLS.
//   - A path parameter is percent-decoded exactly once, by the router's
//     middleware, whichever way the client escaped it: handlers read
//     c.Param and never decode again.
//   - An error that is not a *problem.Error is logged with the request id and
//     answered 500 without internals. A face may render errors on its own
//     routes (the UI draws pages); everything else is problem+json.
//   - A request is authenticated here, once: the principal a handler sees
//     carries the member's current role and teams, and the credential it
//     came from, so a live stream can check it again later.
package web
