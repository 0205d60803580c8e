package discovery

import "time"

// DefaultTimeout bounds one discovery of a broker, unless the caller's
// context ends sooner.
const DefaultTimeout = 10 * time.Second

// Inventory is what one broker holds at the moment it was read. A RabbitMQ
// inventory fills Queues, Exchanges, Bindings and Consumers; a Kafka one
// fills Topics and ConsumerGroups. Every list is sorted and never nil.
type Inventory struct {
	// Type is the broker type that was read: "rabbitmq" or "kafka".
	Type string `json:"type"`
	// VHost is the only virtual host that was read; empty when all the
	// virtual hosts the user may see were read (RabbitMQ only).
	VHost string `json:"vhost,omitempty"`

	Queues         []Queue         `json:"queues"`
	Exchanges      []Exchange      `json:"exchanges"`
	Bindings       []Binding       `json:"bindings"`
	Consumers      []Consumer      `json:"consumers"`
	Topics         []Topic         `json:"topics"`
	ConsumerGroups []ConsumerGroup `json:"consumer_groups"`
}

// Queue is a RabbitMQ queue. The dead-letter settings are the effective
// ones: the queue's x-arguments, else its policy's definition (arguments
// overrule a policy, as RabbitMQ applies them).
type Queue struct {
	Name    string `json:"name"`
	VHost   string `json:"vhost"`
	Type    string `json:"type"` // classic, quorum or stream
	Durable bool   `json:"durable"`
	// Exclusive queues belong to one connection and go with it.
	Exclusive bool `json:"exclusive,omitempty"`
	// DeadLettering says a dead-letter exchange is configured; the exchange
	// itself may be "" (the default exchange).
	DeadLettering        bool   `json:"dead_lettering"`
	DeadLetterExchange   string `json:"dead_letter_exchange,omitempty"`
	DeadLetterRoutingKey string `json:"dead_letter_routing_key,omitempty"`
	// Policy is the name of the policy applied to the queue, if any.
	Policy        string `json:"policy,omitempty"`
	Consumers     int    `json:"consumers"`
	MessagesReady int    `json:"messages_ready"`
}

// Exchange is a RabbitMQ exchange.
type Exchange struct {
	Name  string `json:"name"`
	VHost string `json:"vhost"`
	Type  string `json:"type"` // direct, fanout, topic, headers, ...
}

// Binding routes messages from an exchange to a queue (or to another
// exchange, when DestinationType is "exchange").
type Binding struct {
	VHost           string `json:"vhost"`
	Source          string `json:"source"` // the exchange; "" is the default exchange
	Destination     string `json:"destination"`
	DestinationType string `json:"destination_type"` // queue or exchange
	RoutingKey      string `json:"routing_key"`
}

// Consumer is a RabbitMQ consumer on a queue.
type Consumer struct {
	VHost       string `json:"vhost"`
	Queue       string `json:"queue"`
	ConsumerTag string `json:"consumer_tag"`
	Channel     string `json:"channel"`
	Connection  string `json:"connection"`
}

// Topic is a Kafka topic.
type Topic struct {
	Name              string `json:"name"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	// Internal topics belong to Kafka itself (__consumer_offsets, ...).
	Internal bool `json:"internal"`
}

// ConsumerGroup is a Kafka consumer group and how far it is behind.
type ConsumerGroup struct {
	Group   string `json:"group"`
	State   string `json:"state"` // Stable, Empty, PreparingRebalance, Dead, ...
	Members int    `json:"members"`
	// Lag is the group's lag per topic it has offsets for; TotalLag sums it.
	Lag      []TopicLag `json:"lag"`
	TotalLag int64      `json:"total_lag"`
}

// TopicLag is a consumer group's total lag on one topic.
type TopicLag struct {
	Topic string `json:"topic"`
	Lag   int64  `json:"lag"`
}

func emptyInventory(typ string) Inventory {
	return Inventory{
		Type:           typ,
		Queues:         []Queue{},
		Exchanges:      []Exchange{},
		Bindings:       []Binding{},
		Consumers:      []Consumer{},
		Topics:         []Topic{},
		ConsumerGroups: []ConsumerGroup{},
	}
}
