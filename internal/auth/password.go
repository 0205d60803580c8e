package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"

	"switchboard/internal/problem"
)

// argon2id parameters (the RFC 9106 / OWASP second recommended option: 19 MiB,
// 2 passes), encoded into each hash so they can be raised later.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// argonCost is the tunable part of the argon2id parameters.
type argonCost struct {
	time   uint32 // passes
	memory uint32 // KiB
}

var defaultCost = argonCost{time: argonTime, memory: argonMemory}

// HashPassword returns an encoded argon2id hash of pw.
func HashPassword(pw string) (string, error) { return hashPassword(pw, defaultCost) }

func hashPassword(pw string, c argonCost) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, c.time, c.memory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, c.memory, c.time, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches the encoded hash.
func CheckPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, iters, mem, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// hasher bounds password hashing, which costs argonMemory (19 MiB) and a
// core for tens of milliseconds each: at most cap(slots) hashes run at once,
// at most maxWaiting callers wait for a slot (each until its context ends),
// and any caller beyond that is answered "busy" at once. So a flood of
// sign-ups or sign-ins holds memory at slots × 19 MiB instead of growing
// with the flood.
type hasher struct {
	cost       argonCost     // of new hashes; defaultCost outside tests
	slots      chan struct{} // a held slot is a running hash
	maxWaiting int64
	waiting    atomic.Int64 // callers waiting for a slot

	// Instrumentation, read by tests and cheap enough to keep.
	running atomic.Int64 // hashes running now
	peak    atomic.Int64 // the most that ever ran at once
	total   atomic.Int64 // hashes run

	// dummy is checked against when a sign-in names no user, so the answer
	// takes as long as for a wrong password and does not reveal which
	// emails exist. It is made on first use, not at start: hashing costs
	// tens of milliseconds that every start of the binary and its tests
	// would pay.
	dummy func() string
}

func newHasher(concurrency, maxWaiting int) *hasher {
	h := &hasher{cost: defaultCost, slots: make(chan struct{}, concurrency), maxWaiting: int64(maxWaiting)}
	h.dummy = sync.OnceValue(func() string {
		d, _ := hashPassword("switchboard-timing-equaliser", h.cost) // fails only if the system has no randomness
		return d
	})
	return h
}

func busy() error {
	e := problem.Errorf(problem.CodeUnavailable, "the server is busy; try again in a moment")
	e.RetryAfter = 1
	return e
}

// do runs fn in a slot.
func (h *hasher) do(ctx context.Context, fn func()) error {
	select {
	case h.slots <- struct{}{}:
	default:
		if h.waiting.Add(1) > h.maxWaiting {
			h.waiting.Add(-1)
			return busy()
		}
		select {
		case h.slots <- struct{}{}:
			h.waiting.Add(-1)
		case <-ctx.Done():
			h.waiting.Add(-1)
			return busy()
		}
	}
	defer func() { <-h.slots }()
	n := h.running.Add(1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	h.total.Add(1)
	fn()
	h.running.Add(-1)
	return nil
}

// hash is HashPassword in a slot.
func (h *hasher) hash(ctx context.Context, pw string) (string, error) {
	var out string
	var herr error
	if err := h.do(ctx, func() { out, herr = hashPassword(pw, h.cost) }); err != nil {
		return "", err
	}
	return out, herr
}

// check is CheckPassword in a slot.
func (h *hasher) check(ctx context.Context, encoded, pw string) (bool, error) {
	var ok bool
	if err := h.do(ctx, func() { ok = CheckPassword(encoded, pw) }); err != nil {
		return false, err
	}
	return ok, nil
}
