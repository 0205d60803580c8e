package mail

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Config configures a Mailer.
type Config struct {
	// URL is the SMTP server: smtp://user:pass@host:port (STARTTLS when the
	// server offers it; port 587 by default) or smtps://user:pass@host:port
	// (implicit TLS; port 465 by default). User and password are optional;
	// without TLS only challenge mechanisms (CRAM-MD5, SCRAM) are tried, so
	// the password never crosses the network in the clear. Empty: messages
	// are written to the log instead.
	URL string
	// From is the sender, e.g. "Switchboard <switchboard@example.com>";
	// required with URL.
	From string
	// Timeout bounds each delivery attempt (dial, TLS, every command);
	// default 10s.
	Timeout time.Duration
	// QueueSize is how many messages may wait; Send refuses beyond it.
	// Default 256.
	QueueSize int
	// Attempts is how many times a message is tried; default 3.
	Attempts int
	// Backoff is the wait before the second attempt, doubled for each one
	// after; default 2s.
	Backoff time.Duration
	// DrainTimeout is how long Close keeps delivering queued messages;
	// default 30s.
	DrainTimeout time.Duration
	// TLSConfig is the client TLS configuration (for example roots of a
	// private CA); ServerName is taken from URL when empty. Default: the
	// system roots, TLS 1.2 or later.
	TLSConfig *tls.Config
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 256
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.Backoff <= 0 {
		c.Backoff = 2 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
}

// server is where and how to reach the SMTP server, parsed from Config.URL.
type server struct {
	host     string
	port     int
	implicit bool // smtps: TLS from the first byte
	user     string
	password string
}

// String describes the server for logs, without the password.
func (s server) String() string {
	scheme := "smtp"
	if s.implicit {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: s.host + ":" + strconv.Itoa(s.port)}
	if s.user != "" {
		u.User = url.User(s.user)
	}
	return u.String()
}

// parseURL reads an SMTP URL. Its errors never repeat the URL: it may hold
// a password.
func parseURL(raw string) (server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return server{}, errors.New("the SMTP URL does not parse (want smtp://user:pass@host:port or smtps://...)")
	}
	var s server
	switch u.Scheme {
	case "smtp":
		s.port = 587
	case "smtps":
		s.implicit, s.port = true, 465
	default:
		return server{}, errors.New("the SMTP URL must start with smtp:// or smtps://")
	}
	if s.host = u.Hostname(); s.host == "" {
		return server{}, errors.New("the SMTP URL names no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return server{}, fmt.Errorf("the SMTP URL's port %q is not a port number", p)
		}
		s.port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return server{}, errors.New("the SMTP URL takes no path, query or fragment")
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	return s, nil
}
