package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"switchboard/internal/problem"
)

// KafkaConfig says how to reach a Kafka cluster.
type KafkaConfig struct {
	// Name is the broker's catalog name, used in error messages; the first
	// seed when empty.
	Name string
	// Seeds are bootstrap brokers, host:port.
	Seeds []string
	// SASLMechanism is "", PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SASLMechanism string
	Username      string
	Password      string
	// TLS, when set, wraps every connection.
	TLS *tls.Config
	// Dial opens connections (callers pass the one that enforces their
	// egress rules); a net.Dialer when nil.
	Dial func(ctx context.Context, network, host string) (net.Conn, error)
}

// kafkaRetries bounds how often one request is tried: enough to ride out
// a coordinator that is still loading, few enough that a broker that
// refuses connections is reported quickly.
const kafkaRetries = 3

// Kafka reads the topics (partitions, replication factor) and consumer
// groups (state, members, lag per topic) of a Kafka cluster. It answers
// within DefaultTimeout (or ctx's deadline when sooner); a cluster that
// does not answer is CodeBadGateway.
func Kafka(ctx context.Context, c KafkaConfig) (Inventory, error) {
	name := c.Name
	if name == "" && len(c.Seeds) > 0 {
		name = c.Seeds[0]
	}
	opts, err := kafkaOptions(c, name)
	if err != nil {
		return Inventory{}, err
	}
	ctx, cancel := bounded(ctx)
	defer cancel()

	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return Inventory{}, problem.Errorf(problem.CodeInvalid, "broker %q: %s", name, scrub(err.Error(), []string{c.Password}))
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	inv, err := readKafka(ctx, adm)
	if err != nil {
		return Inventory{}, brokerError(ctx, name, kafkaErr(name, err), c.Password)
	}
	return inv, nil
}

func kafkaOptions(c KafkaConfig, name string) ([]kgo.Opt, error) {
	if len(c.Seeds) == 0 {
		return nil, problem.Errorf(problem.CodeInvalid, "broker %q has no bootstrap servers", name)
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, problem.Errorf(problem.CodeInvalid, "broker %q: bootstrap server %q is not host:port", name, s)
		}
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Seeds...),
		kgo.RequestRetries(kafkaRetries),
		kgo.RetryTimeout(DefaultTimeout),
		kgo.DialTimeout(DefaultTimeout / 2),
	}
	switch {
	case c.Dial != nil && c.TLS != nil:
		opts = append(opts, kgo.Dialer(tlsDialer(c.Dial, c.TLS)))
	case c.Dial != nil:
		opts = append(opts, kgo.Dialer(c.Dial))
	case c.TLS != nil:
		opts = append(opts, kgo.DialTLSConfig(c.TLS))
	}
	mech, err := saslMechanism(c, name)
	if err != nil {
		return nil, err
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

func saslMechanism(c KafkaConfig, name string) (sasl.Mechanism, error) {
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism(), nil
	default:
		return nil, problem.Errorf(problem.CodeInvalid, "broker %q: SASL mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", name, c.SASLMechanism)
	}
}

// tlsDialer runs TLS over connections opened by dial, naming the server
// as the address dialled unless the config names it.
func tlsDialer(dial func(ctx context.Context, network, host string) (net.Conn, error), cfg *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		raw, err := dial(ctx, network, host)
		if err != nil {
			return nil, err
		}
		c := cfg.Clone()
		if c.ServerName == "" {
			if h, _, err := net.SplitHostPort(host); err == nil {
				c.ServerName = h
			}
		}
		conn := tls.Client(raw, c)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close() // the handshake error is the one to report
			return nil, err
		}
		return conn, nil
	}
}

func readKafka(ctx context.Context, adm *kadm.Client) (Inventory, error) {
	inv := emptyInventory("kafka")
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return Inventory{}, fmt.Errorf("list topics: %w", err)
	}
	for _, td := range topics {
		t := Topic{
			Name:       td.Topic,
			Partitions: len(td.Partitions),
			Internal:   td.IsInternal || strings.HasPrefix(td.Topic, "__"),
		}
		for _, p := range td.Partitions {
			t.ReplicationFactor = max(t.ReplicationFactor, len(p.Replicas))
		}
		inv.Topics = append(inv.Topics, t)
	}
	slices.SortFunc(inv.Topics, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) })

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return Inventory{}, fmt.Errorf("list consumer groups: %w", err)
	}
	if groups := listed.Groups(); len(groups) > 0 {
		lags, err := adm.Lag(ctx, groups...)
		if err != nil {
			return Inventory{}, fmt.Errorf("read consumer group lag: %w", err)
		}
		for _, l := range lags.Sorted() {
			g := ConsumerGroup{Group: l.Group, State: l.State, Members: len(l.Members), Lag: []TopicLag{}}
			if l.State == "" {
				g.State = listed[l.Group].State
			}
			// A group whose offsets could not be read still shows, with
			// no lag: one group must not hide the others.
			if l.Error() == nil {
				for _, tl := range l.Lag.TotalByTopic().Sorted() {
					g.Lag = append(g.Lag, TopicLag{Topic: tl.Topic, Lag: tl.Lag})
					g.TotalLag += tl.Lag
				}
			}
			inv.ConsumerGroups = append(inv.ConsumerGroups, g)
		}
	}
	return inv, nil
}

// kafkaErr marks refused credentials, and credentials that may not read
// what discovery reads.
func kafkaErr(name string, err error) error {
	if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) {
		return fmt.Errorf("%w: %w", errRefusedCredentials, err)
	}
	var auth *kadm.AuthError
	if errors.As(err, &auth) {
		return problem.Errorf(problem.CodeBadGateway, "broker %q: the stored credentials may not describe topics and consumer groups", name)
	}
	return err
}
