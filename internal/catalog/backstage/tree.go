package backstage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxDepth bounds how deeply a document may nest, so that reading and
// writing stay cheap on hostile input (a catalog document is shallow).
const maxDepth = 256

// value is one node of a document, read from YAML or from JSON: a mapping
// that keeps its key order and key lines, a sequence, or a scalar holding
// its JSON value (string, json.Number, bool or nil). Values may be shared
// when YAML aliases point at the same anchor; they are never changed after
// reading, only copied (see clone).
type value struct {
	kind     valueKind
	line     int
	keys     []string
	keyLines []int
	vals     []*value
	items    []*value
	scalar   any
}

type valueKind uint8

const (
	scalarValue valueKind = iota
	mappingValue
	sequenceValue
)

func newMapping() *value { return &value{kind: mappingValue} }

func stringValue(s string) *value { return &value{kind: scalarValue, scalar: s} }

// get returns the value of key in a mapping and the line of the key.
func (v *value) get(key string) (*value, int) {
	if v == nil || v.kind != mappingValue {
		return nil, 0
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i], v.keyLines[i]
		}
	}
	return nil, 0
}

// set replaces key's value, or appends key, in a mapping.
func (v *value) set(key string, val *value) {
	for i, k := range v.keys {
		if k == key {
			v.vals[i] = val
			return
		}
	}
	v.keys = append(v.keys, key)
	v.keyLines = append(v.keyLines, 0)
	v.vals = append(v.vals, val)
}

// del removes key from a mapping.
func (v *value) del(key string) {
	for i, k := range v.keys {
		if k == key {
			v.keys = append(v.keys[:i:i], v.keys[i+1:]...)
			v.keyLines = append(v.keyLines[:i:i], v.keyLines[i+1:]...)
			v.vals = append(v.vals[:i:i], v.vals[i+1:]...)
			return
		}
	}
}

// text is a scalar's text: a string as is, numbers and booleans as
// written in JSON, null as "". ok is false for mappings and sequences.
func (v *value) text() (string, bool) {
	if v == nil || v.kind != scalarValue {
		return "", false
	}
	switch s := v.scalar.(type) {
	case string:
		return s, true
	case json.Number:
		return s.String(), true
	case bool:
		return strconv.FormatBool(s), true
	case nil:
		return "", true
	}
	return "", false
}

// str returns a string scalar; ok is false for anything else.
func (v *value) str() (string, bool) {
	if v == nil || v.kind != scalarValue {
		return "", false
	}
	s, ok := v.scalar.(string)
	return s, ok
}

// clone copies v deeply enough that a mapping or sequence may be changed
// without touching a value shared through an alias.
func (v *value) clone() *value {
	if v == nil {
		return nil
	}
	c := *v
	c.keys = append([]string(nil), v.keys...)
	c.keyLines = append([]int(nil), v.keyLines...)
	c.vals = make([]*value, len(v.vals))
	for i, x := range v.vals {
		c.vals[i] = x.clone()
	}
	c.items = make([]*value, len(v.items))
	for i, x := range v.items {
		c.items[i] = x.clone()
	}
	return &c
}

// converter turns a yaml.Node tree into values. Aliases are resolved to
// the value of their anchor, converted once; weight counts what the
// document would be once every alias is expanded, and stops an alias bomb
// before anything is expanded.
type converter struct {
	seen    map[*yaml.Node]*value
	weights map[*value]int64
	// budget is the expanded weight (nodes plus scalar bytes) the whole
	// stream may reach; aliases beyond it are refused.
	budget int64
	used   int64
	errs   []nodeError
	// offset turns chunk lines into stream lines in messages.
	offset int
}

// nodeError is a problem found while converting, at a line of the chunk.
type nodeError struct {
	line    int
	field   string
	message string
}

func newConverter(budget int64) *converter {
	return &converter{seen: map[*yaml.Node]*value{}, weights: map[*value]int64{}, budget: budget}
}

func (c *converter) fail(line int, field, format string, args ...any) {
	c.errs = append(c.errs, nodeError{line: line, field: field, message: fmt.Sprintf(format, args...)})
}

// document converts one document's root; nil when it could not be read.
func (c *converter) document(n *yaml.Node) *value {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	v := c.node(n, "", 0)
	if v == nil {
		return nil
	}
	c.used += c.weight(v)
	if c.used > c.budget {
		c.fail(n.Line, "", "the document uses aliases that expand too far (excessive aliasing); write the values out")
		return nil
	}
	return v
}

// weight is the expanded size of v: one per node plus scalar bytes,
// saturating so that nested aliases cannot overflow.
func (c *converter) weight(v *value) int64 {
	if w, ok := c.weights[v]; ok {
		return w
	}
	var w int64 = 1
	if s, ok := v.scalar.(string); ok {
		w += int64(len(s))
	}
	for _, x := range v.vals {
		w += c.weight(x) + 1
		if w > math.MaxInt64/4 {
			w = math.MaxInt64 / 4
		}
	}
	for _, x := range v.items {
		w += c.weight(x)
		if w > math.MaxInt64/4 {
			w = math.MaxInt64 / 4
		}
	}
	c.weights[v] = w
	return w
}

func (c *converter) node(n *yaml.Node, field string, depth int) *value {
	if depth > maxDepth {
		c.fail(n.Line, field, "nested deeper than %d levels", maxDepth)
		return nil
	}
	if v, ok := c.seen[n]; ok {
		if v == nil {
			c.fail(n.Line, field, "an alias refers to the value that holds it")
		}
		return v
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			c.fail(n.Line, field, "an alias refers to no anchor")
			return nil
		}
		c.seen[n] = nil
		v := c.node(n.Alias, field, depth+1)
		c.seen[n] = v
		return v
	case yaml.ScalarNode:
		v := &value{kind: scalarValue, line: n.Line, scalar: scalarOf(n)}
		c.seen[n] = v
		return v
	case yaml.SequenceNode:
		c.seen[n] = nil
		v := &value{kind: sequenceValue, line: n.Line, items: make([]*value, 0, len(n.Content))}
		for i, x := range n.Content {
			item := c.node(x, fmt.Sprintf("%s[%d]", field, i), depth+1)
			if item == nil {
				item = &value{kind: scalarValue, line: x.Line}
			}
			v.items = append(v.items, item)
		}
		c.seen[n] = v
		return v
	case yaml.MappingNode:
		c.seen[n] = nil
		v := c.mapping(n, field, depth)
		c.seen[n] = v
		return v
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return c.node(n.Content[0], field, depth+1)
	}
	c.fail(n.Line, field, "unreadable YAML node")
	return nil
}

// mapping converts a mapping: keys must be scalars and unique (the YAML
// reader does not refuse duplicates); merge keys (<<) add the keys the
// mapping does not set itself.
func (c *converter) mapping(n *yaml.Node, field string, depth int) *value {
	v := &value{kind: mappingValue, line: n.Line}
	index := map[string]int{}
	var merges []*value
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		for hops := 0; kn.Kind == yaml.AliasNode && kn.Alias != nil && hops < maxDepth; hops++ {
			kn = kn.Alias
		}
		if kn.Kind != yaml.ScalarNode {
			c.fail(kn.Line, field, "a mapping key must be a plain value, not a mapping or a list")
			continue
		}
		key := kn.Value
		sub := key
		if field != "" {
			sub = field + "." + key
		}
		if kn.Tag == "!!merge" || (kn.ShortTag() == "!!merge") {
			m := c.node(vn, sub, depth+1)
			switch {
			case m == nil:
			case m.kind == mappingValue:
				merges = append(merges, m)
			case m.kind == sequenceValue:
				for _, x := range m.items {
					if x.kind != mappingValue {
						c.fail(vn.Line, sub, "a merge key (<<) takes a mapping or a list of mappings")
						break
					}
					merges = append(merges, x)
				}
			default:
				c.fail(vn.Line, sub, "a merge key (<<) takes a mapping or a list of mappings")
			}
			continue
		}
		if j, dup := index[key]; dup {
			c.fail(kn.Line, sub, "duplicate key %q (first at line %d)", key, v.keyLines[j]+c.offset)
			continue
		}
		val := c.node(vn, sub, depth+1)
		if val == nil {
			val = &value{kind: scalarValue, line: vn.Line}
		}
		index[key] = len(v.keys)
		v.keys = append(v.keys, key)
		v.keyLines = append(v.keyLines, kn.Line)
		v.vals = append(v.vals, val)
	}
	for _, m := range merges {
		for i, k := range m.keys {
			if _, ok := index[k]; ok {
				continue
			}
			index[k] = len(v.keys)
			v.keys = append(v.keys, k)
			v.keyLines = append(v.keyLines, m.keyLines[i])
			v.vals = append(v.vals, m.vals[i])
		}
	}
	return v
}

// scalarOf resolves a YAML scalar to its JSON value. What JSON cannot
// hold (infinities, NaN, timestamps, binary, custom tags) stays a string.
func scalarOf(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return n.Value
}

// appendJSON writes v as JSON, keys in their order.
func appendJSON(buf *bytes.Buffer, v *value) {
	switch v.kind {
	case mappingValue:
		buf.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(buf, k)
			buf.WriteByte(':')
			appendJSON(buf, v.vals[i])
		}
		buf.WriteByte('}')
	case sequenceValue:
		buf.WriteByte('[')
		for i, x := range v.items {
			if i > 0 {
				buf.WriteByte(',')
			}
			appendJSON(buf, x)
		}
		buf.WriteByte(']')
	default:
		switch s := v.scalar.(type) {
		case string:
			writeJSONString(buf, s)
		case json.Number:
			buf.WriteString(s.String())
		case bool:
			buf.WriteString(strconv.FormatBool(s))
		default:
			buf.WriteString("null")
		}
	}
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, err := json.Marshal(s)
	if err != nil {
		// json.Marshal of a string cannot fail; invalid UTF-8 is
		// replaced, never refused.
		buf.WriteString(`""`)
		return
	}
	buf.Write(b)
}

// fromJSON reads a JSON document into values, keeping key order.
func fromJSON(raw []byte) (*value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := readJSON(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the JSON document")
	}
	return v, nil
}

func readJSON(dec *json.Decoder, depth int) (*value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := newMapping()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("JSON object key is not a string")
				}
				x, err := readJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.set(k, x)
			}
			_, err := dec.Token()
			return v, err
		case '[':
			v := &value{kind: sequenceValue, items: []*value{}}
			for dec.More() {
				x, err := readJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.items = append(v.items, x)
			}
			_, err := dec.Token()
			return v, err
		}
		return nil, fmt.Errorf("unexpected JSON delimiter %v", t)
	default:
		return &value{kind: scalarValue, scalar: t}, nil
	}
}

// toNode turns a value into a YAML node for writing.
func toNode(v *value) *yaml.Node {
	switch v.kind {
	case mappingValue:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i, k := range v.keys {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, toNode(v.vals[i]))
		}
		return n
	case sequenceValue:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, x := range v.items {
			n.Content = append(n.Content, toNode(x))
		}
		return n
	}
	switch s := v.scalar.(type) {
	case string:
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
		if strings.Contains(s, "\n") && !strings.ContainsAny(s, "\r\t") && !hasTrailingSpace(s) {
			n.Style = yaml.LiteralStyle
		}
		return n
	case json.Number:
		tag := "!!int"
		if _, err := strconv.ParseInt(s.String(), 10, 64); err != nil {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s.String()}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(s)}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}

// hasTrailingSpace reports whether a line of s ends in a space, which a
// literal block would not keep faithfully.
func hasTrailingSpace(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasSuffix(line, " ") {
			return true
		}
	}
	return strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\n")
}
