package ui

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/eventstore"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/views"
)

// subscriptionsPerPage bounds the named subscriptions listed (each with
// its consumer group).
const subscriptionsPerPage = 50

// subscriptionsPage lists the organisation's named subscriptions: where
// each consumer has got to in the log, and the members of its consumer
// group. Checkpoints move as consumers acknowledge, which no stream
// reports, so the list reloads itself every few seconds.
func (u *UI) subscriptionsPage(c echo.Context) error {
	v, err := u.subscriptionsView(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.SubscriptionsPage(page(c, "Named subscriptions", views.SectionStreams), v))
}

// subscriptionsList is the fragment of the list the page reloads.
func (u *UI) subscriptionsList(c echo.Context) error {
	v, err := u.subscriptionsView(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.SubscriptionsList(principal(c).TenantSlug, v))
}

func (u *UI) subscriptionsView(c echo.Context) (views.SubscriptionsView, error) {
	es, err := u.eventStore()
	if err != nil {
		return views.SubscriptionsView{}, err
	}
	p := principal(c)
	ctx := c.Request().Context()
	if err := u.rbac.Authorize(ctx, p, rbac.Read, rbac.Of(p, "stream", "")); err != nil {
		return views.SubscriptionsView{}, err
	}
	cursor := c.QueryParam("cursor")
	subs, next, err := es.ListSubscriptions(ctx, p.Tenant, cursor, subscriptionsPerPage)
	if problem.Code(err) == problem.CodeInvalid {
		return views.SubscriptionsView{}, problem.Errorf(problem.CodeInvalid, "This page link is broken or stale; start again from the first page of subscriptions.")
	}
	if err != nil {
		return views.SubscriptionsView{}, err
	}
	v := views.SubscriptionsView{Cursor: cursor, Next: next, At: time.Now()}
	for _, s := range subs {
		// The list leaves out the members; read them per subscription.
		full, err := es.GetSubscription(ctx, p.Tenant, s.Name)
		if problem.Code(err) == problem.CodeNotFound {
			continue // deleted in between
		}
		if err != nil {
			return v, err
		}
		v.Subscriptions = append(v.Subscriptions, subscriptionRow(full))
	}
	return v, nil
}

func subscriptionRow(s eventstore.NamedSubscription) views.SubscriptionRow {
	r := views.SubscriptionRow{Name: s.Name, Category: s.Category, FromPosition: s.FromPosition, Checkpoint: s.Checkpoint,
		Generation: s.Generation, MemberTTL: time.Duration(s.MemberTTLMs) * time.Millisecond, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
	for _, m := range s.Members {
		r.Members = append(r.Members, views.GroupMemberRow{Member: m.Member, Checkpoint: m.Checkpoint, LastSeen: m.LastSeen,
			Live: time.Since(m.LastSeen) <= r.MemberTTL})
	}
	return r
}
