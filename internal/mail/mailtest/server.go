package mailtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Option configures a Server.
type Option func(*Server)

// WithSTARTTLS makes the server offer STARTTLS (URL is smtp://).
func WithSTARTTLS() Option { return func(s *Server) { s.tlsMode = tlsStart } }

// WithImplicitTLS makes the server speak TLS from the first byte (URL is
// smtps://).
func WithImplicitTLS() Option { return func(s *Server) { s.tlsMode = tlsImplicit } }

// WithAuth requires PLAIN authentication as user with password before a
// message is accepted; the server offers it only over TLS.
func WithAuth(user, password string) Option {
	return func(s *Server) { s.user, s.password = user, password }
}

type tlsMode int

const (
	tlsNone tlsMode = iota
	tlsStart
	tlsImplicit
)

// Server is an in-process SMTP server that keeps every message it accepts.
type Server struct {
	tlsMode        tlsMode
	user, password string
	clientTLS      *tls.Config

	srv *smtp.Server
	ln  *trackingListener
	// served is closed when the accept loop has returned.
	served chan struct{}

	// mu guards everything below.
	mu       sync.Mutex
	msgs     []Message
	arrived  chan struct{}  // closed and replaced when a message arrives
	read     map[string]int // per address: index of the first message Next has not returned
	failNext int            // refuse this many more messages
	closed   bool
}

// New starts a server for the test and stops it when the test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{arrived: make(chan struct{}), read: map[string]int{}, served: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mailtest: listen: %v", err)
	}
	var ln net.Listener = raw
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "mailtest.localhost"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.MaxRecipients = 10
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // client hang-ups at Close are expected
	if s.tlsMode != tlsNone {
		serverTLS, clientTLS, err := selfSigned()
		if err != nil {
			raw.Close()
			tb.Fatalf("mailtest: certificate: %v", err)
		}
		s.srv.TLSConfig, s.clientTLS = serverTLS, clientTLS
		if s.tlsMode == tlsImplicit {
			ln = tls.NewListener(raw, serverTLS)
		}
	}
	s.ln = &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(s.ln) // returns when Close closes the listener; nothing to report
	}()
	tb.Cleanup(s.Close)
	return s
}

// URL is the server's address as a mailer URL, with credentials when the
// server requires them.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.ln.Addr().String()}
	if s.tlsMode == tlsImplicit {
		u.Scheme = "smtps"
	}
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.password)
	}
	return u.String()
}

// TLSConfig is a client configuration that trusts the server's
// certificate; nil when the server has no TLS.
func (s *Server) TLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// FailNext makes the server refuse the next n messages with a temporary
// error (451), as a busy server would.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// Messages returns every message received so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Next waits for the next message to address that Next has not returned
// yet, or for ctx to end.
func (s *Server) Next(ctx context.Context, address string) (Message, error) {
	address = strings.ToLower(address)
	for {
		s.mu.Lock()
		for i := s.read[address]; i < len(s.msgs); i++ {
			if s.msgs[i].sentTo(address) {
				s.read[address] = i + 1
				m := s.msgs[i]
				s.mu.Unlock()
				return m, nil
			}
		}
		s.read[address] = len(s.msgs)
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("mailtest: no message to %s: %w", address, ctx.Err())
		}
	}
}

// WaitFor is Next for a test: it fails the test when no message to address
// arrives within ten seconds (a bound on a hang, not a measurement).
func (s *Server) WaitFor(tb testing.TB, address string) Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := s.Next(ctx, address)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// Close stops the server: it closes the listener, waits for the accept
// loop, closes every connection and waits for their handlers.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	// Closing the listener first ends the accept loop, so no connection
	// handler starts after Shutdown begins to wait for them.
	s.ln.Close()
	<-s.served
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		_ = s.srv.Shutdown(context.Background()) // waits for the handlers; its listener error is the one above
	}()
	s.ln.closeConns()
	<-shut
}

func (s *Server) receive(m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailtest: try again later"}
	}
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
	return nil
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	sess := &session{s: b.s, conn: c}
	if b.s.user != "" {
		return &authSession{sess}, nil
	}
	return sess, nil
}

// session is one SMTP conversation; the server calls its methods from the
// connection's goroutine only.
type session struct {
	s        *Server
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.user != "" && x.authUser == "" {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: " + err.Error()}
	}
	m.EnvelopeFrom, m.EnvelopeTo, m.AuthUser = x.from, append([]string(nil), x.to...), x.authUser
	_, m.TLS = x.conn.TLSConnectionState()
	return x.s.receive(m)
}

// authSession adds PLAIN authentication; go-smtp offers it only over TLS
// (AllowInsecureAuth stays false).
type authSession struct{ *session }

func (x *authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *authSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		if user != x.s.user || password != x.s.password {
			return errors.New("mailtest: wrong user or password")
		}
		x.authUser = user
		return nil
	}), nil
}

// trackingListener remembers the connections it accepted, so Close can end
// them; go-smtp's own Shutdown would wait for clients to hang up.
type trackingListener struct {
	net.Listener
	// mu guards conns.
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

func (l *trackingListener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a client
// configuration that trusts it.
func selfSigned() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client, nil
}
