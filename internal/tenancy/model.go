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
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Membership is a user's place in one tenant.
type Membership struct {
	Tenant        Tenant   `json:"tenant"`
	Role          Role     `json:"role"`
	Teams         []string `json:"teams"`
	PolicyVersion int64    `json:"-"`
	Email         string   `json:"-"` // the member's email, for audit
}

// Member is a user as seen from one tenant.
type Member struct {
	UserID   uuid.UUID `json:"user_id"`
	Email    string    `json:"email"`
	Name     string    `json:"name"`
	Role     Role      `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
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
