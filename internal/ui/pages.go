package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/idempotency"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
	"switchboard/views"
)

func itoa(n int) string { return strconv.Itoa(n) }

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func withActor(ctx context.Context, s auth.Session) context.Context {
	a := audit.ActorFrom(ctx)
	a.ID, a.Name = s.UserID, s.Email
	return audit.WithActor(ctx, a)
}

// safeNext keeps a post-login redirect on this site. It reads next as a
// browser would before following it (the URL standard drops every tab and
// newline, trims control characters and spaces at the ends, and takes a
// backslash for a slash), so "/\t/evil.test" cannot turn into
// "//evil.test" in the browser; only a path on this origin passes, and the
// normalised form is what is sent back.
func safeNext(next string) string {
	next = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, next)
	next = strings.TrimFunc(next, func(r rune) bool { return r <= ' ' })
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.ContainsFunc(next, unicode.IsControl) {
		return "/"
	}
	return next
}

func (u *UI) home(c echo.Context) error {
	p := c.Get(pageKey).(views.Page)
	if len(p.Tenants) == 0 {
		return c.Redirect(http.StatusSeeOther, "/tenants/new")
	}
	return c.Redirect(http.StatusSeeOther, views.TenantPath(p.Tenants[0].Slug, views.SectionOverview))
}

func (u *UI) loginPage(c echo.Context) error {
	return render(c, http.StatusOK, views.LoginPage(u.anonToken(c), "", c.QueryParam("next"), nil))
}

func (u *UI) login(c echo.Context) error {
	email, next := c.FormValue("email"), safeNext(c.FormValue("next"))
	user, err := u.auth.Login(c.Request().Context(), email, c.FormValue("password"), c.RealIP())
	if err != nil {
		status := http.StatusUnauthorized
		if problem.Code(err) == problem.CodeRateLimited {
			status = http.StatusTooManyRequests
		}
		errs, err := formErrors(err, nil)
		if err != nil {
			return err
		}
		return render(c, status, views.LoginPage(u.anonToken(c), email, next, errs))
	}
	return u.startSession(c, user.ID, next)
}

func (u *UI) startSession(c echo.Context, user uuid.UUID, next string) error {
	cookie, _, err := u.auth.NewSession(c.Request().Context(), user)
	if err != nil {
		return err
	}
	u.setCookie(c, sessionCookie, cookie, u.auth.SessionTTL())
	u.clearCookie(c, anonCSRF)
	return c.Redirect(http.StatusSeeOther, next)
}

func (u *UI) signupPage(c echo.Context) error {
	return render(c, http.StatusOK, views.SignupPage(u.anonToken(c), views.SignupForm{}, nil))
}

func (u *UI) signup(c echo.Context) error {
	f := views.SignupForm{Email: c.FormValue("email"), Name: c.FormValue("name"), TenantSlug: c.FormValue("tenant_slug"), TenantName: c.FormValue("tenant_name")}
	res, err := u.auth.Signup(c.Request().Context(), auth.SignupInput{Email: f.Email, Password: c.FormValue("password"), Name: f.Name,
		TenantSlug: f.TenantSlug, TenantName: f.TenantName, RemoteAddr: c.RealIP()})
	if err != nil {
		errs, err := formErrors(err, map[string]string{"tenant.slug": "tenant_slug", "tenant.name": "tenant_name"})
		if err != nil {
			return err
		}
		status := http.StatusUnprocessableEntity
		if problem.Code(err) == problem.CodeRateLimited {
			status = http.StatusTooManyRequests
		}
		return render(c, status, views.SignupPage(u.anonToken(c), f, errs))
	}
	// The same page whether the address was new or had an account: only
	// the mail says which. Nobody is signed in here, so the page does not
	// tell either.
	u.clearCookie(c, anonCSRF)
	return render(c, http.StatusOK, views.CheckMailPage(res.Email))
}

// verifyEmail follows the link of a verification mail.
func (u *UI) verifyEmail(c echo.Context) error {
	v, err := u.auth.VerifyEmail(c.Request().Context(), c.QueryParam("token"))
	if pe, ok := problem.As(err); ok && pe.Code == problem.CodeInvalid {
		return render(c, http.StatusBadRequest, views.VerifiedPage(false, "This link "+strings.TrimPrefix(pe.Message, "this verification link ")+".", nil))
	}
	if err != nil {
		return err
	}
	var joined []string
	for _, t := range v.Joined {
		joined = append(joined, t.Name)
	}
	return render(c, http.StatusOK, views.VerifiedPage(true, v.User.Email+" is confirmed.", joined))
}

// resendVerification mails the signed-in user a new link.
func (u *UI) resendVerification(c echo.Context) error {
	s := c.Get(sessionKey).(auth.Session)
	back := "/"
	if ref, err := url.Parse(c.Request().Referer()); err == nil && ref.Path != "" {
		back = safeNext(ref.RequestURI())
	}
	if err := u.auth.ResendVerification(c.Request().Context(), s.UserID); err != nil {
		pe, ok := problem.As(err)
		if !ok || pe.Code == problem.CodeInternal {
			return err
		}
		u.setCookie(c, flashCookie, url.QueryEscape(pe.Message), time.Minute)
		return c.Redirect(http.StatusSeeOther, back)
	}
	return u.redirectWithFlash(c, back, "We sent a new link to "+s.Email+".")
}

func (u *UI) logout(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if err := u.auth.EndSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	u.clearCookie(c, sessionCookie)
	return c.Redirect(http.StatusSeeOther, "/login")
}

func (u *UI) newTenantPage(c echo.Context) error {
	return render(c, http.StatusOK, views.NewTenantPage(page(c, "New organisation", ""), "", "", nil))
}

func (u *UI) createTenant(c echo.Context) error {
	s := c.Get(sessionKey).(auth.Session)
	slug, name := c.FormValue("slug"), c.FormValue("name")
	t, err := u.tenancy.CreateTenant(c.Request().Context(), s.UserID, slug, name)
	if err != nil {
		errs, err := formErrors(err, map[string]string{"tenant.slug": "slug", "tenant.name": "name"})
		if err != nil {
			return err
		}
		return render(c, http.StatusUnprocessableEntity, views.NewTenantPage(page(c, "New organisation", ""), slug, name, errs))
	}
	return u.redirectWithFlash(c, views.TenantPath(t.Slug, views.SectionOverview), "Organisation "+t.Name+" created.")
}

// ---- teams ----

func teamRow(t tenancy.Team) views.TeamRow {
	return views.TeamRow{Slug: t.Slug, Name: t.Name, Members: t.Members}
}

func (u *UI) teamsPage(c echo.Context) error { return u.renderTeams(c, http.StatusOK, "", "", nil) }

func (u *UI) renderTeams(c echo.Context, status int, slug, name string, errs views.FormErrors) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "team", "")); err != nil {
		return err
	}
	teams, _, err := u.tenancy.ListTeams(ctx, p.Tenant, "", 200)
	if err != nil {
		return err
	}
	rows := make([]views.TeamRow, len(teams))
	for i, t := range teams {
		rows[i] = teamRow(t)
	}
	return render(c, status, views.TeamsPage(page(c, "Teams", views.SectionTeams), rows, u.can(ctx, p, "team"), slug, name, errs))
}

func (u *UI) createTeam(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Create, rbac.Of(p, "team", "")); err != nil {
		return err
	}
	slug, name := c.FormValue("slug"), c.FormValue("name")
	if _, err := u.tenancy.CreateTeam(ctx, p.Tenant, slug, name); err != nil {
		errs, err := formErrors(err, nil)
		if err != nil {
			return err
		}
		return u.renderTeams(c, http.StatusUnprocessableEntity, slug, name, errs)
	}
	return u.redirectWithFlash(c, views.TenantPath(p.TenantSlug, views.SectionTeams), "Team "+name+" created.")
}

func (u *UI) deleteTeam(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.tenancy.DeleteTeam(ctx, p.Tenant, c.Param("team"), u.rbac.Check(p, rbac.Delete)); err != nil {
		return err
	}
	return htmxDone(c, nil, "Team "+c.Param("team")+" deleted.")
}

func (u *UI) addTeamMember(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	t, err := u.tenancy.AddTeamMember(ctx, p.Tenant, c.Param("team"), c.FormValue("email"), u.rbac.Check(p, rbac.Update))
	if err != nil {
		return err
	}
	return htmxDone(c, views.TeamRowView(page(c, "", ""), teamRow(t), u.can(ctx, p, "team")), c.FormValue("email")+" added to "+t.Name+".")
}

func (u *UI) removeTeamMember(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	t, err := u.tenancy.RemoveTeamMember(ctx, p.Tenant, c.Param("team"), c.QueryParam("email"), u.rbac.Check(p, rbac.Update))
	if err != nil {
		return err
	}
	return htmxDone(c, views.TeamRowView(page(c, "", ""), teamRow(t), u.can(ctx, p, "team")), c.QueryParam("email")+" removed from "+t.Name+".")
}

// ---- members ----

func (u *UI) membersPage(c echo.Context) error {
	return u.renderMembers(c, http.StatusOK, "", string(tenancy.Viewer), nil)
}

func (u *UI) renderMembers(c echo.Context, status int, email, role string, errs views.FormErrors) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "member", "")); err != nil {
		return err
	}
	ms, _, err := u.tenancy.ListMembers(ctx, p.Tenant, "", 200)
	if err != nil {
		return err
	}
	rows := make([]views.MemberRow, len(ms))
	for i, m := range ms {
		rows[i] = views.MemberRow{UserID: m.UserID.String(), Email: m.Email, Name: m.Name, Role: string(m.Role), Joined: m.JoinedAt}
	}
	invs, _, err := u.tenancy.ListInvitations(ctx, p.Tenant, "", 200)
	if err != nil {
		return err
	}
	pending := make([]views.InvitationRow, len(invs))
	for i, m := range invs {
		pending[i] = views.InvitationRow{Email: m.Email, Role: string(m.Role), Invited: m.InvitedAt, InvitedBy: invitedBy(m)}
	}
	return render(c, status, views.MembersPage(page(c, "Members", views.SectionMembers), rows, pending, u.can(ctx, p, "member"), email, role, errs))
}

// invitedBy is who sent an invitation. The domain does not say yet (the
// invitations table keeps invited_by, but Member does not carry it), so the
// page says "not recorded".
func invitedBy(m tenancy.Member) string { return m.InvitedBy }

func (u *UI) addMember(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Create, rbac.Of(p, "member", "")); err != nil {
		return err
	}
	email, role := c.FormValue("email"), c.FormValue("role")
	m, err := u.tenancy.AddMember(ctx, p.Tenant, p.Granter(), email, tenancy.Role(role))
	if err != nil {
		errs, err := formErrors(err, nil)
		if err != nil {
			return err
		}
		return u.renderMembers(c, http.StatusUnprocessableEntity, email, role, errs)
	}
	msg := m.Email + " added as " + role + "."
	if m.Status == tenancy.Invited {
		msg = m.Email + " is invited as " + role + ": they join once they confirm an account with this address."
	}
	return u.redirectWithFlash(c, views.TenantPath(p.TenantSlug, views.SectionMembers), msg)
}

func (u *UI) removeMember(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Delete, rbac.Of(p, "member", c.Param("user"))); err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("user"))
	if err != nil {
		return problem.NotFound("member", c.Param("user"))
	}
	if err := u.tenancy.RemoveMember(ctx, p.Tenant, p.Granter(), id); err != nil {
		return err
	}
	return htmxDone(c, nil, "Member removed.")
}

func (u *UI) cancelInvitation(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	email := c.Param("email")
	if err := u.rbac.Authorize(ctx, p, rbac.Delete, rbac.Of(p, "member", email)); err != nil {
		return err
	}
	if err := u.tenancy.CancelInvitation(ctx, p.Tenant, p.Granter(), email); err != nil {
		return err
	}
	return htmxDone(c, nil, "The invitation of "+email+" is cancelled.")
}

func (u *UI) setMemberRole(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Update, rbac.Of(p, "member", c.Param("user"))); err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("user"))
	if err != nil {
		return problem.NotFound("member", c.Param("user"))
	}
	m, err := u.tenancy.SetMemberRole(ctx, p.Tenant, p.Granter(), id, tenancy.Role(c.FormValue("role")))
	if pe, ok := problem.As(err); ok && pe.Code != problem.CodeNotFound {
		// Refused (the last owner, a role above one's own): put the select
		// back to the role the member still has, and say why.
		ms, _, lerr := u.tenancy.ListMembers(ctx, p.Tenant, "", 200)
		if lerr != nil {
			return lerr
		}
		for _, cur := range ms {
			if cur.UserID == id {
				row := views.MemberRow{UserID: id.String(), Email: cur.Email, Role: string(cur.Role)}
				return htmxAnswer(c, views.MemberRoleSelect(page(c, "", ""), row), views.FlashError, pe.Message)
			}
		}
	}
	if err != nil {
		return err
	}
	row := views.MemberRow{UserID: id.String(), Email: m.Email, Role: string(m.Role)}
	return htmxDone(c, views.MemberRoleSelect(page(c, "", ""), row), m.Email+" is now "+string(m.Role)+".")
}

// ---- tokens ----

func tokenRow(t auth.APIToken) views.TokenRow {
	return views.TokenRow{ID: t.ID.String(), Name: t.Name, Role: string(t.Role), Created: t.CreatedAt, Expires: t.ExpiresAt, LastUsed: t.LastUsedAt, Revoked: t.RevokedAt}
}

func (u *UI) tokensPage(c echo.Context) error {
	return u.renderTokens(c, http.StatusOK, "", "", string(tenancy.Viewer), nil)
}

// The token form carries a one-time form_id: submitting the same form twice
// (a reload of the answer page, a double click) creates one token, not two.

func (u *UI) renderTokens(c echo.Context, status int, secret, name, role string, errs views.FormErrors) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "token", "")); err != nil {
		return err
	}
	ts, _, err := u.auth.ListTokens(ctx, p.Tenant, "", 200)
	if err != nil {
		return err
	}
	rows := make([]views.TokenRow, len(ts))
	for i, t := range ts {
		rows[i] = tokenRow(t)
	}
	if secret != "" {
		c.Response().Header().Set("Cache-Control", "no-store")
	}
	formID, err := randomToken()
	if err != nil {
		return err
	}
	return render(c, status, views.TokensPage(page(c, "API tokens", views.SectionTokens), rows, u.can(ctx, p, "token"), secret, formID, name, role, errs))
}

func (u *UI) createToken(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Create, rbac.Of(p, "token", "")); err != nil {
		return err
	}
	name, role := c.FormValue("name"), c.FormValue("role")
	var expires *time.Time
	if s := c.FormValue("expires_at"); s != "" {
		d, err := time.Parse("2006-01-02", s)
		if err != nil {
			return u.renderTokens(c, http.StatusUnprocessableEntity, "", name, role, views.FormErrors{"expires_at": "must be a date"})
		}
		d = d.Add(24*time.Hour - time.Second) // the end of that day, UTC
		expires = &d
	}
	formID := c.FormValue("form_id")
	caller := "ui:" + p.UserID.String()
	if formID != "" {
		h := sha256.Sum256([]byte(name + "\x00" + role + "\x00" + c.FormValue("expires_at")))
		stored, err := u.idem.Claim(ctx, p.Tenant, caller, "token-form:"+formID, h[:])
		if err != nil {
			return err
		}
		if stored != nil {
			page := page(c, "API tokens", views.SectionTokens)
			c.Set(pageKey, withFlash(page, views.FlashError, "This form was already submitted: the token exists, and its secret was shown once."))
			return u.renderTokens(c, http.StatusOK, "", "", string(tenancy.Viewer), nil)
		}
	}
	_, secret, err := u.auth.CreateToken(ctx, p, name, tenancy.Role(role), expires)
	if formID != "" {
		bg := context.WithoutCancel(ctx)
		if err != nil {
			_ = u.idem.Release(bg, p.Tenant, caller, "token-form:"+formID) // nothing was created; the form may be sent again
		} else if cerr := u.idem.Complete(bg, p.Tenant, caller, "token-form:"+formID, idempotency.Response{Status: http.StatusCreated}); cerr != nil {
			return cerr
		}
	}
	if err != nil {
		errs, err := formErrors(err, nil)
		if err != nil {
			return err
		}
		return u.renderTokens(c, http.StatusUnprocessableEntity, "", name, role, errs)
	}
	return u.renderTokens(c, http.StatusCreated, secret, "", string(tenancy.Viewer), nil)
}

func (u *UI) revokeToken(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Delete, rbac.Of(p, "token", c.Param("id"))); err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return problem.NotFound("token", c.Param("id"))
	}
	t, err := u.auth.RevokeToken(ctx, p.Tenant, id)
	if err != nil {
		return err
	}
	return htmxDone(c, views.TokenRowView(page(c, "", ""), tokenRow(t), u.can(ctx, p, "token")), "Token "+t.Name+" revoked.")
}

// ---- audit ----

// auditPerPage is how many entries a page of the audit log shows.
const auditPerPage = 50

func auditRow(e audit.Entry) views.AuditRow {
	return views.AuditRow{At: e.At, Actor: e.Actor, Action: e.Action, ObjectKind: e.ObjectKind, ObjectID: e.ObjectID,
		RemoteAddr: e.RemoteAddr, Before: e.Before, After: e.After}
}

// auditPage lists the audit log newest first, a page at a time, filtered
// by action (prefix), actor (substring) and a range of days (UTC).
func (u *UI) auditPage(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "audit", "")); err != nil {
		return err
	}
	f := views.AuditFilter{Action: strings.TrimSpace(c.QueryParam("action")), Actor: strings.TrimSpace(c.QueryParam("actor")),
		From: strings.TrimSpace(c.QueryParam("from")), To: strings.TrimSpace(c.QueryParam("to"))}
	v := views.AuditView{Filter: f, Errs: views.FormErrors{}, First: c.QueryParam("cursor") == ""}
	var since, until time.Time
	if f.From != "" {
		d, err := time.Parse("2006-01-02", f.From)
		if err != nil {
			v.Errs["from"] = "Give a date, such as 2025-01-31."
		}
		since = d
	}
	if f.To != "" {
		d, err := time.Parse("2006-01-02", f.To)
		if err != nil {
			v.Errs["to"] = "Give a date, such as 2025-01-31."
		}
		until = d.Add(24 * time.Hour) // the end of that day
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		v.Errs["to"] = "Give a day on or after the first one."
	}
	if len(v.Errs) > 0 {
		return render(c, http.StatusUnprocessableEntity, views.AuditPage(page(c, "Audit log", views.SectionAudit), v))
	}
	entries, next, err := u.d.Audit.Search(ctx, p.Tenant, audit.Filter{Action: f.Action, Actor: f.Actor, Since: since, Until: until},
		c.QueryParam("cursor"), auditPerPage)
	if problem.Code(err) == problem.CodeInvalid {
		return problem.Errorf(problem.CodeInvalid, "This page link is broken or stale; start again from the newest entries.")
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		v.Entries = append(v.Entries, auditRow(e))
	}
	cursor := next
	v.Next = cursor
	return render(c, http.StatusOK, views.AuditPage(page(c, "Audit log", views.SectionAudit), v))
}

// ---- policies ----

func (u *UI) policiesPage(c echo.Context) error {
	return u.renderPolicies(c, http.StatusOK, views.PolicyForm{Role: "operator", Effect: "allow"}, views.TryForm{Role: "operator"}, nil)
}

func (u *UI) renderPolicies(c echo.Context, status int, f views.PolicyForm, try views.TryForm, errs views.FormErrors) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "policy", "")); err != nil {
		return err
	}
	rules, err := u.rbac.List(ctx, p.Tenant)
	if err != nil {
		return err
	}
	kind := c.QueryParam("kind")
	if kind != "" && !slices.Contains(rbac.Kinds, kind) {
		kind = ""
	}
	v := views.PoliciesView{Kind: kind, Kinds: rbac.Kinds, Form: f, Try: try, Errs: errs, CanTry: tryAvailable,
		Matrix: policyMatrix(rules, kind)}
	for i, r := range rules {
		row := views.PolicyRow{Role: string(r.Role), Resource: r.Resource, Action: r.Action, Condition: r.Condition,
			Effect: r.Effect, Builtin: r.Builtin, Explained: explain(r.Condition)}
		if r.Builtin {
			row.ID = "builtin-" + itoa(i)
			v.Builtin = append(v.Builtin, row)
		} else {
			row.ID = r.ID.String()
			v.Rules = append(v.Rules, row)
		}
	}
	return render(c, status, views.PoliciesPage(page(c, "Policies", views.SectionPolicies), u.can(ctx, p, "policy"), v))
}

func policyFormOf(c echo.Context) views.PolicyForm {
	return views.PolicyForm{Role: c.FormValue("role"), Resource: strings.TrimSpace(c.FormValue("resource")), Action: strings.TrimSpace(c.FormValue("action")),
		Condition: strings.TrimSpace(c.FormValue("condition")), Effect: c.FormValue("effect")}
}

func tryFormOf(c echo.Context) views.TryForm {
	return views.TryForm{Role: c.FormValue("try_role"), Teams: c.FormValue("try_teams"), Action: strings.TrimSpace(c.FormValue("try_action")),
		Kind: strings.TrimSpace(c.FormValue("try_kind")), Name: c.FormValue("try_name"), Team: c.FormValue("try_team"), Labels: c.FormValue("try_labels")}
}

func (u *UI) createPolicy(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Create, rbac.Of(p, "policy", "")); err != nil {
		return err
	}
	f := policyFormOf(c)
	_, err := u.rbac.Add(ctx, p.Tenant, p.Role, rbac.Rule{Role: tenancy.Role(f.Role), Resource: f.Resource, Action: f.Action, Condition: f.Condition, Effect: f.Effect})
	if err != nil {
		errs, err := formErrors(err, nil)
		if err != nil {
			return err
		}
		return u.renderPolicies(c, http.StatusUnprocessableEntity, f, tryFormOf(c), errs)
	}
	return u.redirectWithFlash(c, views.TenantPath(p.TenantSlug, views.SectionPolicies), "Rule added.")
}

func (u *UI) deletePolicy(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Delete, rbac.Of(p, "policy", c.Param("id"))); err != nil {
		return err
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return problem.NotFound("policy", c.Param("id"))
	}
	if err := u.rbac.Remove(ctx, p.Tenant, id); err != nil {
		return err
	}
	return htmxDone(c, nil, "Rule removed.")
}
