package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
	"switchboard/internal/web"
)

type authLevel int

const (
	authNone         authLevel = iota // public
	authIdentity                      // any valid bearer credential
	authTenant                        // a bearer credential that can see :tenant
	authTenantStream                  // authTenant, or the browser session cookie (WebSocket streams)
	authIngest                        // an API token with the ingest permission, checked by the handler (OTLP answers its own errors)
)

// route is one endpoint and what the OpenAPI document says of it.
type route struct {
	Method  string
	Path    string // echo syntax: /tenants/:tenant
	Summary string
	Tag     string
	Auth    authLevel
	Request any // a value of the request body type, or nil
	// OptionalBody: the request body may be left out (the query says it).
	OptionalBody bool
	Response     any // a value of the success body type, or nil
	Status       int // success status
	Paged        bool
	IfMatch      bool
	// Idempotent routes (POSTs that create) honour Idempotency-Key: a
	// repeat gets the first answer. Other POSTs (lock acquire, campaign,
	// verify) must run each time, and their answers hold secrets.
	Idempotent bool
	Query      []queryParam // query parameters besides limit and cursor
	handler    echo.HandlerFunc
}

// queryParam is a query parameter a route reads, for the OpenAPI document.
type queryParam struct {
	Name, Type, Description string // Type: integer, string or boolean
}

const v1 = "/api/v1"

// routes is the single list of the API's endpoints: they are registered from
// it and the OpenAPI document is generated from it.
func (a *API) routes() []route {
	t := v1 + "/tenants/:tenant"
	rs := []route{
		{Method: http.MethodGet, Path: "/healthz", Summary: "The process is up", Tag: "operations", Response: web.StatusResponse{}, Status: 200},
		{Method: http.MethodGet, Path: "/readyz", Summary: "The server can serve: the database is reachable", Tag: "operations", Response: web.StatusResponse{}, Status: 200},
		{Method: http.MethodGet, Path: v1 + "/openapi.json", Summary: "This OpenAPI document", Tag: "operations", Status: 200, handler: a.openAPI},
		{Method: http.MethodGet, Path: v1 + "/docs", Summary: "Moved: the readable page of this API is /docs", Tag: "operations", Status: 301, handler: a.docsPage},

		{Method: http.MethodPost, Path: v1 + "/auth/signup", Summary: "Create an account (and, optionally, a tenant you own); a link to confirm the address is mailed. The answer is the same for an address that already has an account (the mail says so)", Tag: "auth", Request: SignupRequest{}, Response: SignupResponse{}, Status: 202, handler: a.signup},
		{Method: http.MethodPost, Path: v1 + "/auth/verify-email", Summary: "Confirm an address with the token of its mailed link (single use, expires); pending invitations become memberships", Tag: "auth", Request: VerifyEmailRequest{}, Response: VerifyEmailResponse{}, Status: 200, handler: a.verifyEmail},
		{Method: http.MethodPost, Path: v1 + "/auth/verify-email/resend", Summary: "Mail a fresh link to confirm the caller's address (rate limited)", Tag: "auth", Auth: authIdentity, Status: 202, handler: a.resendVerification},
		{Method: http.MethodPost, Path: v1 + "/auth/login", Summary: "Exchange email and password for an access token (rate limited)", Tag: "auth", Request: LoginRequest{}, Response: LoginResponse{}, Status: 200, handler: a.login},
		{Method: http.MethodGet, Path: v1 + "/me", Summary: "The caller and their tenants", Tag: "auth", Auth: authIdentity, Response: MeResponse{}, Status: 200, handler: a.me},

		{Method: http.MethodPost, Path: v1 + "/tenants", Summary: "Create a tenant you own", Tag: "tenants", Auth: authIdentity, Request: tenantInput{}, Response: TenantResponse{}, Status: 201, handler: a.createTenant},
		{Method: http.MethodGet, Path: t, Summary: "A tenant and your role in it", Tag: "tenants", Auth: authTenant, Response: TenantResponse{}, Status: 200, handler: a.getTenant},

		{Method: http.MethodGet, Path: t + "/teams", Summary: "List teams", Tag: "teams", Auth: authTenant, Response: List[tenancy.Team]{}, Status: 200, Paged: true, handler: listOf(a, "team", a.tenancy.ListTeams)},
		{Method: http.MethodPost, Path: t + "/teams", Summary: "Create a team", Tag: "teams", Auth: authTenant, Request: CreateTeamRequest{}, Response: tenancy.Team{}, Status: 201, Idempotent: true, handler: a.createTeam},
		{Method: http.MethodGet, Path: t + "/teams/:team", Summary: "Get a team (with its ETag)", Tag: "teams", Auth: authTenant, Response: tenancy.Team{}, Status: 200, handler: a.getTeam},
		{Method: http.MethodPatch, Path: t + "/teams/:team", Summary: "Update a team (If-Match for optimistic concurrency)", Tag: "teams", Auth: authTenant, Request: UpdateTeamRequest{}, Response: tenancy.Team{}, Status: 200, IfMatch: true, handler: a.updateTeam},
		{Method: http.MethodDelete, Path: t + "/teams/:team", Summary: "Delete a team", Tag: "teams", Auth: authTenant, Status: 204, handler: a.deleteTeam},
		{Method: http.MethodPost, Path: t + "/teams/:team/members", Summary: "Add a tenant member to a team", Tag: "teams", Auth: authTenant, Request: TeamMemberRequest{}, Response: tenancy.Team{}, Status: 200, handler: a.addTeamMember},
		{Method: http.MethodDelete, Path: t + "/teams/:team/members/:email", Summary: "Remove a member from a team", Tag: "teams", Auth: authTenant, Response: tenancy.Team{}, Status: 200, handler: a.removeTeamMember},

		{Method: http.MethodGet, Path: t + "/members", Summary: "List members", Tag: "members", Auth: authTenant, Response: List[tenancy.Member]{}, Status: 200, Paged: true, handler: listOf(a, "member", a.tenancy.ListMembers)},
		{Method: http.MethodGet, Path: t + "/invitations", Summary: "List pending invitations (addresses not yet confirmed by an account)", Tag: "members", Auth: authTenant, Response: List[tenancy.Member]{}, Status: 200, Paged: true, handler: listOf(a, "member", a.tenancy.ListInvitations)},
		{Method: http.MethodDelete, Path: t + "/invitations/:email", Summary: "Cancel a pending invitation", Tag: "members", Auth: authTenant, Status: 204, handler: a.cancelInvitation},
		{Method: http.MethodPost, Path: t + "/members", Summary: "Add a member: an address with a confirmed account joins at once (status active); any other is invited (status invited) and joins when it is confirmed", Tag: "members", Auth: authTenant, Request: AddMemberRequest{}, Response: tenancy.Member{}, Status: 201, Idempotent: true, handler: a.addMember},
		{Method: http.MethodPatch, Path: t + "/members/:user", Summary: "Change a member's role", Tag: "members", Auth: authTenant, Request: UpdateMemberRequest{}, Response: tenancy.Member{}, Status: 200, handler: a.updateMember},
		{Method: http.MethodDelete, Path: t + "/members/:user", Summary: "Remove a member", Tag: "members", Auth: authTenant, Status: 204, handler: a.removeMember},

		{Method: http.MethodGet, Path: t + "/tokens", Summary: "List API tokens", Tag: "tokens", Auth: authTenant, Response: List[auth.APIToken]{}, Status: 200, Paged: true, handler: listOf(a, "token", a.auth.ListTokens)},
		{Method: http.MethodPost, Path: t + "/tokens", Summary: "Create an API token (its secret is shown once)", Tag: "tokens", Auth: authTenant, Request: CreateTokenRequest{}, Response: CreateTokenResponse{}, Status: 201, Idempotent: true, handler: a.createToken},
		{Method: http.MethodDelete, Path: t + "/tokens/:id", Summary: "Revoke an API token", Tag: "tokens", Auth: authTenant, Status: 204, handler: a.revokeToken},

		{Method: http.MethodGet, Path: t + "/audit", Summary: "The audit log, newest first, optionally filtered", Tag: "audit", Auth: authTenant, Response: List[audit.Entry]{}, Status: 200, Paged: true,
			Query: []queryParam{{"action", "string", "entries whose action starts with this (member. for every member change)"}, {"actor", "string", "entries whose actor contains this, in any case"},
				{"since", "string", "entries at or after this RFC 3339 time"}, {"until", "string", "entries before this RFC 3339 time"}}, handler: a.listAudit},

		{Method: http.MethodGet, Path: t + "/policies", Summary: "Built-in and tenant policy rules, each with its condition in words", Tag: "policies", Auth: authTenant, Response: List[PolicyRule]{}, Status: 200, Paged: true, handler: a.listPolicies},
		{Method: http.MethodPost, Path: t + "/policies/try", Summary: "Answer an example request with the tenant's rules, and with a candidate rule added, before saving it (nothing is saved)", Tag: "policies", Auth: authTenant, Request: TryPolicyRequest{}, Response: TryPolicyResponse{}, Status: 200, handler: a.tryPolicy},
		{Method: http.MethodPost, Path: t + "/policies", Summary: "Add a policy rule (RBAC with an optional ABAC condition)", Tag: "policies", Auth: authTenant, Request: CreatePolicyRequest{}, Response: rbac.Rule{}, Status: 201, Idempotent: true, handler: a.createPolicy},
		{Method: http.MethodDelete, Path: t + "/policies", Summary: "Remove a tenant policy rule named in the body", Tag: "policies", Auth: authTenant, Request: DeletePolicyRequest{}, Status: 204, handler: a.deletePolicyByBody},
		{Method: http.MethodDelete, Path: t + "/policies/:id", Summary: "Remove a tenant policy rule", Tag: "policies", Auth: authTenant, Status: 204, handler: a.deletePolicy},
	}
	rs = append(rs, a.eventRoutes()...)
	rs = append(rs, a.subscriptionRoutes()...)
	rs = append(rs, a.catalogRoutes()...)
	rs = append(rs, a.dlqRoutes()...)
	rs = append(rs, a.deadLetterSetupRoutes()...)
	rs = append(rs, a.traceRoutes()...)
	return append(rs, a.lockRoutes()...)
}
