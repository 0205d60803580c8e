package app

import (
	"context"
	"crypto/tls"
	"net"

	"switchboard/internal/catalog"
	"switchboard/internal/connectors"
	"switchboard/internal/connectors/kafka"
)

// kafkaConnector builds the connector of a catalog Kafka broker.
func kafkaConnector(b catalog.BrokerSpec, creds catalog.BrokerCredentials, dial func(ctx context.Context, network, addr string) (net.Conn, error)) connectors.Connector {
	cfg := kafka.Config{Seeds: b.BootstrapServers, Username: creds.Username, Password: creds.Password, Dial: dial}
	if b.SASL != nil {
		cfg.Mechanism = b.SASL.Mechanism
	}
	if b.TLS != nil && b.TLS.Enabled {
		cfg.TLS = &tls.Config{ServerName: b.TLS.ServerName, InsecureSkipVerify: b.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // the broker's owner chose it
	}
	return kafka.New(cfg)
}
