package discovery

import (
	"fmt"
	"slices"
	"strings"

	"switchboard/internal/catalog"
)

// Kinds of drift.
const (
	// DriftMissing: declared in the catalog, absent from the broker.
	DriftMissing = "missing"
	// DriftUndeclared: on the broker, absent from the catalog.
	DriftUndeclared = "undeclared"
	// DriftDifferent: on both, with a setting that differs.
	DriftDifferent = "different"
)

// Fields a DriftDifferent item names.
const (
	FieldVHost              = "vhost"
	FieldDeadLetterExchange = "dead_letter_exchange"
	FieldDeadLetterQueue    = "dead_letter_queue"
	FieldBindings           = "bindings"
	FieldPartitions         = "partitions"
)

// Item is one difference between the catalog and a broker.
type Item struct {
	// Ref is the entity's reference, "queue:orders" or "topic:payments".
	Ref string `json:"ref"`
	// Kind is DriftMissing, DriftUndeclared or DriftDifferent.
	Kind string `json:"kind"`
	// Field, Declared and Actual say what differs (DriftDifferent only).
	Field    string `json:"field,omitempty"`
	Declared string `json:"declared,omitempty"`
	Actual   string `json:"actual,omitempty"`
	// Message says it in a sentence.
	Message string `json:"message"`
}

// Drift compares the queues and topics the catalog declares on broker
// (QueueSpec.Broker or TopicSpec.Broker equal to broker) with inv, read
// from that broker. It reports declared entities the broker lacks, what
// the broker has that nothing declares (leaving out RabbitMQ's own amq.*
// and server-named queues, exclusive queues, and Kafka's internal topics),
// and differing settings: a queue's virtual host, dead-letter exchange,
// dead-letter queue (as the dead-letter exchange's bindings route the
// dead-letter routing key) and bindings; a topic's partition count.
// Items come sorted by Ref, then Kind, then Field.
func Drift(broker string, declared []catalog.Entity, inv Inventory) []Item {
	var items []Item
	if inv.Type != "kafka" {
		items = append(items, queueDrift(broker, declared, inv)...)
	}
	if inv.Type != "rabbitmq" {
		items = append(items, topicDrift(broker, declared, inv)...)
	}
	slices.SortStableFunc(items, func(a, b Item) int {
		if c := strings.Compare(a.Ref, b.Ref); c != 0 {
			return c
		}
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Field, b.Field)
	})
	if items == nil {
		items = []Item{}
	}
	return items
}

func queueDrift(broker string, declared []catalog.Entity, inv Inventory) []Item {
	byName := make(map[string][]Queue)
	for _, q := range inv.Queues {
		byName[q.Name] = append(byName[q.Name], q)
	}
	type key struct{ vhost, name string }
	matched := make(map[key]bool)
	declaredNames := make(map[string]bool)
	var items []Item
	for _, e := range declaredOn(declared, catalog.KindQueue, broker) {
		declaredNames[e.Name] = true
		ref := e.Ref().String()
		spec := e.Queue
		found := byName[e.Name]
		if len(found) == 0 {
			msg := fmt.Sprintf("queue %q is declared but not on broker %q", e.Name, broker)
			if inv.VHost != "" && spec.VHost != "" && spec.VHost != inv.VHost {
				msg += fmt.Sprintf(" (only virtual host %q was read)", inv.VHost)
			}
			items = append(items, Item{Ref: ref, Kind: DriftMissing, Message: msg})
			continue
		}
		q, same := pickQueue(found, spec.VHost, inv.VHost)
		for _, f := range found {
			matched[key{f.VHost, f.Name}] = true
		}
		if !same {
			items = append(items, Item{
				Ref: ref, Kind: DriftDifferent, Field: FieldVHost,
				Declared: spec.VHost, Actual: q.VHost,
				Message: fmt.Sprintf("queue %q is declared in virtual host %q but is in %q", e.Name, spec.VHost, q.VHost),
			})
		}
		items = append(items, queueSettings(ref, e.Name, spec, q, inv)...)
	}

	undeclared := make(map[string][]string) // name -> virtual hosts
	for _, q := range inv.Queues {
		if matched[key{q.VHost, q.Name}] || declaredNames[q.Name] || !importable(q) {
			continue
		}
		undeclared[q.Name] = append(undeclared[q.Name], q.VHost)
	}
	for name, vhosts := range undeclared {
		where := fmt.Sprintf("virtual host %q", vhosts[0])
		if len(vhosts) > 1 {
			where = "virtual hosts " + quoteJoin(vhosts)
		}
		items = append(items, Item{
			Ref:     refOf(catalog.KindQueue, name),
			Kind:    DriftUndeclared,
			Message: fmt.Sprintf("queue %q in %s is on broker %q but not declared", name, where, broker),
		})
	}
	return items
}

// declaredOn returns the declared queues or topics (kind) on broker.
func declaredOn(declared []catalog.Entity, kind, broker string) []*catalog.Entity {
	var out []*catalog.Entity
	for i := range declared {
		e := &declared[i]
		if e.Kind == kind && (e.Queue != nil && e.Queue.Broker == broker || e.Topic != nil && e.Topic.Broker == broker) {
			out = append(out, e)
		}
	}
	return out
}

// pickQueue chooses which of the same-named queues a declaration means:
// the one in its virtual host (same is true), else the one in the virtual
// host that was read, "/", or the first. A declaration without a virtual
// host accepts any.
func pickQueue(found []Queue, declaredVHost, readVHost string) (q Queue, same bool) {
	for _, q := range found {
		if declaredVHost != "" && q.VHost == declaredVHost {
			return q, true
		}
	}
	anyVHost := declaredVHost == ""
	for _, want := range []string{readVHost, "/"} {
		for _, q := range found {
			if want != "" && q.VHost == want {
				return q, anyVHost
			}
		}
	}
	return found[0], anyVHost
}

func queueSettings(ref, name string, spec *catalog.QueueSpec, q Queue, inv Inventory) []Item {
	var items []Item
	if spec.DeadLetterExchange != "" {
		switch {
		case !q.DeadLettering:
			items = append(items, Item{
				Ref: ref, Kind: DriftDifferent, Field: FieldDeadLetterExchange,
				Declared: spec.DeadLetterExchange,
				Message:  fmt.Sprintf("queue %q declares dead-letter exchange %q but has none on the broker", name, spec.DeadLetterExchange),
			})
		case q.DeadLetterExchange != spec.DeadLetterExchange:
			items = append(items, Item{
				Ref: ref, Kind: DriftDifferent, Field: FieldDeadLetterExchange,
				Declared: spec.DeadLetterExchange, Actual: q.DeadLetterExchange,
				Message: fmt.Sprintf("queue %q declares dead-letter exchange %q but the broker uses %q", name, spec.DeadLetterExchange, q.DeadLetterExchange),
			})
		}
	}
	if spec.DeadLetterQueue != "" {
		got := deadLetterQueues(inv, q)
		if !slices.Contains(got, spec.DeadLetterQueue) {
			msg := fmt.Sprintf("queue %q declares dead-letter queue %q but ", name, spec.DeadLetterQueue)
			switch {
			case !q.DeadLettering:
				msg += "has no dead-letter exchange on the broker"
			case len(got) == 0:
				msg += fmt.Sprintf("dead-letter exchange %q routes its dead letters to no queue", q.DeadLetterExchange)
			default:
				msg += fmt.Sprintf("dead-letter exchange %q routes its dead letters to %s", q.DeadLetterExchange, quoteJoin(got))
			}
			items = append(items, Item{
				Ref: ref, Kind: DriftDifferent, Field: FieldDeadLetterQueue,
				Declared: spec.DeadLetterQueue, Actual: strings.Join(got, ","),
				Message: msg,
			})
		}
	}
	for _, b := range spec.Bindings {
		if !hasBinding(inv, q, b) {
			items = append(items, Item{
				Ref: ref, Kind: DriftDifferent, Field: FieldBindings,
				Declared: bindingText(b),
				Message:  fmt.Sprintf("queue %q declares a binding from exchange %q with routing key %q that the broker lacks", name, b.Exchange, b.RoutingKey),
			})
		}
	}
	return items
}

func hasBinding(inv Inventory, q Queue, b catalog.Binding) bool {
	for _, have := range inv.Bindings {
		if have.VHost == q.VHost && have.Source == b.Exchange && have.Destination == q.Name &&
			have.DestinationType == "queue" && have.RoutingKey == b.RoutingKey {
			return true
		}
	}
	return false
}

func bindingText(b catalog.Binding) string {
	return fmt.Sprintf("exchange=%s routing_key=%s", b.Exchange, b.RoutingKey)
}

// deadLetterQueues lists the queues q's dead letters reach: the queues the
// dead-letter exchange binds with a key that matches the dead-letter
// routing key. Without a dead-letter routing key a message keeps its own
// key, so every queue the exchange binds may receive it. Exchange-to-
// exchange bindings are not followed.
func deadLetterQueues(inv Inventory, q Queue) []string {
	if !q.DeadLettering {
		return nil
	}
	if q.DeadLetterExchange == "" && q.DeadLetterRoutingKey == "" {
		// The default exchange with each message's own key: no one queue.
		return nil
	}
	typ := "direct"
	for _, x := range inv.Exchanges {
		if x.VHost == q.VHost && x.Name == q.DeadLetterExchange {
			typ = x.Type
			break
		}
	}
	var out []string
	for _, b := range inv.Bindings {
		if b.VHost != q.VHost || b.Source != q.DeadLetterExchange || b.DestinationType != "queue" {
			continue
		}
		var routes bool
		switch {
		case q.DeadLetterRoutingKey == "", typ == "fanout", typ == "headers":
			routes = true
		case typ == "topic":
			routes = topicMatch(b.RoutingKey, q.DeadLetterRoutingKey)
		default:
			routes = b.RoutingKey == q.DeadLetterRoutingKey
		}
		if routes && !slices.Contains(out, b.Destination) {
			out = append(out, b.Destination)
		}
	}
	slices.Sort(out)
	return out
}

// topicMatch reports whether a topic exchange's binding pattern matches
// key: words split on '.', '*' stands for one word, '#' for zero or more.
func topicMatch(pattern, key string) bool {
	return matchWords(strings.Split(pattern, "."), strings.Split(key, "."))
}

func matchWords(p, k []string) bool {
	for len(p) > 0 {
		switch p[0] {
		case "#":
			for i := 0; i <= len(k); i++ {
				if matchWords(p[1:], k[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(k) == 0 {
				return false
			}
		default:
			if len(k) == 0 || k[0] != p[0] {
				return false
			}
		}
		p, k = p[1:], k[1:]
	}
	return len(k) == 0
}

// importable says whether an undeclared queue is worth declaring: not one
// of RabbitMQ's own (amq.*, which includes server-named amq.gen-*
// queues), and not an exclusive queue that lives only as long as its
// connection.
func importable(q Queue) bool {
	return !strings.HasPrefix(q.Name, "amq.") && !q.Exclusive
}

func topicDrift(broker string, declared []catalog.Entity, inv Inventory) []Item {
	byName := make(map[string]Topic, len(inv.Topics))
	for _, t := range inv.Topics {
		byName[t.Name] = t
	}
	declaredNames := make(map[string]bool)
	var items []Item
	for _, e := range declaredOn(declared, catalog.KindTopic, broker) {
		declaredNames[e.Name] = true
		ref := e.Ref().String()
		t, ok := byName[e.Name]
		if !ok {
			items = append(items, Item{
				Ref: ref, Kind: DriftMissing,
				Message: fmt.Sprintf("topic %q is declared but not on broker %q", e.Name, broker),
			})
			continue
		}
		if e.Topic.Partitions > 0 && e.Topic.Partitions != t.Partitions {
			items = append(items, Item{
				Ref: ref, Kind: DriftDifferent, Field: FieldPartitions,
				Declared: fmt.Sprint(e.Topic.Partitions), Actual: fmt.Sprint(t.Partitions),
				Message: fmt.Sprintf("topic %q declares %d partitions but has %d on the broker", e.Name, e.Topic.Partitions, t.Partitions),
			})
		}
	}
	for _, t := range inv.Topics {
		if declaredNames[t.Name] || internalTopic(t) {
			continue
		}
		items = append(items, Item{
			Ref: refOf(catalog.KindTopic, t.Name), Kind: DriftUndeclared,
			Message: fmt.Sprintf("topic %q is on broker %q but not declared", t.Name, broker),
		})
	}
	return items
}

// internalTopic says whether a topic belongs to Kafka itself
// (__consumer_offsets, __transaction_state, ...).
func internalTopic(t Topic) bool {
	return t.Internal || strings.HasPrefix(t.Name, "__")
}

// Undeclared builds catalog entities for the undeclared queues and topics
// in drift, as inv shows them on broker, ready to be created in one
// action: namespace "default", no owner, empty labels and links. A queue
// present in several virtual hosts is taken from the virtual host that
// was read, else "/", else the first.
func Undeclared(broker string, inv Inventory, drift []Item) []catalog.Entity {
	out := []catalog.Entity{}
	seen := make(map[string]bool)
	for _, it := range drift {
		if it.Kind != DriftUndeclared || seen[it.Ref] {
			continue
		}
		seen[it.Ref] = true
		ref, err := catalog.ParseRef(it.Ref)
		if err != nil {
			continue // not a reference Drift writes; nothing to import
		}
		e := catalog.Entity{
			Kind:      ref.Kind,
			Namespace: catalog.DefaultNamespace,
			Name:      ref.Name,
			Labels:    map[string]string{},
			Links:     []catalog.Link{},
		}
		switch ref.Kind {
		case catalog.KindQueue:
			var found []Queue
			for _, q := range inv.Queues {
				if q.Name == ref.Name {
					found = append(found, q)
				}
			}
			if len(found) == 0 {
				continue
			}
			q, _ := pickQueue(found, "", inv.VHost)
			e.Queue = queueSpec(broker, inv, q)
		case catalog.KindTopic:
			i := slices.IndexFunc(inv.Topics, func(t Topic) bool { return t.Name == ref.Name })
			if i < 0 {
				continue
			}
			e.Topic = &catalog.TopicSpec{Broker: broker, Partitions: inv.Topics[i].Partitions}
		default:
			continue
		}
		out = append(out, e)
	}
	return out
}

// queueSpec describes q as the catalog declares queues: its explicit
// bindings (not the default exchange's implicit one), its dead-letter
// exchange, and its dead-letter queue when exactly one queue receives its
// dead letters.
func queueSpec(broker string, inv Inventory, q Queue) *catalog.QueueSpec {
	spec := &catalog.QueueSpec{Broker: broker, VHost: q.VHost, Bindings: []catalog.Binding{}}
	for _, b := range inv.Bindings {
		if b.VHost == q.VHost && b.Destination == q.Name && b.DestinationType == "queue" && b.Source != "" {
			spec.Bindings = append(spec.Bindings, catalog.Binding{Exchange: b.Source, RoutingKey: b.RoutingKey})
		}
	}
	if q.DeadLettering {
		spec.DeadLetterExchange = q.DeadLetterExchange
		if dlq := deadLetterQueues(inv, q); len(dlq) == 1 {
			spec.DeadLetterQueue = dlq[0]
		}
	}
	return spec
}

func refOf(kind, name string) string {
	return catalog.Ref{Kind: kind, Namespace: catalog.DefaultNamespace, Name: name}.String()
}

func quoteJoin(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
