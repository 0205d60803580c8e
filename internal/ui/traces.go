package ui

import "github.com/labstack/echo/v4"

// registerTraces adds the tracing pages.
func (u *UI) registerTraces(t *echo.Group) {}
