package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/database"
	"switchboard/internal/tenancy"
)

// rightsCache keeps what a request needs to know of its caller — a verified
// access token's user, an API token with its creator's current rights, a
// member's current role and teams — in memory, so an authenticated request
// costs no round trip for it. It is kept current by the rights-change
// notifications every replica receives (database.RightsChannel): a
// notification drops every entry it may concern, and while the listener is
// not connected nothing is kept at all (a change would go unseen).
//
// A fill that read the database before a notification arrived must not put
// back what the notification dropped: every drop bumps gen, and a fill
// stores only if gen has not moved since before its read.
type rightsCache struct {
	mu      sync.Mutex // guards every field
	enabled bool       // the notifier is listening
	gen     uint64
	members map[memberKey]tenancy.Membership
	tokens  map[[32]byte]tokenEntry
	jwts    map[[32]byte]jwtEntry
}

// maxCached bounds each map; a full map starts over (the cache is a cost
// saving, never the truth).
const maxCached = 20000

type memberKey struct {
	user uuid.UUID
	slug string
}

type tokenEntry struct {
	id        TokenIdentity
	expiresAt *time.Time
	lastUsed  *time.Time
}

type jwtEntry struct {
	user    uuid.UUID
	expires time.Time
}

func newRightsCache() *rightsCache {
	c := &rightsCache{}
	c.clearLocked()
	return c
}

func (c *rightsCache) clearLocked() {
	c.gen++
	c.members = map[memberKey]tenancy.Membership{}
	c.tokens = map[[32]byte]tokenEntry{}
	c.jwts = map[[32]byte]jwtEntry{}
}

// watch keeps the cache current with n's notifications.
func (c *rightsCache) watch(n *database.Notifier) {
	n.Handle(database.RightsChannel, func(payload string) { c.changed(database.ParseRightsChange(payload)) })
	n.OnConnect(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.enabled = n.Connected()
		c.clearLocked()
	})
}

// changed drops every entry ch may concern.
func (c *rightsCache) changed(ch database.RightsChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, m := range c.members {
		if ch.Matches(m.Tenant.ID, k.user, uuid.Nil) {
			delete(c.members, k)
		}
	}
	for k, t := range c.tokens {
		if ch.Matches(t.id.Tenant.ID, t.id.CreatedBy, t.id.ID) {
			delete(c.tokens, k)
		}
	}
	// Access tokens are checked by signature and expiry alone; whether
	// their user still belongs anywhere is the membership's question.
}

// generation returns what a fill must present to store: 0 when nothing is
// kept (the listener is down).
func (c *rightsCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled {
		return 0
	}
	return c.gen
}

func (c *rightsCache) member(user uuid.UUID, slug string) (tenancy.Membership, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[memberKey{user, slug}]
	return m, ok && c.enabled
}

func (c *rightsCache) putMember(gen uint64, user uuid.UUID, slug string, m tenancy.Membership) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == 0 || gen != c.gen || !c.enabled {
		return
	}
	if len(c.members) >= maxCached {
		c.members = map[memberKey]tenancy.Membership{}
	}
	c.members[memberKey{user, slug}] = m
}

func (c *rightsCache) token(key [32]byte) (tokenEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[key]
	return t, ok && c.enabled
}

func (c *rightsCache) putToken(gen uint64, key [32]byte, t tokenEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == 0 || gen != c.gen || !c.enabled {
		return
	}
	if len(c.tokens) >= maxCached {
		c.tokens = map[[32]byte]tokenEntry{}
	}
	c.tokens[key] = t
}

func (c *rightsCache) dropToken(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tokens, key)
}

// jwt returns the user of a verified access token still in its lifetime.
func (c *rightsCache) jwt(key [32]byte, now time.Time) (uuid.UUID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.jwts[key]
	if !ok || !now.Before(e.expires) {
		return uuid.Nil, false
	}
	return e.user, true
}

func (c *rightsCache) putJWT(key [32]byte, user uuid.UUID, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.jwts) >= maxCached {
		c.jwts = map[[32]byte]jwtEntry{}
	}
	c.jwts[key] = jwtEntry{user, expires}
}

// credentialKey is what a credential is cached under: its hash, so the
// cache never holds a secret.
func credentialKey(raw string) [32]byte { return sha256.Sum256([]byte(raw)) }
