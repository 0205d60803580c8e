package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchboard/internal/problem"
)

// DeadLettering is what SetUpDeadLettering declared for a queue.
type DeadLettering struct {
	Queue string `json:"queue"`
	// Exchange is the dead-letter exchange (direct): the queue's dead
	// letters go there with the queue's name as routing key.
	Exchange string `json:"exchange"`
	// DeadLetterQueue is bound to Exchange and holds the dead letters.
	DeadLetterQueue string `json:"dead_letter_queue"`
	// RetryQueue holds messages a consumer sends there (through the default
	// exchange) for RetryDelay, then gives them back to Queue.
	RetryQueue   string `json:"retry_queue"`
	RetryDelayMs int64  `json:"retry_delay_ms"`
	// QueueType is the type of the queues made: quorum where the broker
	// has them with message TTLs (3.10 and later), else classic.
	QueueType string `json:"queue_type"`
	// Created lists the queues and exchanges that did not exist before.
	Created []string `json:"created"`
	// Policy names the policy that dead-letters Queue when it existed
	// before (RabbitMQ cannot add arguments to an existing queue); empty
	// when Queue was made here with its dead-letter arguments.
	Policy string `json:"policy,omitempty"`
}

// PolicyFunc applies a policy (name, a pattern matching queue names, its
// definition) to the connector's virtual host, through the broker's
// management API.
type PolicyFunc func(ctx context.Context, name, pattern string, definition map[string]any) error

// DeadLetterNames are the names SetUpDeadLettering gives queue's dead-letter
// exchange, dead-letter queue and retry queue.
func DeadLetterNames(queue string) (exchange, dlq, retry string) {
	return queue + ".dlx", queue + ".dlq", queue + ".retry"
}

// SetUpDeadLettering declares, for queue, a dead-letter exchange and a
// dead-letter queue bound to it, and a retry queue whose messages go back
// to queue after retryDelay; queue itself is declared with its dead-letter
// arguments when it does not exist, else dead-lettered by a policy
// (through policy; nil: an existing queue is refused with what to do).
// What exists already with the same settings is kept; what exists with
// others is an error naming it (CodeConflict).
func (c *Connector) SetUpDeadLettering(ctx context.Context, queue string, retryDelay time.Duration, policy PolicyFunc) (DeadLettering, error) {
	ctx, cancel := context.WithTimeout(ctx, min(5*time.Second, c.cfg.Timeout))
	defer cancel()
	conn, err := c.connection(ctx)
	if err != nil {
		return DeadLettering{}, err
	}
	dlx, dlq, retry := DeadLetterNames(queue)
	out := DeadLettering{Queue: queue, Exchange: dlx, DeadLetterQueue: dlq, RetryQueue: retry, RetryDelayMs: retryDelay.Milliseconds(), QueueType: "classic"}
	if quorumSupported(conn) {
		out.QueueType = "quorum"
	}
	typ := amqp.Table{"x-queue-type": out.QueueType}
	s := &setup{conn: conn}
	defer s.close()

	if ok, err := s.exists(func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(dlx, "direct", true, false, false, false, nil)
	}); err != nil {
		return out, err
	} else if !ok {
		if err := s.do("exchange "+dlx, func(ch *amqp.Channel) error { return ch.ExchangeDeclare(dlx, "direct", true, false, false, false, nil) }); err != nil {
			return out, err
		}
		out.Created = append(out.Created, "exchange "+dlx)
	}
	if err := s.queue(&out, dlq, typ); err != nil {
		return out, err
	}
	if err := s.do("binding of "+dlq, func(ch *amqp.Channel) error { return ch.QueueBind(dlq, queue, dlx, false, nil) }); err != nil {
		return out, err
	}
	retryArgs := amqp.Table{"x-queue-type": out.QueueType, "x-message-ttl": retryDelay.Milliseconds(), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue}
	if err := s.queue(&out, retry, retryArgs); err != nil {
		return out, err
	}
	workArgs := amqp.Table{"x-queue-type": out.QueueType, "x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": queue}
	ok, err := s.exists(func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err
	})
	if err != nil {
		return out, err
	}
	if !ok {
		if err := s.do("queue "+queue, func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(queue, true, false, false, false, workArgs)
			return err
		}); err != nil {
			return out, err
		}
		out.Created = append(out.Created, "queue "+queue)
		return out, nil
	}
	// It exists: with these very arguments, a declaration is accepted and
	// there is nothing to do; with others, it is refused.
	ch, err := s.channel()
	if err != nil {
		return out, err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, workArgs); err == nil {
		return out, nil
	}
	if policy == nil {
		return out, problem.Errorf(problem.CodeConflict, "queue %q exists, and RabbitMQ cannot add dead-letter arguments to an existing queue: give the broker a management_url (and its credentials) so a policy can do it, or delete and declare the queue again", queue)
	}
	out.Policy = "switchboard-dead-letter-" + queue
	def := map[string]any{"dead-letter-exchange": dlx, "dead-letter-routing-key": queue}
	if err := policy(ctx, out.Policy, "^"+regexp.QuoteMeta(queue)+"$", def); err != nil {
		return out, err
	}
	return out, nil
}

// setup runs declarations on a channel, opening another after one that a
// refusal closed.
type setup struct {
	conn *amqp.Connection
	ch   *amqp.Channel
}

func (s *setup) channel() (*amqp.Channel, error) {
	if s.ch != nil && !s.ch.IsClosed() {
		return s.ch, nil
	}
	ch, err := s.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: open a channel: %s", redact(err))
	}
	s.ch = ch
	return ch, nil
}

func (s *setup) close() {
	if s.ch != nil && !s.ch.IsClosed() {
		_ = s.ch.Close()
	}
}

// do runs one declaration of what; a refusal because it exists with other
// settings is CodeConflict.
func (s *setup) do(what string, fn func(ch *amqp.Channel) error) error {
	ch, err := s.channel()
	if err != nil {
		return err
	}
	err = fn(ch)
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed {
		return problem.Errorf(problem.CodeConflict, "%s exists on the broker with other settings (%s): change or delete it there first", what, aerr.Reason)
	}
	if err != nil {
		return fmt.Errorf("rabbitmq: declare %s: %s", what, redact(err))
	}
	return nil
}

// exists runs a passive declaration: false when the broker has no such
// thing.
func (s *setup) exists(fn func(ch *amqp.Channel) error) (bool, error) {
	ch, err := s.channel()
	if err != nil {
		return false, err
	}
	err = fn(ch)
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.NotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rabbitmq: look up: %s", redact(err))
	}
	return true, nil
}

// queue declares name with args unless it exists (an existing queue is
// kept as it is: a dead-letter or retry queue made by hand serves).
func (s *setup) queue(out *DeadLettering, name string, args amqp.Table) error {
	ok, err := s.exists(func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		return err
	})
	if err != nil || ok {
		return err
	}
	if err := s.do("queue "+name, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(name, true, false, false, false, args)
		return err
	}); err != nil {
		return err
	}
	out.Created = append(out.Created, "queue "+name)
	return nil
}

// quorumSupported says whether the broker has quorum queues that take all
// the set-up's arguments (a message TTL on the retry queue: 3.10 on).
func quorumSupported(conn *amqp.Connection) bool {
	v, _ := conn.Properties["version"].(string)
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (major > 3 || major == 3 && minor >= 10)
}
