package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	rabbithole "github.com/michaelklishin/rabbit-hole/v3"

	"switchboard/internal/problem"
)

// RabbitConfig says how to reach a RabbitMQ management HTTP API.
type RabbitConfig struct {
	// Name is the broker's catalog name, used in error messages; the
	// management host when empty.
	Name string
	// ManagementURL is the API's base URL (http or https), such as
	// http://rabbit:15672. User information in it is used when Username is
	// empty, and never shown.
	ManagementURL string
	Username      string
	Password      string
	// VHost limits the reading to one virtual host; empty reads every
	// virtual host the user may see.
	VHost string
	// Client's transport carries every request (callers pass the one that
	// enforces their egress rules); http.DefaultTransport when nil.
	Client *http.Client
}

// RabbitMQ reads the queues, exchanges, bindings, consumers and the
// dead-letter policies of a RabbitMQ broker through its management API.
// It answers within DefaultTimeout (or ctx's deadline when sooner); a
// broker that does not answer is CodeBadGateway.
func RabbitMQ(ctx context.Context, c RabbitConfig) (Inventory, error) {
	endpoint, user, pass, err := managementEndpoint(c)
	if err != nil {
		return Inventory{}, err
	}
	name := c.Name
	if name == "" {
		name = hostOf(endpoint)
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	rh, err := managementClient(ctx, c, name, endpoint, user, pass)
	if err != nil {
		return Inventory{}, err
	}

	inv, err := readRabbit(rh, c.VHost)
	if err != nil {
		var status apiStatus
		if errors.As(err, &status) && int(status) == http.StatusNotFound && c.VHost != "" {
			return Inventory{}, problem.Errorf(problem.CodeUnprocessable, "broker %q has no virtual host %q", name, c.VHost)
		}
		return Inventory{}, brokerError(ctx, name, err, pass, c.Password)
	}
	return inv, nil
}

// managementClient is a management API client for endpoint whose every
// request ends with ctx.
func managementClient(ctx context.Context, c RabbitConfig, name, endpoint, user, pass string) (*rabbithole.Client, error) {
	base := http.DefaultTransport
	if c.Client != nil && c.Client.Transport != nil {
		base = c.Client.Transport
	}
	rh, err := rabbithole.NewTLSClient(endpoint, user, pass, ctxTransport{ctx: ctx, base: base})
	if err != nil {
		return nil, problem.Errorf(problem.CodeInvalid, "broker %q: the management URL is not valid", name)
	}
	rh.SetTimeout(DefaultTimeout)
	return rh, nil
}

// readRabbit makes the management API calls, one virtual host or all.
func readRabbit(rh *rabbithole.Client, vhost string) (Inventory, error) {
	queues, err := list("queues", vhost, rh.ListQueuesIn, rh.ListQueues)
	if err != nil {
		return Inventory{}, err
	}
	exchanges, err := list("exchanges", vhost, rh.ListExchangesIn, rh.ListExchanges)
	if err != nil {
		return Inventory{}, err
	}
	bindings, err := list("bindings", vhost, rh.ListBindingsIn, rh.ListBindings)
	if err != nil {
		return Inventory{}, err
	}
	consumers, err := list("consumers", vhost, rh.ListConsumersIn, rh.ListConsumers)
	if err != nil {
		return Inventory{}, err
	}
	policies, err := list("policies", vhost, rh.ListPoliciesIn, rh.ListPolicies)
	if err != nil {
		return Inventory{}, err
	}
	return rabbitInventory(vhost, queues, exchanges, bindings, consumers, policies), nil
}

// list reads one kind of object, in vhost when it is set, else in all.
func list[T any](what, vhost string, in func(string) ([]T, error), all func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	if vhost != "" {
		out, err = in(vhost)
	} else {
		out, err = all()
	}
	if err != nil {
		return nil, rabbitErr("list "+what, err)
	}
	return out, nil
}

// rabbitErr marks refused credentials and keeps what was being read.
// The management API answers 401 both to a wrong password and to a user
// without the management tag.
func rabbitErr(what string, err error) error {
	var resp rabbithole.ErrorResponse
	if errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) ||
		strings.Contains(err.Error(), "401 Unauthorized") {
		return fmt.Errorf("%s: %w", what, errRefusedCredentials)
	}
	if errors.As(err, &resp) {
		// Only the status: the API's own text is not needed to act.
		return fmt.Errorf("%s: %w", what, apiStatus(resp.StatusCode))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// apiStatus is an error status the management API answered.
type apiStatus int

func (s apiStatus) Error() string {
	return fmt.Sprintf("the management API answered %d %s", int(s), http.StatusText(int(s)))
}

// rabbitInventory builds the inventory from the API's answers.
func rabbitInventory(vhost string, queues []rabbithole.QueueInfo, exchanges []rabbithole.ExchangeInfo,
	bindings []rabbithole.BindingInfo, consumers []rabbithole.ConsumerInfo, policies []rabbithole.Policy,
) Inventory {
	inv := emptyInventory("rabbitmq")
	inv.VHost = vhost

	type key struct{ vhost, name string }
	policy := make(map[key]rabbithole.PolicyDefinition, len(policies))
	for _, p := range policies {
		policy[key{p.Vhost, p.Name}] = p.Definition
	}
	for _, q := range queues {
		out := Queue{
			Name:          q.Name,
			VHost:         q.Vhost,
			Type:          q.Type,
			Durable:       q.Durable,
			Exclusive:     q.Exclusive,
			Policy:        q.Policy,
			Consumers:     q.Consumers,
			MessagesReady: q.MessagesReady,
		}
		if out.Type == "" {
			out.Type = "classic"
		}
		def := policy[key{q.Vhost, q.Policy}]
		if dlx, ok := setting(q.Arguments, def, "dead-letter-exchange"); ok {
			out.DeadLettering = true
			out.DeadLetterExchange = dlx
		}
		if rk, ok := setting(q.Arguments, def, "dead-letter-routing-key"); ok {
			out.DeadLetterRoutingKey = rk
		}
		inv.Queues = append(inv.Queues, out)
	}
	for _, e := range exchanges {
		inv.Exchanges = append(inv.Exchanges, Exchange{Name: e.Name, VHost: e.Vhost, Type: e.Type})
	}
	for _, b := range bindings {
		inv.Bindings = append(inv.Bindings, Binding{
			VHost:           b.Vhost,
			Source:          b.Source,
			Destination:     b.Destination,
			DestinationType: b.DestinationType,
			RoutingKey:      b.RoutingKey,
		})
	}
	for _, c := range consumers {
		inv.Consumers = append(inv.Consumers, Consumer{
			VHost:       c.Queue.Vhost,
			Queue:       c.Queue.Name,
			ConsumerTag: c.ConsumerTag,
			Channel:     c.ChannelDetails.Name,
			Connection:  c.ChannelDetails.ConnectionName,
		})
	}
	slices.SortFunc(inv.Queues, func(a, b Queue) int {
		return cmpPair(a.VHost, a.Name, b.VHost, b.Name)
	})
	slices.SortFunc(inv.Exchanges, func(a, b Exchange) int {
		return cmpPair(a.VHost, a.Name, b.VHost, b.Name)
	})
	slices.SortFunc(inv.Bindings, func(a, b Binding) int {
		if c := cmpPair(a.VHost, a.Source, b.VHost, b.Source); c != 0 {
			return c
		}
		return cmpPair(a.Destination, a.RoutingKey, b.Destination, b.RoutingKey)
	})
	slices.SortFunc(inv.Consumers, func(a, b Consumer) int {
		if c := cmpPair(a.VHost, a.Queue, b.VHost, b.Queue); c != 0 {
			return c
		}
		return strings.Compare(a.ConsumerTag, b.ConsumerTag)
	})
	return inv
}

// setting reads a queue setting as RabbitMQ resolves it: the x-argument
// when the queue was declared with one, else the policy's key.
func setting(args map[string]any, policy rabbithole.PolicyDefinition, key string) (string, bool) {
	if v, ok := args["x-"+key]; ok {
		s, isString := v.(string)
		return s, isString
	}
	if v, ok := policy[key]; ok {
		s, isString := v.(string)
		return s, isString
	}
	return "", false
}

func cmpPair(a1, a2, b1, b2 string) int {
	if c := strings.Compare(a1, b1); c != 0 {
		return c
	}
	return strings.Compare(a2, b2)
}

// managementEndpoint checks the management URL and splits out its user
// information: rabbit-hole wants the endpoint without the /api suffix.
func managementEndpoint(c RabbitConfig) (endpoint, user, pass string, err error) {
	u, perr := url.Parse(strings.TrimSpace(c.ManagementURL))
	if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		name := c.Name
		if name == "" {
			name = "rabbitmq"
		}
		return "", "", "", problem.Errorf(problem.CodeInvalid, "broker %q: the management URL must be an http or https URL with a host", name)
	}
	user, pass = c.Username, c.Password
	if u.User != nil && user == "" {
		user = u.User.Username()
		pass, _ = u.User.Password() // absent: an empty password, as given
	}
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api")
	endpoint = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(path, "/")}).String()
	return endpoint, user, pass, nil
}

func hostOf(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Host
	}
	return "rabbitmq"
}

// ctxTransport ties every request to the discovery's bounded context:
// rabbit-hole builds its requests without one.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

// RoundTrip sends req under the bounded context.
func (t ctxTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(req.WithContext(t.ctx))
}
