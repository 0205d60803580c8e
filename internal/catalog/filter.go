package catalog

import (
	"strings"

	"switchboard/internal/problem"
)

// Filter narrows lists and the topology.
type Filter struct {
	Kinds     []string   // empty: every kind
	OwnerTeam string     // "": any owner
	Labels    []Selector // every selector must hold
	Q         string     // text in the name or description, any case
}

// Selector is one term of a label selector: key=value, key!=value, key
// (present) or !key (absent).
type Selector struct {
	Key, Value string
	Op         string // "=", "!=", "exists", "!exists"
}

// ParseSelector reads a label selector such as "env=prod,tier!=web,team".
func ParseSelector(s string) ([]Selector, error) {
	var out []Selector
	for term := range strings.SplitSeq(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		var sel Selector
		switch {
		case strings.Contains(term, "!="):
			k, v, _ := strings.Cut(term, "!=")
			sel = Selector{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v), Op: "!="}
		case strings.Contains(term, "="):
			k, v, _ := strings.Cut(term, "=")
			sel = Selector{Key: strings.TrimSpace(k), Value: strings.TrimSpace(strings.TrimPrefix(v, "=")), Op: "="}
		case strings.HasPrefix(term, "!"):
			sel = Selector{Key: strings.TrimSpace(term[1:]), Op: "!exists"}
		default:
			sel = Selector{Key: term, Op: "exists"}
		}
		if !labelKey.MatchString(sel.Key) || !labelValue.MatchString(sel.Value) {
			return nil, problem.Invalid(map[string]string{"labels": "must be a label selector such as env=prod,tier!=web (terms key=value, key!=value, key, !key)"})
		}
		out = append(out, sel)
	}
	if len(out) > 16 {
		return nil, problem.Invalid(map[string]string{"labels": "at most 16 terms"})
	}
	return out, nil
}

// Matches reports whether e passes f.
func (f *Filter) Matches(e *Entity) bool {
	if len(f.Kinds) > 0 && !contains(f.Kinds, e.Kind) {
		return false
	}
	if f.OwnerTeam != "" && e.OwnerTeam != f.OwnerTeam {
		return false
	}
	for _, s := range f.Labels {
		v, ok := e.Labels[s.Key]
		switch s.Op {
		case "=":
			if !ok || v != s.Value {
				return false
			}
		case "!=":
			if ok && v == s.Value {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		}
	}
	if f.Q != "" {
		q := strings.ToLower(f.Q)
		if !strings.Contains(strings.ToLower(e.Name), q) && !strings.Contains(strings.ToLower(e.Description), q) {
			return false
		}
	}
	return true
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
