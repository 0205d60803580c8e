package client

import (
	"encoding/json"
	"time"
)

// Roles a member or an API token can have, from most to least powerful.
const (
	RoleOwner    = "owner"
	RoleAdmin    = "admin"
	RoleEditor   = "editor"
	RoleOperator = "operator"
	RoleViewer   = "viewer"
)

// SignupRequest creates an account and, optionally, a tenant it owns.
type SignupRequest struct {
	Email    string     `json:"email"`
	Password string     `json:"password"`
	Name     string     `json:"name"`
	Tenant   *NewTenant `json:"tenant,omitempty"`
}

// NewTenant names a tenant to create.
type NewTenant struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// SignupResponse says where the mail went: the same answer whether the
// address was new or already had an account (the mail says which).
type SignupResponse struct {
	Email   string `json:"email"`
	Message string `json:"message"`
}

// Verification is a confirmed address and the tenants it joined.
type Verification struct {
	User   User     `json:"user"`
	Joined []Tenant `json:"joined"`
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// LoginResponse carries an access token.
type LoginResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"` // seconds
}

// User is a person who can sign in.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Tenant is an organisation.
type Tenant struct {
	ID        string    `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Membership is the caller's place in one tenant.
type Membership struct {
	Tenant Tenant   `json:"tenant"`
	Role   string   `json:"role"`
	Teams  []string `json:"teams"`
}

// Me is the caller: a user (signed in with an access token) or an API token,
// and their memberships (an API token has exactly one).
type Me struct {
	User        *User        `json:"user"`
	Token       *TokenSelf   `json:"token"`
	Memberships []Membership `json:"memberships"`
}

// TokenSelf is the API token a call was made with.
type TokenSelf struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Tenant Tenant `json:"tenant"`
	Role   string `json:"role"`
}

// CreateTeamRequest creates a team.
type CreateTeamRequest struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// Team is a group of members that owns catalog entities.
type Team struct {
	ID        string    `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	Version   int64     `json:"version"`
	Members   []string  `json:"members"` // member emails
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CreateTokenRequest creates an API token; ExpiresAt is optional.
type CreateTokenRequest struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// APIToken is a named, revocable credential bound to one tenant and role.
type APIToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedBy  *string    `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// CreatedToken is a new API token with its secret, which the server shows
// this once.
type CreatedToken struct {
	APIToken
	Secret string `json:"token"`
}

// AuditEntry is one recorded change: who, what, when, from where, and the
// object before and after.
type AuditEntry struct {
	ID         string          `json:"id"` // random: it names the entry, counts nothing
	At         time.Time       `json:"at"`
	ActorID    *string         `json:"actor_id"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	ObjectKind string          `json:"object_kind"`
	ObjectID   string          `json:"object_id"`
	RemoteAddr string          `json:"remote_addr"`
	RequestID  string          `json:"request_id"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
}

// Page is one page of a list; NextCursor is "" on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// ListOptions pages through a list: at most Limit items (the server's
// default when 0) after Cursor (the first page when "").
type ListOptions struct {
	Limit  int
	Cursor string
}
