package api

// subscriptionRoutes are the routes of named subscriptions and consumer groups.
func (a *API) subscriptionRoutes() []route {
	return nil
}
