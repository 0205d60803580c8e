// Package static holds the browser UI's stylesheet, script and pinned
// third-party libraries, embedded into the binary so the server needs no
// files on disk and the UI never loads anything from a CDN.
//
// The handler serving FS mounts it at /static/, so app.css is
// /static/app.css and vendor/htmx.min.js is /static/vendor/htmx.min.js.
// Versions and licenses of the vendored files are in vendor/README.md.
package static

import "embed"

// FS is the embedded tree: app.css, the scripts (app.js, the table tools
// tables.js, the live-stream client live.js and the live views on it,
// fragments.js, streams.js, topology.js, catalog.js, dlq.js, traces.js)
// and vendor/ (htmx,
// cytoscape and its layered layout, and their README). The
// scripts' tests (test/) are not served.
//
//go:embed app.css app.js live.js fragments.js streams.js tables.js topology.js catalog.js dlq.js traces.js favicon.svg vendor
var FS embed.FS
