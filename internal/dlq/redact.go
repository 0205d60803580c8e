package dlq

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"switchboard/internal/problem"
)

// redacted replaces a hidden value.
const redacted = "[redacted]"

// jsonPathRE is the JSON path form redaction takes: $ then .name, [n] or
// [*] steps.
var jsonPathRE = regexp.MustCompile(`^\$(\.[A-Za-z0-9_\-]+|\[(\d+|\*)\])+$`)

// Validate checks r.
func (r *Redaction) Validate() error {
	bad := problem.Fields{}
	bad.Check(len(r.Headers) <= 100 && len(r.JSONPaths) <= 100, "redaction", "at most 100 headers and 100 paths")
	for i, h := range r.Headers {
		bad.Check(h != "" && len(h) <= 255 && !strings.ContainsAny(h, "\x00"), fmt.Sprintf("redaction.headers[%d]", i), "must be a header name")
	}
	for i, p := range r.JSONPaths {
		bad.Check(jsonPathRE.MatchString(p), fmt.Sprintf("redaction.json_paths[%d]", i), "must be a path such as $.card.number or $.items[*].iban")
	}
	return bad.Err()
}

// Redact hides from m what r names: the values of those headers, and those
// paths inside a JSON body. A body r cannot reach into (not JSON, or no
// paths given) is withheld whole (body_encoding "redacted"), as is the body
// of a message over the size cap.
func (m *Message) Redact(r Redaction) {
	for _, name := range r.Headers {
		for k := range m.Headers {
			if strings.EqualFold(k, name) {
				m.Headers[k] = Value{Type: "redacted"}
			}
		}
	}
	withhold := func() { m.Body, m.BodyEncoding = "", "redacted" }
	if len(r.JSONPaths) == 0 || m.Truncated {
		withhold()
		return
	}
	var doc any
	dec := json.NewDecoder(strings.NewReader(string(m.body)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		withhold()
		return
	}
	for _, p := range r.JSONPaths {
		doc = redactPath(doc, steps(p))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		withhold()
		return
	}
	m.body = nil
	m.Body, m.BodyEncoding = string(b), "text"
}

// steps splits a path ($.a[0].b[*]) into its steps: names, indexes, "*".
func steps(p string) []string {
	var out []string
	p = strings.TrimPrefix(p, "$")
	for p != "" {
		if p[0] == '.' {
			end := strings.IndexAny(p[1:], ".[")
			if end < 0 {
				end = len(p) - 1
			}
			out = append(out, "."+p[1:1+end])
			p = p[1+end:]
			continue
		}
		end := strings.IndexByte(p, ']')
		out = append(out, p[1:end])
		p = p[end+1:]
	}
	return out
}

func redactPath(v any, path []string) any {
	if len(path) == 0 {
		return redacted
	}
	step, rest := path[0], path[1:]
	switch x := v.(type) {
	case map[string]any:
		if name, ok := strings.CutPrefix(step, "."); ok {
			if child, ok := x[name]; ok {
				x[name] = redactPath(child, rest)
			}
		}
	case []any:
		if step == "*" {
			for i := range x {
				x[i] = redactPath(x[i], rest)
			}
		} else if i, err := strconv.Atoi(step); err == nil && i >= 0 && i < len(x) {
			x[i] = redactPath(x[i], rest)
		}
	}
	return v
}
