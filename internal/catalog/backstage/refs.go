package backstage

import (
	"fmt"
	"strings"

	"switchboard/internal/catalog"
)

// relationField is a Backstage spec field that holds relations.
type relationField struct {
	key         string
	typ         string
	defaultKind string // "" when a reference must name its kind
	list        bool
}

// relationFields lists the spec fields read as relations.
var specRelations = []relationField{
	{"dependsOn", catalog.DependsOn, "", true},
	{"providesApis", catalog.ProvidesAPI, "api", true},
	{"consumesApis", catalog.ConsumesAPI, "api", true},
	{"system", catalog.PartOf, "system", false},
	{"domain", catalog.PartOf, "domain", false},
	{"parent", catalog.ChildOf, "group", false},
	{"memberOf", catalog.MemberOf, "group", true},
}

// relationFields reads the relations a document declares, from its spec
// fields and its relation annotations, unresolved.
func relationFields(spec *value, ann annotations, report reporter) []pendingRel {
	var out []pendingRel
	for _, f := range specRelations {
		v, line := spec.get(f.key)
		if v == nil || (v.kind == scalarValue && v.scalar == nil) {
			continue
		}
		field := "spec." + f.key
		if !f.list {
			s, ok := v.str()
			if !ok {
				report(line, field, "must be an entity reference")
				continue
			}
			out = append(out, pendingRel{typ: f.typ, target: s, defaultKind: f.defaultKind, line: line, field: field})
			continue
		}
		if v.kind != sequenceValue {
			report(line, field, "must be a list of entity references")
			continue
		}
		for i, x := range v.items {
			s, ok := x.str()
			if !ok {
				report(x.line, fmt.Sprintf("%s[%d]", field, i), "must be an entity reference")
				continue
			}
			out = append(out, pendingRel{typ: f.typ, target: s, defaultKind: f.defaultKind, line: x.line, field: fmt.Sprintf("%s[%d]", field, i)})
		}
	}
	for _, t := range catalog.RelationTypes {
		key := RelationAnnotation(t)
		v, line, ok := ann.get(key)
		if !ok {
			continue
		}
		for _, s := range splitList(v) {
			out = append(out, pendingRel{typ: t, target: s, line: line, field: annField(key)})
		}
	}
	return out
}

// relations resolves a document's pending relations into the result;
// a document with errors adds none.
func (p *parser) relations(d *doc) {
	report := p.reporter(d.index, &d.ok)
	from := d.entity.Ref().String()
	var mine []catalog.Relation
	seen := map[string]bool{}
	for _, r := range d.pending {
		to, msg := resolveRef(r.target, r.defaultKind, p.resources)
		if msg != "" {
			report(r.line, r.field, "%s", msg)
			continue
		}
		if to == from {
			report(r.line, r.field, "%s cannot relate to itself", from)
			continue
		}
		key := r.typ + " " + to
		if !seen[key] {
			seen[key] = true
			mine = append(mine, catalog.Relation{From: from, Type: r.typ, To: to})
		}
	}
	if d.ok {
		p.rels = append(p.rels, mine...)
	}
}

// parseRef reads a Backstage entity reference ([kind:][namespace/]name)
// into a catalog reference, without mapping the kind; msg says what is
// wrong, or is "".
func parseRef(s, defaultKind string) (catalog.Ref, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return catalog.Ref{}, "an entity reference must not be empty"
	}
	if !strings.Contains(s, ":") {
		if defaultKind == "" {
			return catalog.Ref{}, fmt.Sprintf("%q must name its kind, as kind:name (such as component:checkout or resource:orders-db)", s)
		}
		s = defaultKind + ":" + s
	}
	r, err := catalog.ParseRef(s)
	if err != nil {
		return catalog.Ref{}, fmt.Sprintf("%q is not an entity reference: write kind:name or kind:namespace/name", s)
	}
	return r, ""
}

// mappedKind is the catalog kind of a Backstage kind in a reference.
func mappedKind(kind string) string {
	if kind == "component" {
		return catalog.KindService
	}
	return kind
}

// resolveRef reads a reference and maps it to the catalog: component is
// service; resource is the native kind of the Resource document of that
// name in the same stream, if any.
func resolveRef(s, defaultKind string, resources map[string]string) (string, string) {
	r, msg := parseRef(s, defaultKind)
	if msg != "" {
		return "", msg
	}
	r.Kind = mappedKind(r.Kind)
	if r.Kind == "resource" {
		if k, ok := resources[r.Namespace+"/"+r.Name]; ok {
			r.Kind = k
		}
	}
	if !catalog.ValidName(r.Kind, r.Name) {
		return "", fmt.Sprintf("%q: %q is not a valid name for a %s: it %s", s, r.Name, r.Kind, catalog.NameHint(r.Kind))
	}
	return r.String(), ""
}
