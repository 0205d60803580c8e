package auth

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"math"
	"net/netip"
	"time"

	"switchboard/internal/database"
)

// limiter is a token bucket per key (a client address, a client address
// and account pair, a recipient) kept in PostgreSQL, so every replica draws
// on the same buckets: burst attempts at once, then one per every. It is
// GCRA: a key's row holds the time its bucket is full again (tat); an
// attempt moves tat one interval on, and is refused when that would put tat
// more than burst intervals ahead of now.
// Now is the database's clock, so replicas whose clocks differ cannot push
// one another's buckets.
type limiter struct {
	db    *database.DB
	mac   []byte // HMAC key of the stored keys
	kind  string // keeps the buckets of different limits apart
	every time.Duration
	burst int
}

// throttleMAC derives the key that hides throttled addresses and emails
// from the signing key, which every replica shares.
func throttleMAC(signingSeed []byte) []byte {
	return deriveKey(signingSeed, "switchboard login throttle")
}

// deriveKey derives a 32-byte key for one purpose (label) from the signing
// key's seed, so one secret serves every purpose without one key ever
// serving two.
func deriveKey(signingSeed []byte, label string) []byte {
	k, err := hkdf.Key(sha256.New, signingSeed, nil, label, 32)
	if err != nil {
		panic(err) // only for a length over 255*32
	}
	return k
}

func newLimiter(db *database.DB, mac []byte, kind string, every time.Duration, burst int) *limiter {
	return &limiter{db: db, mac: mac, kind: kind, every: every, burst: burst}
}

func (l *limiter) hash(key string) []byte {
	h := hmac.New(sha256.New, l.mac)
	h.Write([]byte(l.kind + "\x00" + key))
	return h.Sum(nil)
}

// allow takes one token from key's bucket; when it is empty it returns false
// and how many seconds until a token is back. at is the time of the attempt
// for tests; nil is the database's clock.
func (l *limiter) allow(ctx context.Context, key string, at *time.Time) (bool, int, error) {
	var (
		allowed  bool
		tat, now time.Time
	)
	// now + every is the tat of a full bucket: EXCLUDED.tat.
	err := l.db.Pool.QueryRow(ctx, `
		WITH clock AS (SELECT coalesce($2::timestamptz, clock_timestamp()) AS now)
		INSERT INTO login_throttle AS t (key_hash, tat, allowed)
		SELECT $1, now + $3::interval, true FROM clock
		ON CONFLICT (key_hash) DO UPDATE SET
			allowed = greatest(t.tat, EXCLUDED.tat - $3::interval) + $3::interval <= EXCLUDED.tat - $3::interval + $4::interval,
			tat = CASE
				WHEN greatest(t.tat, EXCLUDED.tat - $3::interval) + $3::interval <= EXCLUDED.tat - $3::interval + $4::interval
				THEN greatest(t.tat, EXCLUDED.tat - $3::interval) + $3::interval
				ELSE t.tat END
		RETURNING allowed, tat, (SELECT now FROM clock)`,
		l.hash(key), at, l.every, time.Duration(l.burst)*l.every).Scan(&allowed, &tat, &now)
	if err != nil {
		return false, 0, fmt.Errorf("login throttle: %w", err)
	}
	if allowed {
		return true, 0, nil
	}
	// A token is back when tat + every - burst*every has passed.
	wait := tat.Add(l.every - time.Duration(l.burst)*l.every).Sub(now)
	return false, max(1, int(math.Ceil(wait.Seconds()))), nil
}

// addrKey is the throttled key of a client address: the address, or its
// /64 for IPv6, where one client holds a whole /64.
func addrKey(remoteAddr string) string {
	ip, err := netip.ParseAddr(remoteAddr)
	if err != nil || !ip.Is6() || ip.Is4In6() {
		return remoteAddr
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}

// SweepLoginThrottle deletes the rows of buckets that are full again (they
// behave like no row); run it every minute or so.
func (s *Service) SweepLoginThrottle(ctx context.Context) (int64, error) {
	return sweepLoginThrottle(ctx, s.db, nil)
}

func sweepLoginThrottle(ctx context.Context, db *database.DB, at *time.Time) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `DELETE FROM login_throttle WHERE tat < coalesce($1::timestamptz, clock_timestamp())`, at)
	return tag.RowsAffected(), err
}
