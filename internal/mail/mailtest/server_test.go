package mailtest_test

import (
	"context"
	"net/smtp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"switchboard/internal/mail/mailtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func send(t *testing.T, s *mailtest.Server, to, raw string) {
	t.Helper()
	addr := strings.TrimPrefix(s.URL(), "smtp://")
	if err := smtp.SendMail(addr, nil, "sender@example.com", []string{to}, []byte(strings.ReplaceAll(raw, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
}

// TestNext_PerAddressInOrder: Next returns each address's messages in
// order, once each, and waits for one that has not come yet.
func TestNext_PerAddressInOrder(t *testing.T) {
	s := mailtest.New(t)
	send(t, s, "a@example.com", "Subject: one\n\nfirst\n")
	send(t, s, "b@example.com", "Subject: other\n\nnot for a\n")
	send(t, s, "A@example.com", "Subject: two\n\nsecond\n")
	if m := s.WaitFor(t, "a@example.com"); m.Subject != "one" {
		t.Fatalf("got %q", m.Subject)
	}
	if m := s.WaitFor(t, "a@example.com"); m.Subject != "two" {
		t.Fatalf("got %q", m.Subject)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Next(ctx, "a@example.com"); err == nil {
		t.Fatal("a third message to a")
	}
	if m := s.WaitFor(t, "b@example.com"); m.Subject != "other" {
		t.Fatalf("got %q", m.Subject)
	}
	if n := len(s.Messages()); n != 3 {
		t.Fatalf("%d messages", n)
	}
}

// TestParse_EncodingsAndLinks: bodies in base64, in a multipart and with an
// encoded subject are decoded, and links are found whole.
func TestParse_EncodingsAndLinks(t *testing.T) {
	s := mailtest.New(t)
	send(t, s, "a@example.com", "Subject: =?utf-8?q?Best=C3=A4tigen?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"+
		"T3BlbiBodHRwczovL3NiLmV4YW1w\nbGUvdj90b2tlbj1hYmMgbm93Lg==\n")
	m := s.WaitFor(t, "a@example.com")
	if m.Subject != "Bestätigen" || m.Text != "Open https://sb.example/v?token=abc now." {
		t.Fatalf("subject %q text %q", m.Subject, m.Text)
	}
	if l, ok := m.Link("https://sb.example/v"); !ok || l != "https://sb.example/v?token=abc" {
		t.Fatalf("link %q", l)
	}
	send(t, s, "a@example.com", "Subject: multi\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=XX\n\n"+
		"--XX\nContent-Type: text/html\n\n<p>html</p>\n--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"+
		"see https://sb.example/login?next=3D%2F =\nand more\n--XX--\n")
	m = s.WaitFor(t, "a@example.com")
	if !strings.Contains(m.Text, "see https://sb.example/login?next=%2F and more") {
		t.Fatalf("text %q", m.Text)
	}
}

// TestFailNext_RefusesThenAccepts: a refused message is not kept.
func TestFailNext_RefusesThenAccepts(t *testing.T) {
	s := mailtest.New(t)
	s.FailNext(1)
	addr := strings.TrimPrefix(s.URL(), "smtp://")
	if err := smtp.SendMail(addr, nil, "x@example.com", []string{"a@example.com"}, []byte("Subject: x\r\n\r\nx\r\n")); err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("first message: %v, want 451", err)
	}
	send(t, s, "a@example.com", "Subject: y\n\ny\n")
	if n := len(s.Messages()); n != 1 {
		t.Fatalf("%d messages kept", n)
	}
}
