package catalog

import (
	"encoding/json"
	"time"
)

// Kinds Switchboard models itself. Entities of other kinds (a Backstage
// API, System, Domain, Group, User, Location, ...) come in through imports:
// they are kept, drawn and exported, with their document in Entity.Raw.
const (
	KindService = "service"
	KindBroker  = "broker"
	KindQueue   = "queue"
	KindTopic   = "topic"
	KindSaga    = "saga"
)

// NativeKinds lists the kinds with their own API routes.
var NativeKinds = []string{KindService, KindBroker, KindQueue, KindTopic, KindSaga}

// DefaultNamespace is the namespace of every entity made through the API;
// imports keep the namespace of their documents.
const DefaultNamespace = "default"

// Relation types.
const (
	Calls         = "calls"
	Publishes     = "publishes"
	Consumes      = "consumes"
	DeadLettersTo = "dead_letters_to"
	DependsOn     = "depends_on"
	StepOf        = "step_of"
	// Kept from imports (Backstage's spec.providesApis, consumesApis,
	// system, domain, memberOf, parent).
	ProvidesAPI = "provides_api"
	ConsumesAPI = "consumes_api"
	PartOf      = "part_of"
	MemberOf    = "member_of"
	ChildOf     = "child_of"
)

// RelationTypes lists every relation type, in the order documents show them.
var RelationTypes = []string{Calls, Publishes, Consumes, DeadLettersTo, DependsOn, StepOf, ProvidesAPI, ConsumesAPI, PartOf, MemberOf, ChildOf}

// Ref names an entity: "kind:name" in the default namespace,
// "kind:namespace/name" in another (as Backstage writes entity references).
type Ref struct {
	Kind      string
	Namespace string
	Name      string
}

// Link is a link shown with an entity (docs, repository, runbook, ...).
type Link struct {
	URL   string `json:"url"`
	Title string `json:"title,omitempty"`
	Type  string `json:"type,omitempty"`
}

// Entity is one catalog entry. Exactly one of the spec pointers is set for
// a native kind; none for an imported kind.
type Entity struct {
	Kind        string            `json:"kind"`
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	OwnerTeam   string            `json:"owner_team,omitempty"`
	Description string            `json:"description"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Links       []Link            `json:"links"`

	Service *ServiceSpec `json:"service,omitempty"`
	Broker  *BrokerSpec  `json:"broker,omitempty"`
	Queue   *QueueSpec   `json:"queue,omitempty"`
	Topic   *TopicSpec   `json:"topic,omitempty"`
	Saga    *SagaSpec    `json:"saga,omitempty"`

	// Source is the import source that last wrote the entity ("" when made
	// through the API); Orphaned marks one a later import of that source no
	// longer holds. Orphans are listed, never deleted by themselves.
	Source   string `json:"source,omitempty"`
	Orphaned bool   `json:"orphaned,omitempty"`
	// Raw is the imported document (JSON) with what Switchboard does not
	// model, written back on export.
	Raw json.RawMessage `json:"-"`
	// Health is the last health check's result (services with a check).
	Health *Health `json:"health,omitempty"`

	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ServiceSpec is what a service declares.
type ServiceSpec struct {
	Endpoints   []Endpoint   `json:"endpoints"`
	HealthCheck *HealthCheck `json:"health_check,omitempty"`
}

// Endpoint is where a service answers.
type Endpoint struct {
	URL      string `json:"url"`
	Protocol string `json:"protocol"` // http, grpc, amqp, kafka
}

// HealthCheck is an HTTP GET the server makes every IntervalSeconds; a 2xx
// answer within the timeout is healthy.
type HealthCheck struct {
	URL             string `json:"url"`
	IntervalSeconds int    `json:"interval_seconds"`
}

// Health is a service's last checked health.
type Health struct {
	Status    string    `json:"status"` // up, down
	CheckedAt time.Time `json:"checked_at"`
	Error     string    `json:"error,omitempty"`
}

// Broker types.
const (
	RabbitMQ = "rabbitmq"
	Kafka    = "kafka"
)

// BrokerSpec is a broker as the API shows it: addresses without their
// credentials. Credentials are kept apart, encrypted (BrokerCredentials).
type BrokerSpec struct {
	Type string `json:"type"` // rabbitmq or kafka
	// RabbitMQ: the AMQP URL (amqp:// or amqps://) without user and
	// password, the default vhost, and the management API's URL.
	URL           string `json:"url,omitempty"`
	VHost         string `json:"vhost,omitempty"`
	ManagementURL string `json:"management_url,omitempty"`
	// Kafka: seed brokers (host:port), SASL mechanism and user, TLS.
	BootstrapServers []string   `json:"bootstrap_servers,omitempty"`
	SASL             *KafkaSASL `json:"sasl,omitempty"`
	TLS              *KafkaTLS  `json:"tls,omitempty"`
	// HasCredentials says credentials are stored (they are never shown).
	HasCredentials bool `json:"has_credentials"`
}

// KafkaSASL is the SASL mechanism and user; the password is a credential.
type KafkaSASL struct {
	Mechanism string `json:"mechanism"` // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	Username  string `json:"username"`
}

// KafkaTLS says how to reach Kafka over TLS.
type KafkaTLS struct {
	Enabled            bool   `json:"enabled"`
	ServerName         string `json:"server_name,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// BrokerCredentials are a broker's secrets: stored encrypted, never
// answered, logged or audited.
type BrokerCredentials struct {
	Username           string `json:"username,omitempty"`
	Password           string `json:"password,omitempty"`
	ManagementUsername string `json:"management_username,omitempty"`
	ManagementPassword string `json:"management_password,omitempty"`
}

// QueueSpec is a RabbitMQ queue.
type QueueSpec struct {
	Broker             string    `json:"broker"`
	VHost              string    `json:"vhost"`
	Bindings           []Binding `json:"bindings"`
	DeadLetterExchange string    `json:"dead_letter_exchange,omitempty"`
	DeadLetterQueue    string    `json:"dead_letter_queue,omitempty"`
}

// Binding binds a queue to an exchange.
type Binding struct {
	Exchange   string `json:"exchange"`
	RoutingKey string `json:"routing_key"`
}

// TopicSpec is a Kafka topic.
type TopicSpec struct {
	Broker          string `json:"broker"`
	Partitions      int    `json:"partitions"`
	DeadLetterTopic string `json:"dead_letter_topic,omitempty"`
}

// SagaSpec is a saga's ordered steps.
type SagaSpec struct {
	Steps []SagaStep `json:"steps"`
}

// SagaStep names the service a step calls, its action and its compensation.
type SagaStep struct {
	Name         string `json:"name"`
	Service      string `json:"service"`
	Action       string `json:"action"`
	Compensation string `json:"compensation,omitempty"`
}

// Relation is a typed edge between two entities, by reference.
type Relation struct {
	From   string `json:"from"`
	Type   string `json:"type"`
	To     string `json:"to"`
	Source string `json:"source,omitempty"`
	// Missing says the target is not in the catalog (kept from an import).
	Missing   bool      `json:"missing,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}
