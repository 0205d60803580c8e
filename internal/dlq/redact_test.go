package dlq

import (
	"testing"
)

func TestRedact_HidesNamedHeadersAndJSONPaths(t *testing.T) {
	m := Message{Headers: Headers{"Authorization": {Type: "string", Value: []byte(`"Bearer s3cret"`)}, "x-trace": {Type: "string", Value: []byte(`"t-1"`)}}}
	m.setBody([]byte(`{"card":{"number":"4111","exp":"12/30"},"items":[{"iban":"DE89","sku":"a"},{"iban":"FR76","sku":"b"}],"total":12.5}`))
	m.body = []byte(`{"card":{"number":"4111","exp":"12/30"},"items":[{"iban":"DE89","sku":"a"},{"iban":"FR76","sku":"b"}],"total":12.5}`)
	m.Redact(Redaction{Headers: []string{"authorization"}, JSONPaths: []string{"$.card.number", "$.items[*].iban", "$.missing.path"}})
	if m.Headers["Authorization"].Type != "redacted" || m.Headers["x-trace"].Type != "string" {
		t.Fatalf("headers %+v", m.Headers)
	}
	want := `{"card":{"exp":"12/30","number":"[redacted]"},"items":[{"iban":"[redacted]","sku":"a"},{"iban":"[redacted]","sku":"b"}],"total":12.5}`
	if m.Body != want || m.BodyEncoding != "text" {
		t.Fatalf("body %s (%s)", m.Body, m.BodyEncoding)
	}
}

// What redaction cannot reach into is withheld whole, never shown.
func TestRedact_WithholdsWhatItCannotReach(t *testing.T) {
	for name, body := range map[string][]byte{"binary": {0xff, 0, 1}, "text": []byte("card 4111"), "two documents": []byte(`{"a":1} {"b":2}`)} {
		m := Message{Headers: Headers{}, body: body}
		m.setBody(body)
		m.Redact(Redaction{JSONPaths: []string{"$.a"}})
		if m.BodyEncoding != "redacted" || m.Body != "" {
			t.Errorf("%s: body %q (%s)", name, m.Body, m.BodyEncoding)
		}
	}
	m := Message{Headers: Headers{}, body: []byte(`{"a":1}`)}
	m.setBody(m.body)
	m.Redact(Redaction{})
	if m.BodyEncoding != "redacted" {
		t.Errorf("no paths: body shown as %s", m.BodyEncoding)
	}
}

func TestRedaction_Validate(t *testing.T) {
	for _, ok := range []string{"$.a", "$.a.b_c-d", "$.items[*].iban", "$[0].x"} {
		if err := (&Redaction{JSONPaths: []string{ok}}).Validate(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"a.b", "$", "$.a[", "$..a", "$.a[-1]"} {
		if err := (&Redaction{JSONPaths: []string{bad}}).Validate(); err == nil {
			t.Errorf("%s was taken", bad)
		}
	}
}
