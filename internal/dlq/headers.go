package dlq

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Value is a header value with its wire type, so a replay sends it as it
// came (an AMQP int16 stays an int16) and a reader sees what it is.
//
//	string, bytes (Value is base64), bool, int8, int16, int32, int64,
//	uint8, uint16, uint32, float32, float64, timestamp (RFC 3339),
//	decimal ({"scale": s, "value": v}), table (map of Values),
//	array (list of Values), null
type Value struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Headers are a message's headers, by name.
type Headers map[string]Value

// valueTypes are the types a Value may have.
var valueTypes = []string{"string", "bytes", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
	"float32", "float64", "timestamp", "decimal", "table", "array", "null"}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil { // only finite numbers, strings and maps of them reach here
		panic(err)
	}
	return b
}

// encodeValue types a broker's header value.
func encodeValue(v any) Value {
	switch x := v.(type) {
	case nil:
		return Value{Type: "null"}
	case string:
		return Value{Type: "string", Value: raw(x)}
	case []byte:
		return Value{Type: "bytes", Value: raw(base64.StdEncoding.EncodeToString(x))}
	case bool:
		return Value{Type: "bool", Value: raw(x)}
	case int8:
		return Value{Type: "int8", Value: raw(x)}
	case int16:
		return Value{Type: "int16", Value: raw(x)}
	case int32:
		return Value{Type: "int32", Value: raw(x)}
	case int:
		return Value{Type: "int64", Value: raw(int64(x))}
	case int64:
		return Value{Type: "int64", Value: raw(x)}
	case uint8:
		return Value{Type: "uint8", Value: raw(x)}
	case uint16:
		return Value{Type: "uint16", Value: raw(x)}
	case uint32:
		return Value{Type: "uint32", Value: raw(x)}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return Value{Type: "float32", Value: raw(fmt.Sprint(x))}
		}
		return Value{Type: "float32", Value: raw(x)}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return Value{Type: "float64", Value: raw(fmt.Sprint(x))}
		}
		return Value{Type: "float64", Value: raw(x)}
	case time.Time:
		return Value{Type: "timestamp", Value: raw(x.UTC().Format(time.RFC3339Nano))}
	case amqp.Decimal:
		return Value{Type: "decimal", Value: raw(map[string]int64{"scale": int64(x.Scale), "value": int64(x.Value)})}
	case amqp.Table:
		return Value{Type: "table", Value: raw(EncodeHeaders(x))}
	case map[string]any:
		return Value{Type: "table", Value: raw(EncodeHeaders(x))}
	case []any:
		out := make([]Value, len(x))
		for i, e := range x {
			out[i] = encodeValue(e)
		}
		return Value{Type: "array", Value: raw(out)}
	}
	// Not a type brokers send: kept as its text rather than refused, since
	// a dead letter that cannot be stored cannot be acknowledged either.
	return Value{Type: "string", Value: raw(fmt.Sprint(v))}
}

// EncodeHeaders types a broker message's headers.
func EncodeHeaders(h map[string]any) Headers {
	out := make(Headers, len(h))
	for k, v := range h {
		out[k] = encodeValue(v)
	}
	return out
}

// Decode returns the value as the broker takes it.
func (v Value) Decode() (any, error) {
	var err error
	num := func(dst any) { err = json.Unmarshal(v.Value, dst) }
	switch v.Type {
	case "null":
		return nil, nil
	case "string":
		var s string
		num(&s)
		if err == nil && !utf8.ValidString(s) {
			err = fmt.Errorf("not UTF-8")
		}
		return s, err
	case "bytes":
		var s string
		if num(&s); err != nil {
			return nil, err
		}
		return base64.StdEncoding.DecodeString(s)
	case "bool":
		var b bool
		num(&b)
		return b, err
	case "int8":
		var n int8
		num(&n)
		return n, err
	case "int16":
		var n int16
		num(&n)
		return n, err
	case "int32":
		var n int32
		num(&n)
		return n, err
	case "int64":
		var n int64
		num(&n)
		return n, err
	case "uint8":
		var n uint8
		num(&n)
		return n, err
	case "uint16":
		var n uint16
		num(&n)
		return n, err
	case "uint32":
		var n uint32
		num(&n)
		return n, err
	case "float32", "float64":
		var f float64
		if len(v.Value) > 0 && v.Value[0] == '"' { // NaN, ±Inf
			var s string
			if num(&s); err != nil {
				return nil, err
			}
			switch s {
			case "NaN":
				f = math.NaN()
			case "+Inf":
				f = math.Inf(1)
			case "-Inf":
				f = math.Inf(-1)
			default:
				return nil, fmt.Errorf("%q is not a number", s)
			}
		} else if num(&f); err != nil {
			return nil, err
		}
		if v.Type == "float32" {
			return float32(f), nil
		}
		return f, nil
	case "timestamp":
		var s string
		if num(&s); err != nil {
			return nil, err
		}
		return time.Parse(time.RFC3339Nano, s)
	case "decimal":
		var d struct {
			Scale uint8 `json:"scale"`
			Value int32 `json:"value"`
		}
		num(&d)
		return amqp.Decimal{Scale: d.Scale, Value: d.Value}, err
	case "table":
		var t Headers
		if num(&t); err != nil {
			return nil, err
		}
		m, err := t.Decode()
		return amqp.Table(m), err
	case "array":
		var xs []Value
		if num(&xs); err != nil {
			return nil, err
		}
		out := make([]any, len(xs))
		for i, x := range xs {
			if out[i], err = x.Decode(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("type must be one of %s", strings.Join(valueTypes, ", "))
}

// Decode returns the headers as the broker takes them.
func (h Headers) Decode() (map[string]any, error) {
	out := make(map[string]any, len(h))
	for _, k := range slices.Sorted(maps.Keys(h)) {
		v, err := h[k].Decode()
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// Text returns the value as a string, for a string value; ok is false
// otherwise.
func (v Value) Text() (string, bool) {
	switch v.Type {
	case "string":
		var s string
		if json.Unmarshal(v.Value, &s) == nil {
			return s, true
		}
	case "bytes":
		var s string
		if json.Unmarshal(v.Value, &s) == nil {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil && utf8.Valid(b) {
				return string(b), true
			}
		}
	}
	return "", false
}
