package ui

import "github.com/labstack/echo/v4"

// registerCoordination adds the pages of the lock, election and cluster
// services to the tenant group t.
func (u *UI) registerCoordination(t *echo.Group) {
}
