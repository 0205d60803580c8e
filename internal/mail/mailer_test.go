package mail_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"switchboard/internal/mail"
	"switchboard/internal/mail/mailtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log sink the mailer's goroutine and the test share.
type syncBuffer struct {
	// mu guards b.
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newLog() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func newMailer(t *testing.T, cfg mail.Config) (*mail.Mailer, *syncBuffer) {
	t.Helper()
	log, buf := newLog()
	m, err := mail.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, buf
}

const link = "https://switchboard.example/verify-email?token=QUJD-ZGVm_MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTA"

func TestMailer_STARTTLSWithAuth(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithSTARTTLS(), mailtest.WithAuth("switchboard", "s3cret p@ss"))
	m, buf := newMailer(t, mail.Config{URL: srv.URL(), From: "Switchboard <switchboard@example.com>", TLSConfig: srv.TLSConfig()})
	if err := m.Send(mail.Message{To: "ada@example.com", Subject: "Confirm your address — Switchboard", Text: "Open this link:\n\n" + link + "\n", Link: link}); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, "ada@example.com")
	if !got.TLS || got.AuthUser != "switchboard" {
		t.Fatalf("delivered with TLS=%v as %q; want STARTTLS and authenticated", got.TLS, got.AuthUser)
	}
	if got.Subject != "Confirm your address — Switchboard" || !strings.Contains(got.From, "switchboard@example.com") {
		t.Fatalf("subject %q from %q", got.Subject, got.From)
	}
	// The link survives the transfer encoding's line wrapping intact.
	if l, ok := got.Link("https://switchboard.example/verify-email"); !ok || l != link {
		t.Fatalf("link %q, want %q", l, link)
	}
	if strings.Contains(buf.String(), "s3cret") || strings.Contains(buf.String(), link) {
		t.Fatalf("the log shows the password or the link:\n%s", buf)
	}
}

func TestMailer_ImplicitTLS(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithImplicitTLS(), mailtest.WithAuth("u", "p"))
	if !strings.HasPrefix(srv.URL(), "smtps://") {
		t.Fatalf("URL %q", srv.URL())
	}
	m, _ := newMailer(t, mail.Config{URL: srv.URL(), From: "sb@example.com", TLSConfig: srv.TLSConfig()})
	if err := m.Send(mail.Message{To: "bob@example.com", Subject: "hi", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.WaitFor(t, "bob@example.com"); !got.TLS || strings.TrimSpace(got.Text) != "hello" {
		t.Fatalf("TLS=%v text %q", got.TLS, got.Text)
	}
}

// TestMailer_NoPasswordOverPlainText: a server without STARTTLS is not
// sent the password; the message is not delivered and the failure is
// logged without the password.
func TestMailer_NoPasswordOverPlainText(t *testing.T) {
	srv := mailtest.New(t) // no TLS, so it offers no AUTH either
	u := strings.Replace(srv.URL(), "smtp://", "smtp://user:hunter22@", 1)
	m, buf := newMailer(t, mail.Config{URL: u, From: "sb@example.com", Attempts: 1})
	if err := m.Send(mail.Message{To: "ada@example.com", Subject: "s", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages delivered without authentication", n)
	}
	if !strings.Contains(buf.String(), "not delivered") || strings.Contains(buf.String(), "hunter22") {
		t.Fatalf("log:\n%s", buf)
	}
}

func TestMailer_RetriesATemporaryFailure(t *testing.T) {
	srv := mailtest.New(t)
	srv.FailNext(2)
	m, buf := newMailer(t, mail.Config{URL: srv.URL(), From: "sb@example.com", Attempts: 3, Backoff: time.Millisecond})
	if err := m.Send(mail.Message{To: "ada@example.com", Subject: "s", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor(t, "ada@example.com")
	if n := strings.Count(buf.String(), "retrying"); n != 2 {
		t.Fatalf("%d retries logged, want 2:\n%s", n, buf)
	}
}

func TestMailer_GivesUpAfterAttempts(t *testing.T) {
	srv := mailtest.New(t)
	srv.FailNext(3)
	m, buf := newMailer(t, mail.Config{URL: srv.URL(), From: "sb@example.com", Attempts: 3, Backoff: time.Millisecond})
	if err := m.Send(mail.Message{To: "ada@example.com", Subject: "first", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(mail.Message{To: "ada@example.com", Subject: "second", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.WaitFor(t, "ada@example.com"); got.Subject != "second" {
		t.Fatalf("got %q; the first message should have been given up after 3 attempts", got.Subject)
	}
	if !strings.Contains(buf.String(), "not delivered") {
		t.Fatalf("the dropped message is not logged:\n%s", buf)
	}
}

// TestMailer_LogsWithoutSMTP: with no URL the message, link included, goes
// to the log, through the same queue.
func TestMailer_LogsWithoutSMTP(t *testing.T) {
	m, buf := newMailer(t, mail.Config{})
	if err := m.Send(mail.Message{To: "ada@example.com", Subject: "Confirm", Text: "open " + link, Link: link}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "to=ada@example.com") || !strings.Contains(out, link) {
		t.Fatalf("log does not show the message and its link:\n%s", out)
	}
}

// TestMailer_QueueIsBounded: while the goroutine is stuck on an
// unresponsive server, Send refuses at once beyond the queue's size, and
// Close still returns.
func TestMailer_QueueIsBounded(t *testing.T) {
	// A server that accepts and then says nothing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	m, _ := newMailer(t, mail.Config{URL: "smtp://" + ln.Addr().String(), From: "sb@example.com", QueueSize: 1, Attempts: 1, Timeout: time.Minute})
	if err := m.Send(mail.Message{To: "a@example.com", Subject: "1"}); err != nil {
		t.Fatal(err)
	}
	conn := <-accepted // the goroutine holds message 1 and waits for a greeting
	if err := m.Send(mail.Message{To: "a@example.com", Subject: "2"}); err != nil {
		t.Fatalf("second message: %v; the queue has room for one", err)
	}
	if err := m.Send(mail.Message{To: "a@example.com", Subject: "3"}); !errors.Is(err, mail.ErrQueueFull) {
		t.Fatalf("third message: %v, want ErrQueueFull", err)
	}
	// Let the stuck attempt fail; message 2 then finds no server.
	ln.Close()
	<-acceptDone
	conn.Close()
	close(accepted)
	for c := range accepted {
		c.Close()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(mail.Message{To: "a@example.com"}); !errors.Is(err, mail.ErrClosed) {
		t.Fatalf("send after close: %v, want ErrClosed", err)
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mail.Config
		want string
	}{
		{"scheme", mail.Config{URL: "http://mail.example.com", From: "a@example.com"}, "smtp://"},
		{"no host", mail.Config{URL: "smtp://", From: "a@example.com"}, "no host"},
		{"port", mail.Config{URL: "smtp://mail.example.com:99999", From: "a@example.com"}, "port"},
		{"query", mail.Config{URL: "smtp://mail.example.com?tls=no", From: "a@example.com"}, "no path"},
		{"no from", mail.Config{URL: "smtp://mail.example.com"}, "From"},
		{"bad from", mail.Config{URL: "smtp://mail.example.com", From: "not an address"}, "not an address"},
		{"unparsable, password not echoed", mail.Config{URL: "smtp://user:pa ss%zz@host", From: "a@example.com"}, "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := newLog()
			m, err := mail.New(tc.cfg, log)
			if err == nil {
				m.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pa ss") {
				t.Fatalf("error %q, want it to mention %q and never the password", err, tc.want)
			}
		})
	}
}
