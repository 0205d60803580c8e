package ui

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"switchboard/internal/rbac"
	"switchboard/views"
)

// overviewCount bounds the lists the overview counts: beyond it the count
// reads "200+" (the list pages show the rest).
const overviewCount = 200

// overviewPage is an organisation's landing page: how much it holds (of
// what the role may read), whether coordination works (the Raft group's
// health for the platform's operators), the latest audit entries for those
// who may read them, and, while it is still empty, what to do first.
func (u *UI) overviewPage(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	may := func(act, kind string) bool { return u.rbac.Authorize(ctx, p, act, rbac.Of(p, kind, "")) == nil }
	count := func(n int, more bool) string {
		if more {
			return itoa(n) + "+"
		}
		return itoa(n)
	}
	v := views.Overview{Name: p.TenantInfo.Name, Role: string(p.Role)}
	var teams, members, invited, streams int
	if may(rbac.Read, "member") {
		ms, next, err := u.tenancy.ListMembers(ctx, p.Tenant, "", overviewCount)
		if err != nil {
			return err
		}
		invs, _, err := u.tenancy.ListInvitations(ctx, p.Tenant, "", overviewCount)
		if err != nil {
			return err
		}
		members, invited = len(ms), len(invs)
		st := views.Stat{Label: "Members", Value: count(members, next != ""), Href: views.TenantPath(p.TenantSlug, views.SectionMembers), ID: "members"}
		if invited > 0 {
			st.Note = countWord(invited, "invitation", "invitations") + " pending"
		}
		v.Stats = append(v.Stats, st)
	}
	if may(rbac.Read, "team") {
		ts, next, err := u.tenancy.ListTeams(ctx, p.Tenant, "", overviewCount)
		if err != nil {
			return err
		}
		teams = len(ts)
		v.Stats = append(v.Stats, views.Stat{Label: "Teams", Value: count(teams, next != ""), Href: views.TenantPath(p.TenantSlug, views.SectionTeams), ID: "teams"})
	}
	if u.d.Events != nil && may(rbac.Read, "stream") {
		ss, next, err := u.d.Events.ListStreams(ctx, p.Tenant, "", overviewCount)
		if err != nil {
			return err
		}
		streams = len(ss)
		v.Stats = append(v.Stats, views.Stat{Label: "Event streams", Value: count(streams, next != ""), Href: views.TenantPath(p.TenantSlug, views.SectionStreams), ID: "streams"})
	}
	if u.d.Locks != nil && may(rbac.Read, "lock") {
		ls, err := u.d.Locks.AppliedLocks(p.Tenant)
		if err != nil {
			return err
		}
		v.Stats = append(v.Stats, views.Stat{Label: "Held locks", Value: itoa(len(ls)), Href: views.TenantPath(p.TenantSlug, views.SectionCoordination), ID: "locks"})
	}

	v.Coordination = u.coordinationHealth(c)

	if may(rbac.Read, "audit") {
		v.ShowActivity = true
		entries, _, err := u.d.Audit.List(ctx, p.Tenant, "", 8)
		if err != nil {
			return err
		}
		for _, e := range entries {
			v.Activity = append(v.Activity, auditRow(e))
		}
	}

	steps := []views.Step{
		{Label: "Create a team", Hint: "Teams own services, queues and topics.", Href: views.TenantPath(p.TenantSlug, views.SectionTeams), Done: teams > 0, Show: may(rbac.Create, "team")},
		{Label: "Invite the people you work with", Hint: "Give each the least role they need.", Href: views.TenantPath(p.TenantSlug, views.SectionMembers), Done: members > 1 || invited > 0, Show: may(rbac.Create, "member")},
		{Label: "Create an API token", Hint: "Scripts and CI call the API with it.", Href: views.TenantPath(p.TenantSlug, views.SectionTokens), Show: may(rbac.Create, "token")},
		{Label: "Append the first event", Hint: "From the Event streams page or through the API.", Href: views.TenantPath(p.TenantSlug, views.SectionStreams), Done: streams > 0, Show: u.d.Events != nil && may(rbac.Use, "stream")},
		{Label: "Read the API docs", Hint: "Every endpoint, with request and response shapes.", Href: "/docs", Show: true},
	}
	v.Empty = teams == 0 && streams == 0 && members <= 1 && invited == 0
	if v.Empty {
		for _, s := range steps {
			if s.Show {
				v.Steps = append(v.Steps, s)
			}
		}
	}
	return render(c, http.StatusOK, views.OverviewPage(page(c, p.TenantInfo.Name, views.SectionOverview), v))
}

// coordinationHealth says whether the lock service works: the platform's
// operators see the Raft group itself, everyone else only whether it is
// available (the group serves every organisation; its shape is not theirs
// to see).
func (u *UI) coordinationHealth(c echo.Context) views.Health {
	if u.d.Locks == nil {
		return views.Health{Message: "Locks, elections and the key-value space are not running on this server."}
	}
	h := views.Health{Available: u.d.Locks.Ready() == nil}
	if h.Available {
		h.Message = "Locks, elections and the key-value space are available."
	} else {
		h.Message = "Locks, elections and the key-value space are unavailable right now: the group has no leader. Writes wait until one is elected."
	}
	if u.maySeeCluster(c) {
		cv := u.clusterView()
		h.Cluster = &cv
	}
	return h
}

// countWord says "1 invitation", "3 invitations".
func countWord(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}
