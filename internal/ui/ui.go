package ui

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"switchboard/internal/access"
	"switchboard/internal/audit"
	"switchboard/internal/auth"
	"switchboard/internal/catalog"
	"switchboard/internal/dlq"
	"switchboard/internal/eventstore"
	"switchboard/internal/idempotency"
	"switchboard/internal/lockd"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
	"switchboard/internal/tracing"
	"switchboard/internal/web"
	"switchboard/static"
	"switchboard/views"
)

// Deps is what the UI needs.
type Deps struct {
	Auth    *auth.Service
	Tenancy *tenancy.Store
	RBAC    *rbac.Service
	Audit   *audit.Log
	Idem    *idempotency.Store
	Locks   *lockd.Node       // nil: the lock pages say the service is not running
	Events  *eventstore.Store // nil: the stream pages say the store is not running
	Catalog *catalog.Store
	// DLQ keeps captured dead letters and replays (nil: the DLQ pages say
	// capture is not running); Runner, when set, starts replays at once.
	DLQ     *dlq.Store
	Runner  *dlq.Runner
	Capture *dlq.Capture
	// Traces keeps spans (nil: the trace pages say tracing is not running).
	Traces *tracing.Store
	// ImportYAML reads a catalog file (Backstage's catalog-info.yaml) and
	// imports it; errors in the file are listed in the result.
	ImportYAML func(ctx context.Context, tenant uuid.UUID, source string, data []byte, allow access.Check) (catalog.ImportResult, error)
	// OpenAPI returns the REST API's OpenAPI 3.1 document (JSON), which the
	// /docs page renders; nil: the page says the document is not available.
	OpenAPI func() ([]byte, error)
}

// UI is the browser surface.
type UI struct {
	idem    *idempotency.Store
	auth    *auth.Service
	tenancy *tenancy.Store
	rbac    *rbac.Service
	d       Deps
	origin  string // the only origin allowed to post (the server's public one)
	secure  bool   // cookies are Secure (the public URL is https)
	docs    docsCache
}

const (
	sessionCookie = auth.SessionCookie
	anonCSRF      = "sb_csrf" // double-submit token for the sign-in and sign-up forms
	sessionKey    = "switchboard.session"
	pageKey       = "switchboard.page"
)

// New returns the UI; Mount adds its routes to a server.
func New(d Deps) *UI {
	return &UI{idem: d.Idem, auth: d.Auth, tenancy: d.Tenancy, rbac: d.RBAC, d: d}
}

// Mount adds the UI's routes and static files to s, and has s render errors
// on browser routes as pages.
func (u *UI) Mount(s *web.Server) {
	u.origin, u.secure = s.Origin(), s.Secure()
	s.OnError(u.renderError)
	e := s.Echo()

	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(static.FS)))))

	e.GET("/favicon.ico", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg") })
	e.GET("/", u.home, u.session)
	e.GET("/docs", u.docsPage, u.optionalSession)
	e.GET("/login", u.loginPage)
	e.POST("/login", u.login, u.anonCSRF)
	e.GET("/signup", u.signupPage)
	e.POST("/signup", u.signup, u.anonCSRF)
	e.GET("/verify-email", u.verifyEmail)
	e.POST("/verify-email/resend", u.resendVerification, u.session, u.csrf)
	e.POST("/logout", u.logout, u.session, u.csrf)
	// The form posts to the address it was served from, so reloading the
	// page after a refused form shows the form again, not a 405.
	e.GET("/tenants/new", u.newTenantPage, u.session)
	e.POST("/tenants/new", u.createTenant, u.session, u.csrf)

	t := e.Group("/t/:tenant", u.session, u.csrf, u.tenant)
	t.GET("", u.overviewPage)
	t.GET("/", func(c echo.Context) error {
		return c.Redirect(http.StatusSeeOther, views.TenantPath(c.Param("tenant"), views.SectionOverview))
	})
	t.GET("/overview", func(c echo.Context) error {
		return c.Redirect(http.StatusSeeOther, views.TenantPath(c.Param("tenant"), views.SectionOverview))
	})
	t.GET("/teams", u.teamsPage)
	t.POST("/teams", u.createTeam)
	t.POST("/teams/:team/delete", u.deleteTeam)
	t.POST("/teams/:team/members", u.addTeamMember)
	t.POST("/teams/:team/members/remove", u.removeTeamMember)
	t.GET("/members", u.membersPage)
	t.POST("/members", u.addMember)
	t.POST("/members/:user/remove", u.removeMember)
	t.POST("/members/:user/role", u.setMemberRole)
	t.POST("/members/invitations/:email/cancel", u.cancelInvitation)
	t.GET("/tokens", u.tokensPage)
	t.POST("/tokens", u.createToken)
	t.POST("/tokens/:id/revoke", u.revokeToken)
	t.GET("/audit", u.auditPage)
	t.GET("/policies", u.policiesPage)
	t.POST("/policies", u.createPolicy)
	t.POST("/policies/try", u.tryPolicy)
	t.POST("/policies/:id/delete", u.deletePolicy)
	u.registerCoordination(t)
	u.registerStreams(t)
	u.registerKV(t)
	u.registerCatalog(t)
	u.registerDLQ(t)
	u.registerTraces(t)
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age="+itoa(int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

func render(c echo.Context, status int, t templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return t.Render(c.Request().Context(), c.Response())
}

func isHTMX(c echo.Context) bool { return c.Request().Header.Get("HX-Request") == "true" }

// renderError draws errors on browser routes as pages (or, for htmx, as a
// flash); API routes keep problem+json.
func (u *UI) renderError(c echo.Context, p web.Problem) bool {
	path := c.Request().URL.Path
	if strings.HasPrefix(path, "/api/") || path == "/healthz" || path == "/readyz" || path == "/metrics" || strings.HasPrefix(path, "/static/") {
		return false
	}
	if p.Status == http.StatusUnauthorized {
		_ = c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		return true
	}
	if isHTMX(c) {
		// htmx does not swap error statuses; answer 200 with an
		// out-of-band flash and no swap of the target.
		c.Response().Header().Set("HX-Reswap", "none")
		_ = render(c, http.StatusOK, views.FlashFragment(&views.Flash{Kind: views.FlashError, Message: p.Detail}))
		return true
	}
	page, _ := c.Get(pageKey).(views.Page)
	title := map[int]string{403: "Not allowed", 404: "Not found", 429: "Slow down"}[p.Status]
	if title == "" {
		title = "Something went wrong"
	}
	detail := p.Detail
	if p.RequestID != "" && p.Status >= 500 {
		detail += " (request " + p.RequestID + ")"
	}
	_ = render(c, p.Status, views.ErrorPage(page, p.Status, title, detail))
	return true
}

// session loads the signed-in user or sends the browser to sign in.
func (u *UI) session(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil {
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		s, err := u.auth.Session(c.Request().Context(), ck.Value)
		if problem.Code(err) == problem.CodeUnauthenticated {
			u.clearCookie(c, sessionCookie)
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		if err != nil {
			return err
		}
		return u.withSession(c, s, next)
	}
}

// withSession puts the session s and the page frame it implies (user,
// organisations, flash) on the request, then runs next.
func (u *UI) withSession(c echo.Context, s auth.Session, next echo.HandlerFunc) error {
	c.Set(sessionKey, s)
	req := c.Request()
	c.SetRequest(req.WithContext(withActor(req.Context(), s)))
	ms, err := u.tenancy.Memberships(req.Context(), s.UserID)
	if err != nil {
		return err
	}
	page := views.Page{CSRF: s.CSRF, User: &views.PageUser{Name: s.Name, Email: s.Email, Unverified: !s.EmailVerified}, Flash: u.takeFlash(c)}
	for _, m := range ms {
		page.Tenants = append(page.Tenants, views.TenantLink{Slug: m.Tenant.Slug, Name: m.Tenant.Name, Role: string(m.Role)})
	}
	c.Set(pageKey, page)
	return next(c)
}

// sameOrigin refuses a request whose Origin (or, lacking it, Referer) names
// another site.
func (u *UI) sameOrigin(c echo.Context) error {
	h := c.Request().Header
	origin := h.Get("Origin")
	if origin == "" {
		if ref, err := url.Parse(h.Get("Referer")); err == nil && ref.Host != "" {
			origin = ref.Scheme + "://" + ref.Host
		}
	}
	if origin != "" && origin != "null" && u.origin != "" && origin != u.origin {
		return problem.Errorf(problem.CodeForbidden, "cross-site request refused")
	}
	return nil
}

// csrf checks the session's token on every state-changing request.
func (u *UI) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if err := u.sameOrigin(c); err != nil {
			return err
		}
		s := c.Get(sessionKey).(auth.Session)
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("_csrf")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
			return problem.Errorf(problem.CodeForbidden, "the form is missing its security token or it is stale; reload the page and try again")
		}
		return next(c)
	}
}

// anonCSRF protects the sign-in and sign-up forms (login CSRF) with a
// double-submit cookie, as there is no session yet.
func (u *UI) anonCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := u.sameOrigin(c); err != nil {
			return err
		}
		ck, err := c.Cookie(anonCSRF)
		if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.FormValue("_csrf"))) != 1 {
			return problem.Errorf(problem.CodeForbidden, "the form is missing its security token or it is stale; reload the page and try again")
		}
		return next(c)
	}
}

// anonToken returns the double-submit token, setting its cookie if needed.
func (u *UI) anonToken(c echo.Context) string {
	if ck, err := c.Cookie(anonCSRF); err == nil && len(ck.Value) >= 32 {
		return ck.Value
	}
	raw, err := randomToken()
	if err != nil {
		return ""
	}
	u.setCookie(c, anonCSRF, raw, 0)
	return raw
}

// tenant scopes the request to :tenant for the signed-in user.
func (u *UI) tenant(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s := c.Get(sessionKey).(auth.Session)
		p, err := u.auth.Scope(c.Request().Context(), auth.Identity{UserID: s.UserID, Email: s.Email}, c.Param("tenant"))
		if err != nil {
			return err
		}
		ck, _ := c.Cookie(sessionCookie) // present: session() loaded it
		web.SetPrincipal(c, p, web.Credential{Session: ck.Value})
		page := c.Get(pageKey).(views.Page)
		page.Current, page.Role = p.TenantSlug, string(p.Role)
		hidden := map[string]string{}
		for _, item := range views.Sections() {
			kind := sectionKinds[item.Section]
			if kind == "" || u.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, kind, "")) == nil {
				page.Nav = append(page.Nav, item)
			} else {
				page.Hidden = append(page.Hidden, item.Label)
				hidden[item.Section] = item.Label
			}
		}
		c.Set(pageKey, page)
		// A link kept from another organisation (the switcher keeps the
		// section) may name a section this role may not open here: go to
		// the overview and say why, rather than answer 403.
		req := c.Request()
		if req.Method == http.MethodGet && !isHTMX(c) {
			for section, label := range hidden {
				if req.URL.Path == views.TenantPath(p.TenantSlug, section) {
					return u.redirectWithFlash(c, views.TenantPath(p.TenantSlug, views.SectionOverview),
						label+" is not open to your role ("+string(p.Role)+") in "+p.TenantInfo.Name+", so here is its overview.")
				}
			}
		}
		return next(c)
	}
}

// sectionKinds maps each nav section to the kind of object it lists: a
// role sees the section when it may read that kind. The overview has none:
// everyone sees it, and it shows only what the role may read.
var sectionKinds = map[string]string{
	views.SectionTeams:        "team",
	views.SectionMembers:      "member",
	views.SectionStreams:      "stream",
	views.SectionKV:           "kv",
	views.SectionCoordination: "lock",
	views.SectionTokens:       "token",
	views.SectionAudit:        "audit",
	views.SectionPolicies:     "policy",
}

// optionalSession loads the signed-in user when there is one, and lets the
// request through either way (for pages open to everyone, such as the API
// docs, that show the console's frame to a signed-in user).
func (u *UI) optionalSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil {
			c.Set(pageKey, views.Page{})
			return next(c)
		}
		s, err := u.auth.Session(c.Request().Context(), ck.Value)
		if err != nil {
			c.Set(pageKey, views.Page{})
			return next(c)
		}
		return u.withSession(c, s, next)
	}
}

func (u *UI) setCookie(c echo.Context, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: u.secure, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge.Seconds())
	}
	c.SetCookie(ck)
}

func (u *UI) clearCookie(c echo.Context, name string) {
	c.SetCookie(&http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: u.secure, SameSite: http.SameSiteLaxMode})
}

func principal(c echo.Context) auth.Principal { return web.PrincipalOf(c) }

func withFlash(p views.Page, kind, msg string) views.Page {
	p.Flash = &views.Flash{Kind: kind, Message: msg}
	return p
}

func page(c echo.Context, title, section string) views.Page {
	p := c.Get(pageKey).(views.Page)
	p.Title, p.Section = title, section
	return p
}

// can reports which of create/update/delete on kind the principal may do.
func (u *UI) can(ctx context.Context, p auth.Principal, kind string) views.Can {
	obj := rbac.Of(p, kind, "")
	return views.Can{
		Create: u.rbac.Authorize(ctx, p, rbac.Create, obj) == nil,
		Update: u.rbac.Authorize(ctx, p, rbac.Update, obj) == nil,
		Delete: u.rbac.Authorize(ctx, p, rbac.Delete, obj) == nil,
	}
}

// formErrors turns a validation error into per-field messages, renaming the
// domain's field names to the form's; other errors are returned as they are.
func formErrors(err error, rename map[string]string) (views.FormErrors, error) {
	pe, ok := problem.As(err)
	if !ok || pe.Code == problem.CodeInternal {
		return nil, err
	}
	errs := views.FormErrors{}
	for k, v := range pe.Fields {
		if n, ok := rename[k]; ok {
			k = n
		}
		errs[k] = v
	}
	if len(pe.Fields) == 0 {
		errs[""] = pe.Message
	}
	return errs, nil
}

// flashCookie carries a success message across a redirect. A cookie, not
// the URL: a link cannot make the app show words of its choosing, and a
// reload does not show the message again.
const flashCookie = "sb_flash"

func (u *UI) redirectWithFlash(c echo.Context, path, msg string) error {
	u.setCookie(c, flashCookie, url.QueryEscape(msg), time.Minute)
	return c.Redirect(http.StatusSeeOther, path)
}

// takeFlash returns the message redirectWithFlash left, if any, and clears
// it. Only a full page takes it: an htmx request would swallow it unseen.
func (u *UI) takeFlash(c echo.Context) *views.Flash {
	req := c.Request()
	ck, err := req.Cookie(flashCookie)
	if err != nil || req.Method != http.MethodGet || req.Header.Get("HX-Request") != "" {
		return nil
	}
	u.clearCookie(c, flashCookie)
	msg, err := url.QueryUnescape(ck.Value)
	if err != nil || msg == "" {
		return nil
	}
	return &views.Flash{Kind: views.FlashSuccess, Message: msg}
}

// htmxDone answers an htmx action: the new fragment (empty to remove the
// target) and a success flash out of band.
func htmxDone(c echo.Context, fragment templ.Component, msg string) error {
	return htmxAnswer(c, fragment, views.FlashSuccess, msg)
}

func htmxAnswer(c echo.Context, fragment templ.Component, kind, msg string) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	ctx := c.Request().Context()
	if fragment != nil {
		if err := fragment.Render(ctx, c.Response()); err != nil {
			return err
		}
	}
	return views.FlashFragment(&views.Flash{Kind: kind, Message: msg}).Render(ctx, c.Response())
}
