package catalog

import (
	"strings"

	"switchboard/internal/problem"
)

// String is the reference relations use: "kind:name", or
// "kind:namespace/name" outside the default namespace and whenever the
// name holds a '/' (so that it reads back the same).
func (r Ref) String() string {
	if (r.Namespace == "" || r.Namespace == DefaultNamespace) && !strings.Contains(r.Name, "/") {
		return r.Kind + ":" + r.Name
	}
	ns := r.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	return r.Kind + ":" + ns + "/" + r.Name
}

// Ref is the entity's reference.
func (e *Entity) Ref() Ref { return Ref{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name} }

// ParseRef reads "kind:name" or "kind:namespace/name". The kind is
// lower-cased (an import writes Component, the catalog says component); a
// namespace of "default" is the default namespace.
func ParseRef(s string) (Ref, error) {
	kind, rest, ok := strings.Cut(strings.TrimSpace(s), ":")
	kind = strings.ToLower(kind)
	if !ok || !validKindWord(kind) || rest == "" || strings.ContainsRune(rest, 0) || len(rest) > 600 {
		return Ref{}, problem.Errorf(problem.CodeInvalid, "%q is not an entity reference: write kind:name, such as service:checkout or queue:orders", s)
	}
	r := Ref{Kind: kind, Namespace: DefaultNamespace, Name: rest}
	if ns, name, ok := strings.Cut(rest, "/"); ok {
		if !validNamespace(ns) || name == "" {
			return Ref{}, problem.Errorf(problem.CodeInvalid, "%q is not an entity reference: the namespace in kind:namespace/name must be a lower-case word", s)
		}
		r.Namespace, r.Name = ns, name
	}
	return r, nil
}

// CanonicalRef is ParseRef(s).String(): the one spelling the catalog keeps.
func CanonicalRef(s string) (string, error) {
	r, err := ParseRef(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

func validKindWord(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func validNamespace(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}
