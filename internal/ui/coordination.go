package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"switchboard/internal/auth"
	"switchboard/internal/lockd"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/views"
)

// registerCoordination adds the pages of the lock, election and cluster
// services to the tenant group t. The page's live view listens on the REST
// API's streams (/api/v1/tenants/{tenant}/locks/watch and
// .../elections/{name}/observe, authenticated by the session cookie) and
// reloads the fragments below on each event.
func (u *UI) registerCoordination(t *echo.Group) {
	t.GET("/coordination", u.coordinationPage)
	t.GET("/coordination/locks", u.coordinationLocks)
	t.POST("/coordination/locks/release", u.forceRelease)
	t.GET("/coordination/elections", u.coordinationElections)
	t.GET("/coordination/cluster", u.coordinationCluster)
	t.GET("/coordination/election", u.coordinationElection)
	t.GET("/coordination/election/leader", u.coordinationElectionLeader)
}

func (u *UI) coordinationPage(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "lock", "")); err != nil {
		return err
	}
	v := views.Coordination{Available: u.d.Locks != nil, CanForce: u.mayForce(c)}
	if v.Available {
		var err error
		if v.Locks, err = u.lockRows(p); err != nil {
			return err
		}
		// A tenant's policy may let a role read locks but not elections.
		switch err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "election", "")); {
		case err == nil:
			v.ShowElections = true
			if v.Elections, err = u.electionRows(p); err != nil {
				return err
			}
		case problem.Code(err) != problem.CodeForbidden:
			return err
		}
		if u.maySeeCluster(c) {
			cv := u.clusterView()
			v.Cluster = &cv
		}
	}
	return render(c, http.StatusOK, views.CoordinationPage(page(c, "Locks & elections", views.SectionCoordination), v))
}

func (u *UI) coordinationLocks(c echo.Context) error {
	force := u.mayForce(c)
	return liveList(u, c, "lock", u.lockRows, func(rows []views.LockRow, msg string) templ.Component {
		return views.LocksTable(principal(c).TenantSlug, rows, force, msg)
	})
}

// mayForce reports whether the user may force the release of a lock
// whoever holds it: delete on locks, which the built-in rules give to
// admins and owners only.
func (u *UI) mayForce(c echo.Context) bool {
	p := principal(c)
	return u.rbac.Authorize(c.Request().Context(), p, rbac.Delete, rbac.Of(p, "lock", "")) == nil
}

// forceRelease frees the lock ?name= whoever holds it (the next waiter gets
// it) and answers the locks table as it now stands.
func (u *UI) forceRelease(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	name := c.QueryParam("name")
	if err := u.rbac.Authorize(ctx, p, rbac.Delete, rbac.Of(p, "lock", name)); err != nil {
		return err
	}
	if u.d.Locks == nil {
		return problem.Errorf(problem.CodeUnavailable, "the lock service is not running on this server")
	}
	held, err := u.d.Locks.ForceRelease(ctx, p.Tenant, name)
	if err != nil {
		msg, err := serviceMessage(err)
		if err != nil {
			return err
		}
		rows, lerr := u.lockRows(p)
		if lerr != nil {
			return lerr
		}
		return htmxAnswer(c, views.LocksTable(p.TenantSlug, rows, true, ""), views.FlashError, "The lock was not released: "+msg)
	}
	rows, err := u.lockRows(p)
	if err != nil {
		return err
	}
	return htmxDone(c, views.LocksTable(p.TenantSlug, rows, true, ""), "Lock "+name+" released; "+held.Owner+" no longer holds it.")
}

func (u *UI) coordinationElections(c echo.Context) error {
	return liveList(u, c, "election", u.electionRows, views.ElectionsTable)
}

// liveList renders the fragment of a list the page's live view reloads:
// the tenant's objects of kind, for a user who may read them.
func liveList[R any](u *UI, c echo.Context, kind string, rows func(auth.Principal) ([]R, error), table func([]R, string) templ.Component) error {
	p := principal(c)
	if err := u.rbac.Authorize(c.Request().Context(), p, rbac.Read, rbac.Of(p, kind, "")); err != nil {
		return err
	}
	if u.d.Locks == nil {
		return render(c, http.StatusOK, table(nil, "The lock service is not running on this server."))
	}
	if err := u.awaitApplied(c); err != nil {
		return err
	}
	list, err := rows(p)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, table(list, ""))
}

func (u *UI) coordinationCluster(c echo.Context) error {
	p := principal(c)
	if u.d.Locks == nil || !u.maySeeCluster(c) {
		return problem.Errorf(problem.CodeForbidden, "only the platform's operators see the Raft group")
	}
	return render(c, http.StatusOK, views.ClusterCard(p.TenantSlug, u.clusterView()))
}

func (u *UI) coordinationElection(c echo.Context) error {
	name := c.QueryParam("election")
	e, msg, err := u.election(c, name)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ElectionResult(principal(c).TenantSlug, name, e, msg))
}

func (u *UI) coordinationElectionLeader(c echo.Context) error {
	if err := u.awaitApplied(c); err != nil {
		return err
	}
	e, msg, err := u.election(c, c.QueryParam("election"))
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.ElectionLeader(e, msg))
}

// appliedWait bounds how long a fragment waits for this node to apply the
// event that asked for it.
const appliedWait = 2 * time.Second

// awaitApplied holds a fragment the live view reloads after a stream event
// (whose revision of the tenant's state comes as ?index=) until this node
// has applied that event. Behind a load balancer the event and the reload may reach
// different nodes, and a lagging node would otherwise show the state from
// before the event, with nothing to correct it until the next one. After
// appliedWait it gives up and shows what it has.
func (u *UI) awaitApplied(c echo.Context) error {
	raw := c.QueryParam("index")
	if raw == "" || u.d.Locks == nil {
		return nil
	}
	index, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return problem.Errorf(problem.CodeInvalid, "index must be a revision of this organisation's coordination state (a non-negative integer)")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), appliedWait)
	defer cancel()
	_ = u.d.Locks.WaitApplied(ctx, principal(c).Tenant, index) // late or gone: show what there is
	return nil
}

// lockRows lists the tenant's locks as this node has applied them: the
// page works on every node of the group, followers included, and its watch
// stream (also served by every node) keeps it current.
func (u *UI) lockRows(p auth.Principal) ([]views.LockRow, error) {
	locks, err := u.d.Locks.AppliedLocks(p.Tenant)
	if err != nil {
		return nil, err
	}
	rows := make([]views.LockRow, len(locks))
	for i, l := range locks {
		rows[i] = views.LockRow{Name: l.Name, Owner: l.Owner, FencingToken: l.FencingToken, ExpiresAt: l.ExpiresAt, Waiters: l.Waiters}
	}
	return rows, nil
}

// electionRows lists the tenant's elections that have a leader, as
// lockRows lists locks.
func (u *UI) electionRows(p auth.Principal) ([]views.ElectionRow, error) {
	es, err := u.d.Locks.AppliedElections(p.Tenant)
	if err != nil {
		return nil, err
	}
	rows := make([]views.ElectionRow, len(es))
	for i, e := range es {
		rows[i] = views.ElectionRow{Name: e.Name, Leader: e.Leader, Term: e.Term, ExpiresAt: e.ExpiresAt}
	}
	return rows, nil
}

// election reads the leader of election name, as lockRows reads locks; an
// election without a leader is a row with no leader.
func (u *UI) election(c echo.Context, name string) (views.ElectionRow, string, error) {
	p := principal(c)
	ctx := c.Request().Context()
	row := views.ElectionRow{Name: name}
	if len(name) > lockd.MaxNameLen {
		return row, fmt.Sprintf("Election names are at most %d bytes.", lockd.MaxNameLen), nil
	}
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "election", name)); err != nil {
		return row, "", err
	}
	if name == "" {
		return row, "", nil
	}
	if u.d.Locks == nil {
		return row, "The lock service is not running on this server.", nil
	}
	l, err := u.d.Locks.AppliedLeader(p.Tenant, name)
	switch {
	case problem.Code(err) == problem.CodeNotFound:
		return row, "", nil
	case problem.Code(err) == problem.CodeInvalid:
		return row, fmt.Sprintf("Election names are 1 to %d bytes of printable characters.", lockd.MaxNameLen), nil
	case err != nil:
		msg, err := serviceMessage(err)
		return row, msg, err
	}
	row.Leader, row.Term, row.ExpiresAt = l.Leader, l.Term, l.ExpiresAt
	return row, "", nil
}

// serviceMessage turns the lock service's application errors into a
// message to show; other errors are returned.
func serviceMessage(err error) (string, error) {
	var nl *lockd.ErrNotLeader
	if errors.As(err, &nl) {
		// Which node leads is the platform's business, not the
		// organisation's: say what to do instead.
		return "this server is not the coordination group's leader, which answers this; try again in a moment (the API redirects to the leader)", nil
	}
	if pe, ok := problem.As(err); ok && pe.Code != problem.CodeInternal {
		return pe.Message, nil
	}
	return "", err
}

// maySeeCluster applies the REST API's rule for GET /api/v1/cluster: the
// platform's operators only.
func (u *UI) maySeeCluster(c echo.Context) bool {
	s, ok := c.Get(sessionKey).(auth.Session)
	if !ok {
		return false
	}
	op, err := u.auth.IsOperator(c.Request().Context(), s.UserID)
	return err == nil && op
}

func (u *UI) clusterView() views.ClusterView {
	st := u.d.Locks.Status()
	v := views.ClusterView{NodeID: st.NodeID, State: st.State, LeaderID: st.LeaderID, LeaderAddr: st.LeaderAddr,
		Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex}
	for _, m := range st.Members {
		v.Members = append(v.Members, views.ClusterMemberRow{ID: m.ID, Addr: m.Addr, Suffrage: m.Suffrage, Leader: m.Leader})
	}
	return v
}
