// Package ui serves the browser UI: server-rendered pages from views/ with
// htmx for partial updates, on a cookie session.
//
// Invariants:
//   - The session cookie is HttpOnly and SameSite=Lax; every state-changing
//     request carries the session's CSRF token (form field _csrf or header
//     X-CSRF-Token) and, when the browser sends one, an Origin equal to the
//     server's own; anything else is refused with 403 before any work.
//   - Pages call the same domain packages and the same rbac.Authorize as the
//     REST API: the UI grants nothing the API would not.
package ui
