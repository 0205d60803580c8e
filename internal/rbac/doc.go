// Package rbac decides who may do what in a tenant. It combines role rules
// (RBAC) with attribute conditions (ABAC) on the subject (role, teams) and the
// object (kind, owning team, labels such as env=prod), evaluated by casbin.
//
// Every handler goes through Authorize, the one entry point.
//
// Invariants:
//   - An object of another tenant is not found, never forbidden: callers
//     cannot learn that it exists.
//   - Deny rules win over allow rules; with no matching allow, the answer is
//     forbidden.
//   - The built-in rules apply to every tenant and cannot be removed; a
//     tenant adds rules (allow or deny, with conditions) on top of them.
//   - A tenant's enforcer is rebuilt whenever its policy_version moves, which
//     every policy change bumps in the same transaction, so all replicas see
//     a change on their next request for that tenant.
package rbac
