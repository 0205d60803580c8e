package rbac

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/casbin/govaluate"
)

// The functions a condition may call, as the parser knows them: distinct
// functions, so explain can tell which one a token names.
func explainHasTeam(args ...any) (any, error) { return hasTeam(args...) }
func explainLabel(args ...any) (any, error)   { return label(args...) }

var explainFuncs = map[string]govaluate.ExpressionFunction{"hasTeam": explainHasTeam, "label": explainLabel}

func funcName(v any) string {
	p := reflect.ValueOf(v).Pointer()
	for name, f := range explainFuncs {
		if reflect.ValueOf(f).Pointer() == p {
			return name
		}
	}
	return ""
}

// attributeWords names what r.sub.X and r.obj.X are.
var attributeWords = map[string]string{
	"r.sub":        "the caller",
	"r.sub.Role":   "the caller's role",
	"r.sub.Teams":  "the caller's teams",
	"r.obj":        "the object",
	"r.obj.Kind":   "the object's kind",
	"r.obj.Name":   "the object's name",
	"r.obj.Team":   "the object's owning team",
	"r.obj.Labels": "the object's labels",
}

var comparatorWords = map[string]string{
	"==": "is", "!=": "is not", ">": "is more than", "<": "is less than", ">=": "is at least", "<=": "is at most",
	"=~": "matches the pattern", "!~": "does not match the pattern", "in": "is one of",
}

// Explain says a rule's condition in words, for people who read policies
// rather than write them: `!hasTeam(r.sub, r.obj.Team) || label(r.obj, "env")
// == "prod"` reads `the caller is not in the object's owning team, or the
// object's label "env" is "prod"`. An empty condition is "always". A
// condition that does not parse is returned as it is, marked so.
func Explain(condition string) string {
	condition = strings.TrimSpace(condition)
	if condition == "" {
		return "always"
	}
	// The model rewrites r.sub and r.obj the same way before evaluating.
	expr := strings.NewReplacer("r.sub", "r_sub", "r.obj", "r_obj").Replace(condition)
	e, err := govaluate.NewEvaluableExpressionWithFunctions(expr, explainFuncs)
	if err != nil {
		return "(not a valid condition) " + condition
	}
	w := &explainer{toks: e.Tokens()}
	out := w.words()
	if w.failed {
		return condition
	}
	return out
}

// explainer turns a token stream into words, one token (or one function
// call) at a time; the expression's own parentheses and operators keep its
// structure.
type explainer struct {
	toks   []govaluate.ExpressionToken
	i      int
	failed bool
}

func (w *explainer) words() string {
	var parts []string
	for w.i < len(w.toks) && !w.failed {
		t := w.toks[w.i]
		switch t.Kind {
		case govaluate.CLAUSE_CLOSE, govaluate.SEPARATOR:
			return strings.Join(parts, " ")
		}
		parts = append(parts, w.term())
	}
	return strings.Join(parts, " ")
}

func (w *explainer) term() string {
	t := w.toks[w.i]
	w.i++
	switch t.Kind {
	case govaluate.PREFIX:
		if t.Value == "!" && w.i < len(w.toks) && w.toks[w.i].Kind == govaluate.FUNCTION && funcName(w.toks[w.i].Value) == "hasTeam" {
			w.i++
			return w.hasTeam(true)
		}
		if t.Value == "!" {
			return "not"
		}
		return fmt.Sprint(t.Value)
	case govaluate.FUNCTION:
		switch funcName(t.Value) {
		case "hasTeam":
			return w.hasTeam(false)
		case "label":
			args := w.args()
			if len(args) == 2 {
				return "the object's label " + args[1]
			}
		}
		w.failed = true
		return ""
	case govaluate.VARIABLE, govaluate.ACCESSOR:
		return attribute(t)
	case govaluate.STRING:
		return strconv.Quote(fmt.Sprint(t.Value))
	case govaluate.NUMERIC, govaluate.BOOLEAN:
		return fmt.Sprint(t.Value)
	case govaluate.COMPARATOR:
		if s, ok := comparatorWords[fmt.Sprint(t.Value)]; ok {
			return s
		}
	case govaluate.LOGICALOP:
		switch t.Value {
		case "&&":
			return "and"
		case "||":
			return "or"
		}
	case govaluate.PATTERN:
		return strconv.Quote(fmt.Sprint(t.Value))
	case govaluate.CLAUSE:
		var items []string
		for w.i < len(w.toks) && !w.failed {
			items = append(items, w.words())
			if w.i >= len(w.toks) {
				break
			}
			end := w.toks[w.i]
			w.i++
			if end.Kind == govaluate.CLAUSE_CLOSE {
				break
			}
		}
		return "(" + strings.Join(items, ", ") + ")"
	}
	return fmt.Sprint(t.Value)
}

// args reads "( a , b )" after a function token and returns each argument
// in words.
func (w *explainer) args() []string {
	if w.i >= len(w.toks) || w.toks[w.i].Kind != govaluate.CLAUSE {
		w.failed = true
		return nil
	}
	w.i++
	var out []string
	for w.i < len(w.toks) && !w.failed {
		out = append(out, w.words())
		if w.i >= len(w.toks) {
			break
		}
		t := w.toks[w.i]
		w.i++
		if t.Kind == govaluate.CLAUSE_CLOSE {
			return out
		}
	}
	w.failed = true
	return nil
}

func (w *explainer) hasTeam(negated bool) string {
	args := w.args()
	if len(args) != 2 {
		w.failed = true
		return ""
	}
	if negated {
		return "the caller is not in " + args[1]
	}
	return "the caller is in " + args[1]
}

func attribute(t govaluate.ExpressionToken) string {
	var name string
	switch v := t.Value.(type) {
	case []string:
		name = strings.Join(v, ".")
	default:
		name = fmt.Sprint(v)
	}
	name = strings.NewReplacer("r_sub", "r.sub", "r_obj", "r.obj").Replace(name)
	if s, ok := attributeWords[name]; ok {
		return s
	}
	return name
}
