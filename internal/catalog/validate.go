package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"switchboard/internal/problem"
)

var (
	dnsLabel   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	kafkaTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	// importName is Backstage's rule for names of the kinds it brings.
	importName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$`)
	labelKey   = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$`)
	labelValue = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$`)
)

// NameHint says what a name of kind must look like.
func NameHint(kind string) string {
	switch kind {
	case KindService, KindBroker, KindSaga:
		return "must be 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit"
	case KindQueue:
		return "must be 1-255 bytes of UTF-8 without control characters, and not start with amq. (RabbitMQ reserves it)"
	case KindTopic:
		return "must be 1-249 letters, digits, '.', '_' or '-', and not . or .. (as Kafka allows)"
	}
	return "must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
}

// ValidName reports whether name is a valid name for an entity of kind.
func ValidName(kind, name string) bool {
	switch kind {
	case KindService, KindBroker, KindSaga:
		return dnsLabel.MatchString(name)
	case KindQueue:
		if name == "" || len(name) > 255 || !utf8.ValidString(name) || strings.HasPrefix(name, "amq.") {
			return false
		}
		for _, c := range name {
			if c < 0x20 || c == 0x7f {
				return false
			}
		}
		return true
	case KindTopic:
		return kafkaTopic.MatchString(name) && name != "." && name != ".."
	}
	return importName.MatchString(name)
}

// IsNative reports whether kind has its own routes.
func IsNative(kind string) bool { return slices.Contains(NativeKinds, kind) }

// validate checks e as a whole; every bad field is reported at once.
func validate(e *Entity) error {
	f := problem.Fields{}
	// No text may hold a NUL: PostgreSQL stores none in text or jsonb.
	if b, err := json.Marshal(e); err == nil && (bytes.Contains(b, []byte(`\u0000`)) || bytes.Contains(e.Raw, []byte(`\u0000`))) {
		f.Add("entity", "no text may hold a NUL character")
		return f.Err()
	}
	f.Check(ValidName(e.Kind, e.Name), "name", NameHint(e.Kind))
	f.Check(validNamespace(e.Namespace), "namespace", "must be a lower-case word")
	f.Check(e.OwnerTeam == "" || dnsLabel.MatchString(e.OwnerTeam) || !IsNative(e.Kind) || e.Source != "", "owner_team", "must be a team's slug")
	f.Check(utf8.RuneCountInString(e.Description) <= 4000 && utf8.ValidString(e.Description), "description", "must be at most 4000 characters of UTF-8")
	f.Check(len(e.Labels) <= 64, "labels", "at most 64 labels")
	for k, v := range e.Labels {
		if !labelKey.MatchString(k) {
			f.Add("labels."+k, "a label key must be an optional DNS prefix and '/', then 1-63 letters, digits, '-', '_' or '.'")
		} else if !labelValue.MatchString(v) {
			f.Add("labels."+k, "a label value must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
		}
	}
	f.Check(len(e.Links) <= 32, "links", "at most 32 links")
	for i, l := range e.Links {
		if !webURL(l.URL) {
			f.Add(fmt.Sprintf("links[%d].url", i), "must be an http or https URL")
		}
		f.Check(utf8.RuneCountInString(l.Title) <= 200, fmt.Sprintf("links[%d].title", i), "at most 200 characters")
	}
	switch e.Kind {
	case KindService:
		validateService(e.Service, f)
	case KindBroker:
		validateBroker(e.Broker, f)
	case KindQueue:
		validateQueue(e.Queue, f)
	case KindTopic:
		validateTopic(e.Topic, f)
	case KindSaga:
		validateSaga(e.Saga, f)
	}
	return f.Err()
}

// Protocols lists the protocols a service endpoint may speak.
var Protocols = []string{"http", "grpc", "amqp", "kafka"}

func validateService(s *ServiceSpec, f problem.Fields) {
	if s == nil {
		return
	}
	f.Check(len(s.Endpoints) <= 32, "endpoints", "at most 32 endpoints")
	for i, ep := range s.Endpoints {
		u, err := url.Parse(ep.URL)
		f.Check(err == nil && u.Host != "" && u.User == nil, fmt.Sprintf("endpoints[%d].url", i), "must be an absolute URL with a host and no user info")
		f.Check(slices.Contains(Protocols, ep.Protocol), fmt.Sprintf("endpoints[%d].protocol", i), "must be one of "+strings.Join(Protocols, ", "))
	}
	if hc := s.HealthCheck; hc != nil {
		u, err := url.Parse(hc.URL)
		f.Check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil, "health_check.url", "must be an http or https URL with no user info")
		f.Check(hc.IntervalSeconds >= 5 && hc.IntervalSeconds <= 3600, "health_check.interval_seconds", "must be 5-3600")
	}
}

func validateBroker(b *BrokerSpec, f problem.Fields) {
	if b == nil {
		f.Add("kind", "must be rabbitmq or kafka")
		return
	}
	switch b.Type {
	case RabbitMQ:
		u, err := url.Parse(b.URL)
		f.Check(err == nil && (u.Scheme == "amqp" || u.Scheme == "amqps") && u.Host != "", "url", "must be an amqp:// or amqps:// URL with a host")
		if b.ManagementURL != "" {
			f.Check(webURL(b.ManagementURL), "management_url", "must be an http or https URL")
		}
		f.Check(len(b.BootstrapServers) == 0 && b.SASL == nil && b.TLS == nil, "bootstrap_servers", "belongs to kafka brokers")
	case Kafka:
		f.Check(len(b.BootstrapServers) > 0 && len(b.BootstrapServers) <= 32, "bootstrap_servers", "must list 1-32 host:port seeds")
		for i, s := range b.BootstrapServers {
			f.Check(hostPort(s), fmt.Sprintf("bootstrap_servers[%d]", i), "must be host:port")
		}
		if b.SASL != nil {
			f.Check(slices.Contains([]string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, b.SASL.Mechanism), "sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
			f.Check(b.SASL.Username != "", "sasl.username", "is required with sasl")
		}
		f.Check(b.URL == "" && b.ManagementURL == "", "url", "belongs to rabbitmq brokers; a kafka broker takes bootstrap_servers")
	default:
		f.Add("kind", "must be rabbitmq or kafka")
	}
}

func validateQueue(q *QueueSpec, f problem.Fields) {
	if q == nil || q.Broker == "" {
		f.Add("broker", "must name a registered rabbitmq broker")
		return
	}
	f.Check(len(q.VHost) <= 255, "vhost", "at most 255 bytes")
	f.Check(len(q.Bindings) <= 256, "bindings", "at most 256 bindings")
	for i, b := range q.Bindings {
		f.Check(len(b.Exchange) <= 255 && utf8.ValidString(b.Exchange), fmt.Sprintf("bindings[%d].exchange", i), "at most 255 bytes of UTF-8")
		f.Check(len(b.RoutingKey) <= 255 && utf8.ValidString(b.RoutingKey), fmt.Sprintf("bindings[%d].routing_key", i), "at most 255 bytes of UTF-8")
	}
	if q.DeadLetterQueue != "" {
		f.Check(ValidName(KindQueue, q.DeadLetterQueue), "dead_letter_queue", NameHint(KindQueue))
	}
	f.Check(len(q.DeadLetterExchange) <= 255, "dead_letter_exchange", "at most 255 bytes")
}

func validateTopic(t *TopicSpec, f problem.Fields) {
	if t == nil || t.Broker == "" {
		f.Add("broker", "must name a registered kafka broker")
		return
	}
	f.Check(t.Partitions >= 1 && t.Partitions <= 100000, "partitions", "must be 1-100000")
	if t.DeadLetterTopic != "" {
		f.Check(ValidName(KindTopic, t.DeadLetterTopic), "dead_letter_topic", NameHint(KindTopic))
	}
}

func validateSaga(s *SagaSpec, f problem.Fields) {
	if s == nil || len(s.Steps) == 0 {
		f.Add("steps", "a saga has at least one step")
		return
	}
	f.Check(len(s.Steps) <= 100, "steps", "at most 100 steps")
	seen := map[string]bool{}
	for i, st := range s.Steps {
		p := fmt.Sprintf("steps[%d]", i)
		f.Check(dnsLabel.MatchString(st.Name) && !seen[st.Name], p+".name", "must be a unique name of 1-63 lower-case letters, digits and '-'")
		seen[st.Name] = true
		f.Check(dnsLabel.MatchString(st.Service), p+".service", "must name a registered service")
		f.Check(st.Action != "" && utf8.RuneCountInString(st.Action) <= 200, p+".action", "is required (at most 200 characters)")
		f.Check(utf8.RuneCountInString(st.Compensation) <= 200, p+".compensation", "at most 200 characters")
	}
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func hostPort(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 || strings.ContainsAny(s[:i], "@/?#\\ \t") {
		return false // user info, a path or spaces have no place in a seed
	}
	for _, c := range s[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
