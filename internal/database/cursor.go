package database

import (
	"bytes"
	"encoding/base64"
	"unicode/utf8"

	"switchboard/internal/problem"
)

// Keyset pagination: a cursor is the opaque, URL-safe form of the sort key of
// the last row of a page.

// cursorMark starts every cursor's bytes, so that a string a client made up
// (which may well be valid base64) is refused instead of read as a key.
const cursorMark = "c1:"

// EncodeCursor returns the cursor for a page that ended at key.
func EncodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorMark + key))
}

// DecodeCursor returns the key inside a cursor; "" decodes to "".
func DecodeCursor(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	key, marked := bytes.CutPrefix(b, []byte(cursorMark))
	if err != nil || !marked || !utf8.Valid(key) || bytes.IndexByte(key, 0) >= 0 {
		return "", problem.Invalid(map[string]string{"cursor": "is not a cursor this server issued"})
	}
	return string(key), nil
}

// Page trims rows, read with LIMIT limit+1, to one page of limit rows and
// returns the cursor of the next page: the key of the page's last row, or ""
// when the extra row was not there (this is the last page).
func Page[T any](rows []T, limit int, key func(T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, EncodeCursor(key(rows[limit-1]))
}
