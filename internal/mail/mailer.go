package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one mail to one address.
type Message struct {
	To      string // one address
	Subject string
	Text    string // the plain-text body
	// Link is the action the message carries (a verification or sign-in
	// link); the no-SMTP fallback logs it on its own so it is easy to find.
	Link string
}

// Errors of Send.
var (
	ErrQueueFull = errors.New("mail: the queue is full")
	ErrClosed    = errors.New("mail: the mailer is closed")
)

// transport delivers one message or fails.
type transport interface {
	send(ctx context.Context, m Message) error
}

// Mailer queues messages and delivers them from one goroutine it owns.
type Mailer struct {
	cfg Config
	log *slog.Logger
	tr  transport

	// mu guards closed and the sends on queue, so Send never sends on a
	// closed channel.
	mu     sync.Mutex
	closed bool
	queue  chan Message

	stopping chan struct{}      // closed by Close: retry at once, do not wait out a backoff
	ctx      context.Context    // cancelled when DrainTimeout runs out: abandon the rest
	cancel   context.CancelFunc //
	done     chan struct{}      // closed when the goroutine has returned
}

// New starts a Mailer. Without cfg.URL it logs every message instead of
// sending it.
func New(cfg Config, log *slog.Logger) (*Mailer, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	var tr transport
	if cfg.URL == "" {
		tr = logTransport{log: log}
		log.Warn("mail: no SMTP server configured (SWITCHBOARD_SMTP_URL); messages and their links go to this log")
	} else {
		srv, err := parseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("mail: %w", err)
		}
		if cfg.From == "" {
			return nil, errors.New("mail: a From address (SWITCHBOARD_SMTP_FROM) is required with an SMTP URL")
		}
		// Checked now, so a bad From fails the start, not every message.
		if err := gomail.NewMsg().From(cfg.From); err != nil {
			return nil, fmt.Errorf("mail: the From address %q is not an address", cfg.From)
		}
		tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLSConfig != nil {
			tlsConf = cfg.TLSConfig.Clone()
		}
		if tlsConf.ServerName == "" {
			tlsConf.ServerName = srv.host
		}
		tr = &smtpTransport{srv: srv, from: cfg.From, timeout: cfg.Timeout, tls: tlsConf}
		log.Info("mail: sending over SMTP", "server", srv.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mailer{
		cfg: cfg, log: log, tr: tr,
		queue:    make(chan Message, cfg.QueueSize),
		stopping: make(chan struct{}),
		ctx:      ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	go m.run()
	return m, nil
}

// Send queues msg and returns at once. A full queue or a closed mailer
// refuses it (and logs that it did).
func (m *Mailer) Send(msg Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		m.log.Warn("mail: dropped a message: the mailer is closed", "to", msg.To, "subject", msg.Subject)
		return ErrClosed
	}
	select {
	case m.queue <- msg:
		return nil
	default:
		m.log.Warn("mail: dropped a message: the queue is full", "to", msg.To, "subject", msg.Subject, "queue", cap(m.queue))
		return ErrQueueFull
	}
}

// Close stops taking messages, delivers the queued ones for up to
// Config.DrainTimeout, abandons the rest and waits for the goroutine to
// return. Calling it again waits too.
func (m *Mailer) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		<-m.done
		return nil
	}
	m.closed = true
	close(m.queue)
	m.mu.Unlock()
	close(m.stopping)

	t := time.NewTimer(m.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-m.done:
	case <-t.C:
		m.cancel()
		<-m.done
	}
	m.cancel()
	return nil
}

func (m *Mailer) run() {
	defer close(m.done)
	for msg := range m.queue {
		if m.ctx.Err() != nil {
			m.log.Error("mail: abandoned a message at shutdown", "to", msg.To, "subject", msg.Subject)
			continue
		}
		m.deliver(msg)
	}
}

// deliver tries msg up to Attempts times, waiting Backoff (doubling) between
// attempts unless the mailer is closing.
func (m *Mailer) deliver(msg Message) {
	wait := m.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := m.tr.send(m.ctx, msg)
		if err == nil {
			return
		}
		if attempt >= m.cfg.Attempts || m.ctx.Err() != nil {
			m.log.Error("mail: not delivered", "to", msg.To, "subject", msg.Subject, "attempts", attempt, "err", err)
			return
		}
		m.log.Warn("mail: attempt failed; retrying", "to", msg.To, "subject", msg.Subject, "attempt", attempt, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.stopping:
		case <-m.ctx.Done():
		}
		t.Stop()
		wait *= 2
	}
}

// logTransport is the no-SMTP fallback: it shows the message, link and
// all, in the log, which is how a one-machine setup reads its mail.
type logTransport struct{ log *slog.Logger }

func (t logTransport) send(_ context.Context, m Message) error {
	t.log.Info("mail: not sent (no SMTP server configured); here it is", "to", m.To, "subject", m.Subject, "link", m.Link, "body", m.Text)
	return nil
}

// smtpTransport delivers over one new connection per message: mail here is
// rare (sign-ups, verifications), so a pool would hold connections open for
// nothing and the server would time them out anyway.
type smtpTransport struct {
	srv     server
	from    string
	timeout time.Duration
	tls     *tls.Config
}

func (t *smtpTransport) send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(t.from); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)

	opts := []gomail.Option{gomail.WithTimeout(t.timeout), gomail.WithTLSConfig(t.tls)}
	if t.srv.implicit {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if t.srv.user != "" {
		// Auto-discovery offers PLAIN and LOGIN only over TLS.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(t.srv.user), gomail.WithPassword(t.srv.password))
	}
	// The port last: some TLS options choose a default port of their own.
	opts = append(opts, gomail.WithPort(t.srv.port))
	c, err := gomail.NewClient(t.srv.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return c.DialAndSendWithContext(ctx, msg)
}
