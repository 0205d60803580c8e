// Package migrations embeds Switchboard's numbered, forward-only SQL
// migrations. Each file is safe to run on a live database.
package migrations

import "embed"

// FS holds the *.sql migration files.
//
//go:embed *.sql
var FS embed.FS
