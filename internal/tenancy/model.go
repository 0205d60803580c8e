package tenancy

import (
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Role is a member's role in a tenant.
type Role string

// The roles, from most to least powerful.
const (
	Owner    Role = "owner"
	Admin    Role = "admin"
	Editor   Role = "editor"
	Operator Role = "operator"
	Viewer   Role = "viewer"
)

// Roles lists every role, most powerful first.
var Roles = []Role{Owner, Admin, Editor, Operator, Viewer}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r is as powerful as other. Editor and operator are
// peers in different domains (catalog versus operations) and rank equal.
func (r Role) AtLeast(other Role) bool { return r.rank() >= other.rank() }

// Meet returns the most a principal holding both r and other may do: the
// lower of the two. Editor and operator rank equal but rule different domains
// (catalog versus operations), so neither holds the other's rights: their
// meet is viewer, the greatest role below both.
func (r Role) Meet(other Role) Role {
	switch {
	case !r.Valid() || !other.Valid():
		return ""
	case r == other:
		return r
	case r.rank() == other.rank():
		return Viewer
	case r.rank() < other.rank():
		return r
	default:
		return other
	}
}

// Covers reports whether r holds every right of other: other is r or below
// it, and not r's peer in another domain.
func (r Role) Covers(other Role) bool { return other.Valid() && r.Meet(other) == other }

func (r Role) rank() int {
	switch r {
	case Owner:
		return 4
	case Admin:
		return 3
	case Editor, Operator:
		return 2
	case Viewer:
		return 1
	}
	return 0
}

var slugRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidSlug reports whether s is a slug: 1–63 lowercase letters, digits and
// inner hyphens.
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// The system tenant holds the server's own spans (migrations/00015): it has
// no members, the platform's operators read it, and no one may create a
// tenant with its slug.
var (
	SystemTenantID = uuid.MustParse("00000000-0000-4000-8000-000000000001")
	SystemSlug     = "switchboard-system"
)

// SlugHint explains the slug rule in validation messages.
const SlugHint = "must be 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen"

// ValidName reports whether s is a display name: 1–200 printable characters.
func ValidName(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 200 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// WithArticle returns the role with its indefinite article: "an owner".
func (r Role) WithArticle() string { return withArticle(r) }

func withArticle(r Role) string {
	if r != "" && strings.ContainsRune("aeiou", rune(r[0])) {
		return "an " + string(r)
	}
	return "a " + string(r)
}

// NormalizeEmail returns the canonical form of an address, or false if it is
// not a plain address.
func NormalizeEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 254 {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", false
	}
	return strings.ToLower(s), true
}

// Tenant is an organisation.
type Tenant struct {
	ID        uuid.UUID `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// User is a person who can sign in.
type User struct {
	ID    uuid.UUID `json:"id"`
	Email string    `json:"email"`
	Name  string    `json:"name"`
	// EmailVerified says the user proved the address by following a link
	// sent to it. Until then the account can sign in and use the tenants it
	// created, but no invitation or operator right reaches it.
	EmailVerified bool      `json:"email_verified"`
	CreatedAt     time.Time `json:"created_at"`
}

// Membership is a user's place in one tenant.
type Membership struct {
	Tenant        Tenant   `json:"tenant"`
	Role          Role     `json:"role"`
	Teams         []string `json:"teams"`
	PolicyVersion int64    `json:"-"`
	Email         string   `json:"-"` // the member's email, for audit
}

// MemberStatus says whether a member has joined or is only invited.
type MemberStatus string

// The member statuses.
const (
	// Active: a user with a membership, who can act in the tenant.
	Active MemberStatus = "active"
	// Invited: an address with a pending invitation; it becomes a member
	// when a user proves that address. It has no user, name or join time.
	Invited MemberStatus = "invited"
)

// Member is a user (or a pending invitation) as seen from one tenant.
type Member struct {
	UserID    uuid.UUID    `json:"user_id,omitzero"` // zero for an invitation
	Email     string       `json:"email"`
	Name      string       `json:"name,omitempty"` // empty for an invitation: nothing is made up
	Role      Role         `json:"role"`
	Status    MemberStatus `json:"status"`
	JoinedAt  time.Time    `json:"joined_at,omitzero"`   // zero for an invitation
	InvitedAt time.Time    `json:"invited_at,omitzero"`  // set for an invitation only
	InvitedBy string       `json:"invited_by,omitempty"` // who invited (an email), for an invitation, when known
}

// Granter is who changes a tenant's members: the acting user (for an API
// token, its creator) and the role the request acts with. Inside the
// change's transaction the role is capped by the user's current membership,
// so rights lost while the request was in flight are not used.
type Granter struct {
	UserID uuid.UUID // zero for the system
	Role   Role
}

// Team is a group of members that owns catalog entities.
type Team struct {
	ID        uuid.UUID `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	Version   int64     `json:"version"`
	Members   []string  `json:"members"` // member emails
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TeamPatch holds the fields of a team update; nil fields are unchanged.
type TeamPatch struct {
	Name *string
}
