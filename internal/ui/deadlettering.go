package ui

import (
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"switchboard/internal/catalog"
	"switchboard/internal/dlq"
	"switchboard/internal/problem"
	"switchboard/internal/rbac"
	"switchboard/views"
)

// setUpDeadLettering is the queue page's "Set up dead-lettering"
// (dlq.Brokers.SetUpDeadLettering), decided on the loaded queue; what was
// done, or why not, comes back as the page's flash.
func (u *UI) setUpDeadLettering(c echo.Context) error {
	p := principal(c)
	ctx := c.Request().Context()
	ref, err := entityRef(c)
	if err != nil {
		return err
	}
	if ref.Kind != catalog.KindQueue {
		return problem.NotFound("queue", c.Param("name"))
	}
	if u.d.Capture == nil || u.d.Capture.Brokers == nil {
		return problem.Errorf(problem.CodeUnavailable, "Dead-letter capture is not running on this server.")
	}
	q, err := u.d.Catalog.Get(ctx, p.Tenant, ref, u.rbac.Check(p, rbac.Update))
	if err != nil {
		return err
	}
	back := views.EntityPath(p.TenantSlug, q.Kind, q.Namespace, q.Name)
	secs, err := strconv.Atoi(strings.TrimSpace(c.FormValue("retry_delay_s")))
	if err != nil || secs < 1 || secs > 86400 {
		return u.redirectWithFlash(c, back, "The retry delay is a whole number of seconds from 1 to 86400.")
	}
	set, err := u.d.Capture.Brokers.SetUpDeadLettering(ctx, p.Tenant, q, time.Duration(secs)*time.Second,
		dlq.SetUpRights{Read: u.rbac.Check(p, rbac.Read), Create: u.rbac.Check(p, rbac.Create), Update: u.rbac.Check(p, rbac.Update)})
	if err != nil {
		switch problem.Code(err) {
		case problem.CodeInvalid, problem.CodeUnprocessable, problem.CodeConflict, problem.CodeBadGateway:
			return u.redirectWithFlash(c, back, "Dead-lettering was not set up: "+problemText(err))
		}
		return err
	}
	msg := "Dead letters of " + q.Name + " now go to " + set.DeadLetterQueue + " through " + set.Exchange + "; " + set.RetryQueue +
		" gives messages back after " + (time.Duration(set.RetryDelayMs) * time.Millisecond).String() + "."
	if len(set.Created) > 0 {
		msg += " Declared: " + strings.Join(set.Created, ", ") + "."
	}
	if set.Policy != "" {
		msg += " Policy " + set.Policy + " dead-letters the existing queue."
	}
	return u.redirectWithFlash(c, back, msg)
}
