package backstage

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"switchboard/internal/catalog"
)

// Prefix starts every annotation Switchboard reads.
const Prefix = "switchboard.io/"

// Annotation is one switchboard.io annotation: what Backstage has no field
// for. Values are plain strings; lists are comma-separated.
type Annotation struct {
	Key     string
	Kinds   []string // catalog kinds it applies to
	Meaning string
}

// Annotation keys. Keep this table, Annotations and doc.go in step.
const (
	AnnKind                  = Prefix + "kind"
	AnnEndpoints             = Prefix + "endpoints"
	AnnHealthCheckURL        = Prefix + "health-check-url"
	AnnHealthCheckInterval   = Prefix + "health-check-interval"
	AnnBroker                = Prefix + "broker"
	AnnVHost                 = Prefix + "vhost"
	AnnDeadLetterExchange    = Prefix + "dead-letter-exchange"
	AnnDeadLetterQueue       = Prefix + "dead-letter-queue"
	AnnBindings              = Prefix + "bindings"
	AnnPartitions            = Prefix + "partitions"
	AnnDeadLetterTopic       = Prefix + "dead-letter-topic"
	AnnBrokerType            = Prefix + "broker-type"
	AnnURL                   = Prefix + "url"
	AnnManagementURL         = Prefix + "management-url"
	AnnBootstrapServers      = Prefix + "bootstrap-servers"
	AnnSASLMechanism         = Prefix + "sasl-mechanism"
	AnnSASLUsername          = Prefix + "sasl-username"
	AnnTLS                   = Prefix + "tls"
	AnnTLSServerName         = Prefix + "tls-server-name"
	AnnTLSInsecureSkipVerify = Prefix + "tls-insecure-skip-verify"
)

var (
	svc    = []string{catalog.KindService}
	queue  = []string{catalog.KindQueue}
	topic  = []string{catalog.KindTopic}
	broker = []string{catalog.KindBroker}
)

// Annotations is the one table of what Switchboard reads from and writes
// to metadata.annotations. Relation annotations (RelationAnnotation) come
// after the spec ones.
var Annotations = []Annotation{
	{AnnKind, []string{catalog.KindQueue, catalog.KindTopic, catalog.KindBroker, catalog.KindSaga}, "on a Resource: which native kind it is (queue, topic, broker, saga); else spec.type queue, topic, saga, rabbitmq or kafka says it"},
	{AnnEndpoints, svc, "where the service answers: URLs, comma-separated; the protocol comes from the scheme (http/https, grpc/grpcs, amqp/amqps, kafka) or a protocol= prefix (grpc=http://host:9090)"},
	{AnnHealthCheckURL, svc, "the http(s) URL the server GETs to check health"},
	{AnnHealthCheckInterval, svc, "seconds between health checks (30 or 30s; 5-3600; default 30)"},
	{AnnBroker, []string{catalog.KindQueue, catalog.KindTopic}, "the name of the broker a queue or topic lives on (required)"},
	{AnnVHost, []string{catalog.KindQueue, catalog.KindBroker}, "a RabbitMQ virtual host"},
	{AnnDeadLetterExchange, queue, "the queue's dead-letter exchange"},
	{AnnDeadLetterQueue, queue, "the queue its dead letters end in"},
	{AnnBindings, queue, "the queue's bindings: exchange=routing-key, comma-separated"},
	{AnnPartitions, topic, "the topic's partition count (required, 1-100000)"},
	{AnnDeadLetterTopic, topic, "the topic its dead letters go to"},
	{AnnBrokerType, broker, "rabbitmq or kafka (else spec.type)"},
	{AnnURL, broker, "a RabbitMQ broker's amqp:// or amqps:// URL, without credentials"},
	{AnnManagementURL, broker, "a RabbitMQ broker's management API URL, without credentials"},
	{AnnBootstrapServers, broker, "a Kafka broker's seed brokers, host:port, comma-separated"},
	{AnnSASLMechanism, broker, "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
	{AnnSASLUsername, broker, "Kafka SASL user (the password is never in a catalog file)"},
	{AnnTLS, broker, "true when Kafka is reached over TLS"},
	{AnnTLSServerName, broker, "the TLS server name for Kafka"},
	{AnnTLSInsecureSkipVerify, broker, "true to skip verifying Kafka's certificate"},
}

// RelationAnnotation is the annotation holding relations of type t, as
// comma-separated references: switchboard.io/calls, .../publishes,
// .../consumes, .../dead-letters-to for what Backstage has no field for,
// and one per other type for what its fields cannot hold.
func RelationAnnotation(t string) string { return Prefix + strings.ReplaceAll(t, "_", "-") }

// modelled reports whether key is read into a spec or relations, so that
// Entity.Annotations leaves it out (Entity.Raw keeps it).
func modelled(key string) bool {
	for _, a := range Annotations {
		if a.Key == key {
			return true
		}
	}
	for _, t := range catalog.RelationTypes {
		if RelationAnnotation(t) == key {
			return true
		}
	}
	return false
}

// reporter records a problem at a line and field of the document.
type reporter func(line int, field, format string, args ...any)

// annotations reads metadata.annotations: text values by key, and the
// line of each key.
type annotations struct {
	vals  map[string]string
	lines map[string]int
	line  int // the metadata line, for what is missing
}

func (a annotations) get(key string) (string, int, bool) {
	v, ok := a.vals[key]
	return strings.TrimSpace(v), a.lines[key], ok
}

func annField(key string) string { return "metadata.annotations." + key }

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// resourceKind is the native kind a Resource document declares, or
// "resource".
func resourceKind(a annotations, specType string) string {
	if k, _, ok := a.get(AnnKind); ok {
		return strings.ToLower(k)
	}
	switch strings.ToLower(specType) {
	case "queue":
		return catalog.KindQueue
	case "topic":
		return catalog.KindTopic
	case "saga":
		return catalog.KindSaga
	case catalog.RabbitMQ, catalog.Kafka:
		return catalog.KindBroker
	}
	return "resource"
}

var schemeProtocol = map[string]string{
	"http": "http", "https": "http", "grpc": "grpc", "grpcs": "grpc",
	"amqp": "amqp", "amqps": "amqp", "kafka": "kafka",
}

// readService reads a service's endpoints and health check.
func readService(a annotations, report reporter) *catalog.ServiceSpec {
	s := &catalog.ServiceSpec{Endpoints: []catalog.Endpoint{}}
	if v, line, ok := a.get(AnnEndpoints); ok {
		for i, x := range splitList(v) {
			proto, u := "", x
			if p, rest, ok := strings.Cut(x, "="); ok && slices.Contains(catalog.Protocols, p) && strings.Contains(rest, "://") {
				proto, u = p, rest
			}
			pu, err := url.Parse(u)
			if err != nil || pu.Host == "" || pu.User != nil {
				report(line, annField(AnnEndpoints), "endpoint %d must be an absolute URL with a host and no user info", i+1)
				continue
			}
			if proto == "" {
				proto = schemeProtocol[strings.ToLower(pu.Scheme)]
			}
			if proto == "" {
				report(line, annField(AnnEndpoints), "endpoint %d: scheme %q names no protocol; write http, grpc, amqp or kafka URLs, or protocol=URL", i+1, pu.Scheme)
				continue
			}
			s.Endpoints = append(s.Endpoints, catalog.Endpoint{URL: u, Protocol: proto})
		}
	}
	hcURL, urlLine, hasURL := a.get(AnnHealthCheckURL)
	iv, ivLine, hasInterval := a.get(AnnHealthCheckInterval)
	if hasURL {
		pu, err := url.Parse(hcURL)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil {
			report(urlLine, annField(AnnHealthCheckURL), "must be an http or https URL with a host and no user info")
		}
		s.HealthCheck = &catalog.HealthCheck{URL: hcURL, IntervalSeconds: 30}
	}
	if hasInterval {
		secs, ok := seconds(iv)
		switch {
		case !hasURL:
			report(ivLine, annField(AnnHealthCheckInterval), "needs %s", AnnHealthCheckURL)
		case !ok || secs < 5 || secs > 3600:
			report(ivLine, annField(AnnHealthCheckInterval), "must be 5-3600 seconds (30 or 30s)")
		default:
			s.HealthCheck.IntervalSeconds = secs
		}
	}
	return s
}

func seconds(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d%time.Second != 0 || d > time.Hour*24 {
		return 0, false
	}
	return int(d / time.Second), true
}

func required(a annotations, key, what string, report reporter) (string, int) {
	v, line, ok := a.get(key)
	if !ok || v == "" {
		if line == 0 {
			line = a.line
		}
		report(line, annField(key), "is required for a %s", what)
	}
	return v, line
}

func readQueue(a annotations, report reporter) *catalog.QueueSpec {
	q := &catalog.QueueSpec{Bindings: []catalog.Binding{}}
	q.Broker, _ = required(a, AnnBroker, catalog.KindQueue, report)
	q.VHost, _, _ = a.get(AnnVHost)
	q.DeadLetterExchange, _, _ = a.get(AnnDeadLetterExchange)
	if v, line, ok := a.get(AnnDeadLetterQueue); ok {
		if !catalog.ValidName(catalog.KindQueue, v) {
			report(line, annField(AnnDeadLetterQueue), "%s", catalog.NameHint(catalog.KindQueue))
		}
		q.DeadLetterQueue = v
	}
	if v, line, ok := a.get(AnnBindings); ok {
		for i, x := range splitList(v) {
			ex, rk, ok := strings.Cut(x, "=")
			if !ok || strings.TrimSpace(ex) == "" {
				report(line, annField(AnnBindings), "binding %d must be exchange=routing-key", i+1)
				continue
			}
			q.Bindings = append(q.Bindings, catalog.Binding{Exchange: strings.TrimSpace(ex), RoutingKey: strings.TrimSpace(rk)})
		}
	}
	return q
}

func readTopic(a annotations, report reporter) *catalog.TopicSpec {
	t := &catalog.TopicSpec{}
	t.Broker, _ = required(a, AnnBroker, catalog.KindTopic, report)
	if v, line := required(a, AnnPartitions, catalog.KindTopic, report); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			report(line, annField(AnnPartitions), "must be a whole number, 1-100000")
		}
		t.Partitions = n
	}
	if v, line, ok := a.get(AnnDeadLetterTopic); ok {
		if !catalog.ValidName(catalog.KindTopic, v) {
			report(line, annField(AnnDeadLetterTopic), "%s", catalog.NameHint(catalog.KindTopic))
		}
		t.DeadLetterTopic = v
	}
	return t
}

func readBroker(a annotations, specType string, report reporter) *catalog.BrokerSpec {
	b := &catalog.BrokerSpec{}
	typ, line, ok := a.get(AnnBrokerType)
	if !ok {
		typ, line = strings.ToLower(specType), a.line
	}
	b.Type = typ
	credentials := "must not hold credentials: store them in Switchboard, never in a catalog file"
	switch typ {
	case catalog.RabbitMQ:
		u, line := required(a, AnnURL, "rabbitmq broker", report)
		if u != "" {
			pu, err := url.Parse(u)
			switch {
			case err != nil || (pu.Scheme != "amqp" && pu.Scheme != "amqps") || pu.Host == "":
				report(line, annField(AnnURL), "must be an amqp:// or amqps:// URL with a host")
			case pu.User != nil:
				report(line, annField(AnnURL), "%s", credentials)
			default:
				b.URL = u
			}
		}
		b.VHost, _, _ = a.get(AnnVHost)
		if m, line, ok := a.get(AnnManagementURL); ok {
			pu, err := url.Parse(m)
			switch {
			case err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "":
				report(line, annField(AnnManagementURL), "must be an http or https URL")
			case pu.User != nil:
				report(line, annField(AnnManagementURL), "%s", credentials)
			default:
				b.ManagementURL = m
			}
		}
	case catalog.Kafka:
		v, line := required(a, AnnBootstrapServers, "kafka broker", report)
		for _, s := range splitList(v) {
			if strings.Contains(s, "@") || strings.Contains(s, "/") {
				report(line, annField(AnnBootstrapServers), "must list host:port seeds")
				continue
			}
			b.BootstrapServers = append(b.BootstrapServers, s)
		}
		mech, _, hasMech := a.get(AnnSASLMechanism)
		user, _, hasUser := a.get(AnnSASLUsername)
		if hasMech || hasUser {
			b.SASL = &catalog.KafkaSASL{Mechanism: mech, Username: user}
		}
		tlsOn, l1, hasTLS := a.get(AnnTLS)
		name, _, hasName := a.get(AnnTLSServerName)
		skip, l2, hasSkip := a.get(AnnTLSInsecureSkipVerify)
		if hasTLS || hasName || hasSkip {
			b.TLS = &catalog.KafkaTLS{ServerName: name}
			b.TLS.Enabled = boolAnn(tlsOn, hasTLS, l1, AnnTLS, report)
			b.TLS.InsecureSkipVerify = boolAnn(skip, hasSkip, l2, AnnTLSInsecureSkipVerify, report)
		}
	default:
		report(line, annField(AnnBrokerType), "a broker is rabbitmq or kafka (%s or spec.type)", AnnBrokerType)
	}
	return b
}

func boolAnn(v string, present bool, line int, key string, report reporter) bool {
	if !present {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		report(line, annField(key), "must be true or false")
	}
	return b
}

// readSaga reads spec.steps: name, service, action, compensation.
func readSaga(spec *value, specLine int, report reporter) *catalog.SagaSpec {
	s := &catalog.SagaSpec{Steps: []catalog.SagaStep{}}
	steps, line := spec.get("steps")
	if steps == nil || steps.kind != sequenceValue || len(steps.items) == 0 {
		if line == 0 {
			line = specLine
		}
		report(line, "spec.steps", "a saga lists its steps (name, service, action, compensation)")
		return s
	}
	for i, st := range steps.items {
		field := fmt.Sprintf("spec.steps[%d]", i)
		if st.kind != mappingValue {
			report(st.line, field, "must be a mapping with name, service, action and compensation")
			continue
		}
		var step catalog.SagaStep
		for _, f := range []struct {
			key string
			to  *string
		}{{"name", &step.Name}, {"service", &step.Service}, {"action", &step.Action}, {"compensation", &step.Compensation}} {
			v, l := st.get(f.key)
			if v == nil {
				continue
			}
			s, ok := v.str()
			if !ok {
				report(l, field+"."+f.key, "must be a string")
			}
			*f.to = s
		}
		s.Steps = append(s.Steps, step)
	}
	return s
}

// specAnnotations renders the annotations that hold e's native spec, in
// table order; Parse reads them back to the same spec.
func specAnnotations(e *catalog.Entity) [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	switch {
	case e.Kind == catalog.KindService && e.Service != nil:
		var eps []string
		for _, ep := range e.Service.Endpoints {
			u, err := url.Parse(ep.URL)
			if err == nil && schemeProtocol[strings.ToLower(u.Scheme)] == ep.Protocol {
				eps = append(eps, ep.URL)
			} else {
				eps = append(eps, ep.Protocol+"="+ep.URL)
			}
		}
		add(AnnEndpoints, strings.Join(eps, ","))
		if hc := e.Service.HealthCheck; hc != nil {
			add(AnnHealthCheckURL, hc.URL)
			add(AnnHealthCheckInterval, strconv.Itoa(hc.IntervalSeconds))
		}
	case e.Kind == catalog.KindQueue && e.Queue != nil:
		q := e.Queue
		add(AnnBroker, q.Broker)
		add(AnnVHost, q.VHost)
		add(AnnDeadLetterExchange, q.DeadLetterExchange)
		add(AnnDeadLetterQueue, q.DeadLetterQueue)
		var bs []string
		for _, b := range q.Bindings {
			bs = append(bs, b.Exchange+"="+b.RoutingKey)
		}
		add(AnnBindings, strings.Join(bs, ","))
	case e.Kind == catalog.KindTopic && e.Topic != nil:
		add(AnnBroker, e.Topic.Broker)
		add(AnnPartitions, strconv.Itoa(e.Topic.Partitions))
		add(AnnDeadLetterTopic, e.Topic.DeadLetterTopic)
	case e.Kind == catalog.KindBroker && e.Broker != nil:
		b := e.Broker
		add(AnnBrokerType, b.Type)
		add(AnnURL, b.URL)
		add(AnnVHost, b.VHost)
		add(AnnManagementURL, b.ManagementURL)
		add(AnnBootstrapServers, strings.Join(b.BootstrapServers, ","))
		if b.SASL != nil {
			add(AnnSASLMechanism, b.SASL.Mechanism)
			add(AnnSASLUsername, b.SASL.Username)
			if b.SASL.Mechanism == "" && b.SASL.Username == "" {
				// An empty SASL block still reads back as one.
				out = append(out, [2]string{AnnSASLMechanism, ""})
			}
		}
		if b.TLS != nil {
			add(AnnTLS, strconv.FormatBool(b.TLS.Enabled))
			add(AnnTLSServerName, b.TLS.ServerName)
			if b.TLS.InsecureSkipVerify {
				add(AnnTLSInsecureSkipVerify, "true")
			}
		}
	}
	return out
}
