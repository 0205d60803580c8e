package discovery

import (
	"context"

	"github.com/google/uuid"
	rabbithole "github.com/michaelklishin/rabbit-hole/v3"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/problem"
)

// ApplyRabbitPolicy writes a policy for queue (name, a pattern of queue
// names, its definition) in vhost of broker of tenant (when allow lets the caller
// read it), through the broker's
// management API, within DefaultTimeout. A broker without a management URL
// is CodeConflict (saying what it needs); one that does not answer, or
// refuses, CodeBadGateway.
func (c *Checker) ApplyRabbitPolicy(ctx context.Context, tenant uuid.UUID, broker, vhost, queue, name, pattern string, def map[string]any, allow access.Check) error {
	b, err := c.Store.Get(ctx, tenant, catalog.Ref{Kind: catalog.KindBroker, Namespace: catalog.DefaultNamespace, Name: broker}, allow)
	if err != nil {
		return err
	}
	if b.Broker == nil || b.Broker.Type != catalog.RabbitMQ {
		return problem.Errorf(problem.CodeUnprocessable, "broker %q is not a RabbitMQ broker", broker)
	}
	if b.Broker.ManagementURL == "" {
		return problem.Errorf(problem.CodeConflict, "the queue exists, and RabbitMQ cannot add dead-letter arguments to an existing queue: give broker %q a management_url (and its credentials) so a policy can, or delete and declare the queue again", broker)
	}
	creds, err := c.Store.Credentials(ctx, tenant, b.Name)
	if err != nil {
		return err
	}
	rc := c.rabbitConfig(b, creds)
	endpoint, user, pass, err := managementEndpoint(rc)
	if err != nil {
		return err
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	rh, err := managementClient(ctx, rc, b.Name, endpoint, user, pass)
	if err != nil {
		return err
	}
	if vhost == "" {
		vhost = "/"
	}
	// RabbitMQ applies one policy to a queue, the highest priority's: one
	// already governing it would be hidden (or would hide this one).
	if qi, err := rh.GetQueue(vhost, queue); err == nil && qi != nil && qi.Policy != "" && qi.Policy != name {
		return problem.Errorf(problem.CodeConflict, "queue %q is governed by policy %q, and RabbitMQ applies one policy to a queue: add dead-letter-exchange %q (and dead-letter-routing-key %q) to that policy instead",
			queue, qi.Policy, def["dead-letter-exchange"], def["dead-letter-routing-key"])
	}
	res, err := rh.PutPolicy(vhost, name, rabbithole.Policy{Pattern: pattern, ApplyTo: "queues", Priority: 10, Definition: rabbithole.PolicyDefinition(def)})
	if err == nil {
		res.Body.Close()
	}
	if err != nil {
		return brokerError(ctx, b.Name, err, pass, creds.Password)
	}
	return nil
}
