// Package views holds the browser UI's templ components: the page layouts
// (Layout, AuthLayout) and small building blocks (Card, Field, SelectField,
// CSRFInput, RoleBadge, EmptyState, SecretOnce, FlashBox, TableWrap) that
// internal/ui composes into pages.
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
// Stable hooks for browser tests: every Field and SelectField input has
// id = name; the layout exposes data-testid="tenant-switcher", "nav",
// "flash", "logout-form" and the secret box data-testid="secret-once".
package views
