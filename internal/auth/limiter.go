package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"switchboard/internal/database"
)

// limiter is a token bucket per key (an address, an email) kept in
// PostgreSQL, so every replica draws on the same buckets: burst attempts at
// once, then one per every. It is GCRA: a key's row holds the time its
// bucket is full again (tat); an attempt moves tat one interval on, and is
// refused when that would put tat more than burst intervals ahead of now.
type limiter struct {
	db    *database.DB
	kind  string // keeps address and email keys apart
	every time.Duration
	burst int
}

func newLimiter(db *database.DB, kind string, every time.Duration, burst int) *limiter {
	return &limiter{db: db, kind: kind, every: every, burst: burst}
}

func (l *limiter) hash(key string) []byte {
	h := sha256.Sum256([]byte(l.kind + "\x00" + key))
	return h[:]
}

// allow takes one token from key's bucket; when it is empty it returns false
// and how many seconds until a token is back.
func (l *limiter) allow(ctx context.Context, key string, now time.Time) (bool, int, error) {
	h := l.hash(key)
	var tat time.Time
	err := l.db.Pool.QueryRow(ctx, `
		INSERT INTO login_throttle AS t (key_hash, tat) VALUES ($1, $2::timestamptz + $3::interval)
		ON CONFLICT (key_hash) DO UPDATE SET tat = greatest(t.tat, $2) + $3::interval
			WHERE greatest(t.tat, $2) + $3::interval <= $2::timestamptz + $4::interval
		RETURNING tat`, h, now, l.every, time.Duration(l.burst)*l.every).Scan(&tat)
	if err == nil {
		return true, 0, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, 0, fmt.Errorf("login throttle: %w", err)
	}
	if err := l.db.Pool.QueryRow(ctx, `SELECT tat FROM login_throttle WHERE key_hash = $1`, h).Scan(&tat); err != nil {
		return false, 0, fmt.Errorf("login throttle: %w", err)
	}
	// A token is back when tat + every - burst*every has passed.
	wait := tat.Add(l.every - time.Duration(l.burst)*l.every).Sub(now)
	return false, max(1, int(math.Ceil(wait.Seconds()))), nil
}

// SweepLoginThrottle deletes the rows of buckets that are full again (they
// behave like no row); run it now and then.
func (s *Service) SweepLoginThrottle(ctx context.Context) (int64, error) {
	return sweepLoginThrottle(ctx, s.db, s.cfg.Now())
}

func sweepLoginThrottle(ctx context.Context, db *database.DB, now time.Time) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `DELETE FROM login_throttle WHERE tat < $1`, now)
	return tag.RowsAffected(), err
}
