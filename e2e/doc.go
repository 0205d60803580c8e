// Package e2e holds the end-to-end tests: they build the real server binary
// once (cmd/server), start it per test as a subprocess on a fresh PostgreSQL
// database, and drive it over HTTP with the typed client in e2e/client and in
// headless Chromium with chromedp. Screenshots of the browser tests are saved
// in e2e/artifacts/.
//
// The browser tests need Chromium at /usr/bin/chromium (Debian's "chromium"
// package; .ci/run installs it) and fail, never skip, without it. The
// database comes from internal/database/dbtest (PostgreSQL at 127.0.0.1:5432
// unless SWITCHBOARD_TEST_DATABASE_URL says otherwise).
package e2e
