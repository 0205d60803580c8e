package ui

import "github.com/labstack/echo/v4"

// registerCatalog adds the catalog and topology pages.
func (u *UI) registerCatalog(t *echo.Group) {}
