package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
)

// Message is one message the server accepted.
type Message struct {
	EnvelopeFrom string
	EnvelopeTo   []string
	Header       mail.Header
	From         string // the From header
	To           string // the To header
	Subject      string // decoded
	Text         string // the decoded plain-text body
	Raw          []byte // as received
	TLS          bool   // it came over TLS (STARTTLS or implicit)
	AuthUser     string // who authenticated, if anyone
}

func (m Message) sentTo(address string) bool {
	for _, to := range m.EnvelopeTo {
		if strings.EqualFold(to, address) {
			return true
		}
	}
	return false
}

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Links returns every http(s) URL in the body, in order.
func (m Message) Links() []string { return linkRE.FindAllString(m.Text, -1) }

// Link returns the first URL in the body that starts with prefix.
func (m Message) Link(prefix string) (string, bool) {
	for _, l := range m.Links() {
		if strings.HasPrefix(l, prefix) {
			return l, true
		}
	}
	return "", false
}

// parse reads a message as a client sent it: headers, and a plain-text body
// in any of the usual transfer encodings, alone or as a multipart's first
// text/plain part.
func parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("read message: %w", err)
	}
	m := Message{Header: msg.Header, Raw: raw, From: msg.Header.Get("From"), To: msg.Header.Get("To")}
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Message{}, fmt.Errorf("subject: %w", err)
	}
	text, err := plainText(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return Message{}, err
	}
	m.Text = text
	return m, nil
}

func plainText(contentType, encoding string, body io.Reader) (string, error) {
	mediaType, params := "text/plain", map[string]string{}
	if contentType != "" {
		var err error
		if mediaType, params, err = mime.ParseMediaType(contentType); err != nil {
			return "", fmt.Errorf("content type: %w", err)
		}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return "", errors.New("no text/plain part")
			}
			if err != nil {
				return "", fmt.Errorf("multipart: %w", err)
			}
			text, err := plainText(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			if err == nil {
				return text, nil
			}
		}
	}
	if mediaType != "text/plain" {
		return "", fmt.Errorf("not text/plain: %s", mediaType)
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // it skips line breaks itself
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("body: %w", err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}
