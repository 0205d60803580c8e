package api

// lockRoutes are the routes of the lock, election, KV and cluster services.
func (a *API) lockRoutes() []route {
	return nil
}
