// Package access holds what an authorization decision is about: the object
// an action is on, with the attributes a rule may look at (its kind, name,
// owning team and labels), and the Check a handler hands to a domain method.
// The domain method loads the object for its tenant (missing or another
// tenant's: not found), asks the Check about the object as loaded, and only
// then acts, in the same transaction.
//
// It sits below rbac and every domain package, so a domain package can take
// a Check without importing rbac (which imports the identity packages).
package access

import (
	"context"

	"github.com/google/uuid"
)

// Object is what an action is on.
type Object struct {
	Tenant uuid.UUID         // owning tenant; must be the caller's
	Kind   string            // "team", "queue", "dlq", ...
	Name   string            // the object's name, for messages
	Team   string            // owning team slug, if any
	Labels map[string]string // e.g. env=prod
}

// Check decides whether its caller may do its action on obj: nil, or a
// forbidden problem (not found for another tenant's object).
type Check func(ctx context.Context, obj Object) error
