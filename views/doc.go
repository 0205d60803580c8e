// Package views holds the browser UI's templ components: the page layouts
// (Layout, AuthLayout) and small building blocks (Card, Field, SelectField,
// TextArea, CSRFInput, RoleBadge, EmptyState, SecretOnce, FlashBox,
// TableWrap, TableTools, Time) that internal/ui composes into pages. Times
// are written one way on every page: Time (and when, its format).
//
// Components take plain view-model values (model.go) and never call domain
// packages, the database or echo: handlers gather the data, views render it.
// All text and attribute values go through templ's escaping; nothing here
// emits caller-supplied raw HTML.
//
// The *.templ files are the source; the *_templ.go files next to them are
// generated with the templ CLI pinned to the library version in go.mod
// (go install github.com/a-h/templ/cmd/templ@v0.3.977; templ generate ./views)
// and committed.
//
// Stable hooks for browser tests: every Field, SelectField and TextArea has
// id = name; the layout exposes data-testid="tenant-switcher" (the
// organisation menu, with "current-org" naming the organisation shown),
// "nav" (and "nav-note" for the sections the role may not open), "flash",
// "logout-form", "docs-link" and the secret box data-testid="secret-once".
package views
