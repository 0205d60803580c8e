package dlq

import (
	"context"
	"time"

	"github.com/google/uuid"

	"switchboard/internal/access"
	"switchboard/internal/catalog"
	"switchboard/internal/connectors/rabbitmq"
	"switchboard/internal/problem"
)

// SetUpRights are the caller's checks a set-up asks: reading the broker,
// creating the new catalog queues, updating the queue.
type SetUpRights struct {
	Read, Create, Update access.Check
}

// Retry delays a dead-lettering set-up takes.
const (
	DefaultRetryDelay = 30 * time.Second
	MinRetryDelay     = time.Second
	MaxRetryDelay     = 24 * time.Hour
)

// PolicyWriter writes a RabbitMQ policy for queue on tenant's broker
// (through its management API), if allow lets the caller read the broker;
// a queue another policy governs is a conflict.
type PolicyWriter func(ctx context.Context, tenant uuid.UUID, broker, vhost, queue, name, pattern string, def map[string]any, allow access.Check) error

// vhostOf is a virtual host's name, "/" for none.
func vhostOf(v string) string {
	if v == "" {
		return "/"
	}
	return v
}

// DeadLettering is a finished set-up: what was declared on the broker and
// what the catalog now holds.
type DeadLettering struct {
	rabbitmq.DeadLettering
	// Registered lists the catalog entities made (the dead-letter and retry
	// queues, unless they were there).
	Registered []string `json:"registered"`
	// Entity is the queue as the catalog now holds it.
	Entity catalog.Entity `json:"-"`
}

// SetUpDeadLettering declares, on the broker of queue q (a catalog queue
// entity the caller may update), its dead-letter exchange, dead-letter
// queue and retry queue (rabbitmq.Connector.SetUpDeadLettering; a policy
// through b.Policy when the queue already exists), then records it in the
// catalog: the dead-letter and retry queues are registered (owned by q's
// team, with its labels) unless they are, and q names its dead-letter
// exchange and queue, so capture starts; rights are the caller's. A
// broker that does not answer is a 502 naming it.
func (b *Brokers) SetUpDeadLettering(ctx context.Context, tenant uuid.UUID, q catalog.Entity, retryDelay time.Duration, rights SetUpRights) (DeadLettering, error) {
	if q.Queue == nil {
		return DeadLettering{}, problem.Errorf(problem.CodeUnprocessable, "%s is not a queue", q.Name)
	}
	if retryDelay < MinRetryDelay || retryDelay > MaxRetryDelay {
		return DeadLettering{}, problem.Invalid(map[string]string{"retry_delay_ms": "must be from 1000 (1 s) to 86400000 (24 h)"})
	}
	if q.Namespace != catalog.DefaultNamespace {
		return DeadLettering{}, problem.Errorf(problem.CodeUnprocessable, "%s is in namespace %q: a queue's dead_letter_queue names a queue of the default namespace, so dead-lettering is set up for queues there", q.Name, q.Namespace)
	}
	broker, err := b.Catalog.Get(ctx, tenant, catalog.Ref{Kind: catalog.KindBroker, Namespace: catalog.DefaultNamespace, Name: q.Queue.Broker}, rights.Read)
	if err != nil {
		return DeadLettering{}, err
	}
	if broker.Broker != nil && vhostOf(q.Queue.VHost) != vhostOf(broker.Broker.VHost) {
		return DeadLettering{}, problem.Errorf(problem.CodeUnprocessable, "%s is on virtual host %q and its broker %q connects to %q: set up dead-lettering on the broker's virtual host, or register a broker for %q",
			q.Name, vhostOf(q.Queue.VHost), broker.Name, vhostOf(broker.Broker.VHost), vhostOf(q.Queue.VHost))
	}
	// Every right the set-up needs is checked before the broker changes:
	// the new catalog entries must be the caller's to make.
	_, dlqName, retry := rabbitmq.DeadLetterNames(q.Name)
	for _, name := range []string{dlqName, retry} {
		e := catalog.Entity{Kind: catalog.KindQueue, Namespace: q.Namespace, Name: name, OwnerTeam: q.OwnerTeam, Labels: q.Labels}
		if err := rights.Create(ctx, e.Object(tenant)); err != nil {
			return DeadLettering{}, err
		}
	}
	c, _, err := b.Get(ctx, tenant, q.Queue.Broker)
	if err != nil {
		return DeadLettering{}, err
	}
	rc, ok := c.(*rabbitmq.Connector)
	if !ok {
		return DeadLettering{}, problem.Errorf(problem.CodeUnprocessable, "broker %q is not a RabbitMQ broker: dead-lettering is set up on RabbitMQ queues", q.Queue.Broker)
	}
	var policy rabbitmq.PolicyFunc
	if b.Policy != nil {
		policy = func(ctx context.Context, name, pattern string, def map[string]any) error {
			return b.Policy(ctx, tenant, q.Queue.Broker, vhostOf(q.Queue.VHost), q.Name, name, pattern, def, rights.Read)
		}
	}
	set, err := rc.SetUpDeadLettering(ctx, q.Name, retryDelay, policy)
	if err != nil {
		return DeadLettering{}, brokerFailed(q.Queue.Broker, err)
	}
	out := DeadLettering{DeadLettering: set, Registered: []string{}}
	for _, name := range []string{set.DeadLetterQueue, set.RetryQueue} {
		e := catalog.Entity{Kind: catalog.KindQueue, Namespace: q.Namespace, Name: name, OwnerTeam: q.OwnerTeam,
			Description: "made by setting up dead-lettering for " + q.Name, Labels: q.Labels,
			Queue: &catalog.QueueSpec{Broker: q.Queue.Broker, VHost: q.Queue.VHost}}
		_, err := b.Catalog.Create(ctx, tenant, e, nil, rights.Create)
		if problem.Code(err) == problem.CodeConflict {
			continue
		}
		if err != nil {
			return out, err
		}
		out.Registered = append(out.Registered, catalog.Ref{Kind: catalog.KindQueue, Namespace: q.Namespace, Name: name}.String())
	}
	ref := catalog.Ref{Kind: catalog.KindQueue, Namespace: q.Namespace, Name: q.Name}
	for attempt := 0; ; attempt++ {
		next := q
		spec := *q.Queue
		spec.DeadLetterExchange, spec.DeadLetterQueue = set.Exchange, set.DeadLetterQueue
		next.Queue = &spec
		updated, err := b.Catalog.Update(ctx, tenant, ref, q.Version, next, nil, rights.Update)
		if problem.Code(err) == problem.CodePrecondition && attempt < 3 {
			if q, err = b.Catalog.Get(ctx, tenant, ref, rights.Update); err != nil {
				return out, err
			}
			continue
		}
		if err != nil {
			return out, err
		}
		out.Entity = updated
		return out, nil
	}
}
