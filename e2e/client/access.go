package client

import (
	"context"
	"net/http"
	"time"
)

// AddMember adds the user with email to tenant with role; an address
// without a confirmed account is invited (Status "invited") and joins once
// it is confirmed.
func (c *Client) AddMember(ctx context.Context, tenant string, in AddMemberRequest) (Member, error) {
	var out Member
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "members"), in, &out)
	return out, err
}

// CreatePolicy adds an allow or deny rule to tenant's policy.
func (c *Client) CreatePolicy(ctx context.Context, tenant string, in PolicyRule) (PolicyRule, error) {
	var out PolicyRule
	err := c.do(ctx, http.MethodPost, tenantPath(tenant, "policies"), in, &out)
	return out, err
}

// AddMemberRequest names the member and their role.
type AddMemberRequest struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

// Member is a user's membership of a tenant, or a pending invitation
// (Status "invited": no user id, name or joining time yet).
type Member struct {
	UserID    string     `json:"user_id,omitempty"`
	Email     string     `json:"email"`
	Name      string     `json:"name,omitempty"`
	Role      string     `json:"role"`
	Status    string     `json:"status"`
	JoinedAt  *time.Time `json:"joined_at,omitempty"`
	InvitedAt *time.Time `json:"invited_at,omitempty"`
}

// PolicyRule allows or denies (Effect "allow" or "deny") Action on Resource
// to Role, when Condition (optional) holds.
type PolicyRule struct {
	ID        string `json:"id,omitempty"`
	Role      string `json:"role"`
	Resource  string `json:"resource"`
	Action    string `json:"action"`
	Condition string `json:"condition,omitempty"`
	Effect    string `json:"effect"`
	Builtin   bool   `json:"builtin,omitempty"`
}
