package backstage

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"switchboard/internal/catalog"
	"switchboard/internal/problem"
)

// backstageKinds spells the kinds Backstage names, for documents written
// without an imported one.
var backstageKinds = map[string]string{
	catalog.KindService: "Component", catalog.KindQueue: "Resource", catalog.KindTopic: "Resource",
	catalog.KindBroker: "Resource", catalog.KindSaga: "Resource",
	"api": "API", "component": "Component", "resource": "Resource", "system": "System", "domain": "Domain",
	"group": "Group", "user": "User", "location": "Location", "template": "Template",
}

// exporter holds what every document of one export needs.
type exporter struct {
	// docKind is the kind each entity's document is written as.
	docKind map[string]string
	// exportRef is how a reference to an exported entity is written.
	exportRef map[string]string
	// resources maps "namespace/name" of Resource documents to their
	// catalog kind, as Parse will see them.
	resources map[string]string
}

// Export writes entities and the relations from them as a multi-document
// catalog-info.yaml stream, ordered by kind, namespace and name. Each
// document starts from the entity's imported one (Raw), so kinds and
// fields Switchboard does not model come back, and carries the modelled
// fields, relations and switchboard.io annotations from the entity; an
// entity without Raw is written as a Component (services) or a Resource.
// Parse reads the output back to the same entities and relations.
// Relations from entities not in the list have no document and are left
// out.
func Export(entities []catalog.Entity, relations []catalog.Relation) ([]byte, error) {
	ents := slices.Clone(entities)
	for i := range ents {
		if ents[i].Namespace == "" {
			ents[i].Namespace = catalog.DefaultNamespace
		}
	}
	sort.SliceStable(ents, func(i, j int) bool {
		a, b := ents[i], ents[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	x := &exporter{docKind: map[string]string{}, exportRef: map[string]string{}, resources: map[string]string{}}
	roots := make([]*value, len(ents))
	taken := map[string]bool{}
	for i := range ents {
		e := &ents[i]
		if !kindRe.MatchString(e.Kind) || e.Name == "" {
			return nil, problem.Errorf(problem.CodeInvalid, "an entity without a kind or a name cannot be written")
		}
		ref := e.Ref().String()
		if _, dup := x.docKind[ref]; dup {
			return nil, problem.Errorf(problem.CodeInvalid, "%s appears twice", ref)
		}
		roots[i] = rawRoot(e)
		kind := docKindOf(e, roots[i])
		key := strings.ToLower(kind) + "|" + e.Namespace + "|" + e.Name
		if taken[key] {
			// Two catalog kinds would share one Backstage identity (a queue
			// and a topic of one name): write this one as its own kind.
			kind = strings.ToUpper(e.Kind[:1]) + e.Kind[1:]
			key = strings.ToLower(kind) + "|" + e.Namespace + "|" + e.Name
			if taken[key] {
				return nil, problem.Errorf(problem.CodeInvalid, "%s cannot be written: another entity takes its name", ref)
			}
		}
		taken[key] = true
		x.docKind[ref] = kind
		x.exportRef[ref] = catalog.Ref{Kind: strings.ToLower(kind), Namespace: e.Namespace, Name: e.Name}.String()
		if strings.EqualFold(kind, "resource") {
			x.resources[e.Namespace+"/"+e.Name] = e.Kind
		}
	}
	from := map[string][]catalog.Relation{}
	for _, r := range relations {
		if !slices.Contains(catalog.RelationTypes, r.Type) {
			return nil, problem.Errorf(problem.CodeInvalid, "relation type %q is unknown", r.Type)
		}
		if _, ok := x.docKind[r.From]; ok {
			from[r.From] = append(from[r.From], r)
		}
	}
	var buf bytes.Buffer
	if len(ents) == 0 {
		return buf.Bytes(), nil
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for i := range ents {
		doc := x.document(&ents[i], roots[i], from[ents[i].Ref().String()])
		if err := enc.Encode(toNode(doc)); err != nil {
			return nil, fmt.Errorf("write %s: %w", ents[i].Ref(), err)
		}
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write catalog: %w", err)
	}
	return buf.Bytes(), nil
}

// rawRoot is the entity's imported document, or an empty one.
func rawRoot(e *catalog.Entity) *value {
	if len(e.Raw) > 0 {
		if v, err := fromJSON(e.Raw); err == nil && v.kind == mappingValue {
			return v
		}
	}
	return newMapping()
}

// docKindOf is the kind an entity's document is written as: the imported
// one when it reads back as the entity's kind, else Backstage's spelling.
func docKindOf(e *catalog.Entity, root *value) string {
	if v, _ := root.get("kind"); v != nil {
		if k, ok := v.str(); ok && kindRe.MatchString(k) {
			lk := strings.ToLower(k)
			switch {
			case lk == "component" && e.Kind == catalog.KindService,
				lk == "resource" && (e.Kind == "resource" || catalog.IsNative(e.Kind) && e.Kind != catalog.KindService),
				lk == e.Kind:
				return k
			}
		}
	}
	if k, ok := backstageKinds[e.Kind]; ok {
		return k
	}
	return strings.ToUpper(e.Kind[:1]) + e.Kind[1:]
}

// document builds one entity's document.
func (x *exporter) document(e *catalog.Entity, root *value, rels []catalog.Relation) *value {
	kind := x.docKind[e.Ref().String()]
	nativeResource := strings.EqualFold(kind, "resource") && catalog.IsNative(e.Kind)
	if v, _ := root.get("apiVersion"); v == nil || !isString(v) || (slices.Contains(coreKinds, strings.ToLower(kind)) && !isBackstageVersion(v)) {
		root.set("apiVersion", stringValue("backstage.io/v1alpha1"))
	}
	root.set("kind", stringValue(kind))

	meta, _ := root.get("metadata")
	if meta == nil || meta.kind != mappingValue {
		meta = newMapping()
	}
	origSpec, _ := root.get("spec")
	spec := origSpec
	if spec == nil || spec.kind != mappingValue {
		spec = newMapping()
	}
	rawAnn := readStringMap(meta, "annotations", "", func(int, string, string, ...any) {})
	rawSpecType := ""
	if v, _ := spec.get("type"); v != nil {
		rawSpecType, _ = v.text()
	}

	meta.set("name", stringValue(e.Name))
	if v, _ := meta.get("namespace"); v != nil || e.Namespace != catalog.DefaultNamespace {
		meta.set("namespace", stringValue(e.Namespace))
	}
	if v, _ := meta.get("description"); v == nil || !textIs(v, e.Description) {
		if e.Description != "" {
			meta.set("description", stringValue(e.Description))
		} else {
			meta.del("description")
		}
	}
	setStringMap(meta, "labels", e.Labels)
	if len(e.Links) > 0 {
		meta.set("links", x.links(e.Links, readRawLinks(meta)))
	} else if v, _ := meta.get("links"); !isEmpty(v) {
		meta.del("links")
	}

	// Annotations: the entity's own, then the spec's (kept as imported
	// when they read the same), then relations (likewise).
	ann := map[string]string{}
	for k, v := range e.Annotations {
		if !modelled(k) {
			ann[k] = v
		}
	}
	want := specAnnotations(e)
	probe := *e
	probe.Service, probe.Queue, probe.Topic, probe.Broker = nil, nil, nil, nil
	discard := func(int, string, string, ...any) {}
	switch e.Kind {
	case catalog.KindService:
		probe.Service = readService(rawAnn, discard)
	case catalog.KindQueue:
		probe.Queue = readQueue(rawAnn, discard)
	case catalog.KindTopic:
		probe.Topic = readTopic(rawAnn, discard)
	case catalog.KindBroker:
		probe.Broker = readBroker(rawAnn, rawSpecType, discard)
	}
	if slices.Equal(specAnnotations(&probe), want) {
		for _, a := range Annotations {
			if v, ok := rawAnn.vals[a.Key]; ok && a.Key != AnnKind {
				ann[a.Key] = v
			}
		}
	} else {
		for _, kv := range want {
			ann[kv[0]] = kv[1]
		}
	}
	if nativeResource {
		if rawSpecType == "" && len(e.Raw) == 0 {
			t := e.Kind
			if e.Kind == catalog.KindBroker && e.Broker != nil && e.Broker.Type != "" {
				t = e.Broker.Type
			}
			spec.set("type", stringValue(t))
			rawSpecType = t
		}
		if len(e.Raw) == 0 || resourceKind(annotations{}, rawSpecType) != e.Kind {
			ann[AnnKind] = e.Kind
		}
	}
	if v, ok := rawAnn.vals[AnnKind]; ok && strings.EqualFold(strings.TrimSpace(v), e.Kind) {
		ann[AnnKind] = v
	}
	if e.Kind == catalog.KindService && len(e.Raw) == 0 {
		spec.set("type", stringValue("service"))
		spec.set("lifecycle", stringValue("production"))
	}
	if e.Kind == catalog.KindSaga && e.Saga != nil {
		old := readSaga(spec, 0, discard)
		if !slices.Equal(old.Steps, e.Saga.Steps) {
			spec.set("steps", sagaSteps(e.Saga.Steps))
		}
	}

	// Owner: kept as written when it reads as the same owner.
	if e.OwnerTeam == "" {
		spec.del("owner")
	} else if v, _ := spec.get("owner"); v == nil || !ownerIs(v, e.OwnerTeam) {
		o := e.OwnerTeam
		if !strings.Contains(o, ":") {
			o = "group:" + o
		}
		spec.set("owner", stringValue(o))
	}

	x.relationsInto(e, spec, rawAnn, ann, rels)

	setStringMap(meta, "annotations", ann)
	order(meta, "name", "namespace", "title", "description", "labels", "annotations", "tags", "links")
	root.set("metadata", meta)
	switch {
	case len(spec.keys) > 0:
		order(spec, "type", "lifecycle", "owner", "system", "domain", "parent")
		root.set("spec", spec)
	case origSpec != nil:
		root.set("spec", origSpec) // as imported: empty or null
	default:
		root.del("spec")
	}
	order(root, "apiVersion", "kind", "metadata", "spec")
	return root
}

// relationsInto writes rels into spec fields and annotations: a relation
// type whose relations the imported document already says is left as
// written; another is rewritten, into Backstage's field where it fits and
// the relation annotation otherwise.
func (x *exporter) relationsInto(e *catalog.Entity, spec *value, rawAnn annotations, ann map[string]string, rels []catalog.Relation) {
	discard := func(int, string, string, ...any) {}
	had := map[string][]string{}
	for _, r := range relationFields(spec, rawAnn, discard) {
		if to, msg := resolveRef(r.target, r.defaultKind, x.resources); msg == "" {
			had[r.typ] = append(had[r.typ], to)
		}
	}
	want := map[string][]string{}
	for _, r := range rels {
		want[r.Type] = append(want[r.Type], r.To)
	}
	for _, t := range catalog.RelationTypes {
		key := RelationAnnotation(t)
		if sameSet(had[t], want[t]) {
			if v, ok := rawAnn.vals[key]; ok {
				ann[key] = v
			}
			continue
		}
		for _, f := range specRelations {
			if f.typ == t {
				spec.del(f.key)
			}
		}
		targets := slices.Clone(want[t])
		slices.Sort(targets)
		targets = slices.Compact(targets)
		var rest []string
		switch t {
		case catalog.DependsOn:
			if len(targets) > 0 {
				spec.set("dependsOn", x.refList(targets))
			}
		case catalog.ProvidesAPI:
			if len(targets) > 0 {
				spec.set("providesApis", x.refList(targets))
			}
		case catalog.ConsumesAPI:
			if len(targets) > 0 {
				spec.set("consumesApis", x.refList(targets))
			}
		case catalog.MemberOf:
			if len(targets) > 0 {
				spec.set("memberOf", x.refList(targets))
			}
		case catalog.ChildOf:
			if len(targets) == 1 {
				spec.set("parent", stringValue(x.ref(targets[0])))
			} else {
				rest = targets
			}
		case catalog.PartOf:
			var systems, domains []string
			for _, to := range targets {
				switch {
				case strings.HasPrefix(to, "system:"):
					systems = append(systems, to)
				case strings.HasPrefix(to, "domain:"):
					domains = append(domains, to)
				default:
					rest = append(rest, to)
				}
			}
			for field, list := range map[string][]string{"system": systems, "domain": domains} {
				if len(list) == 1 {
					spec.set(field, stringValue(x.ref(list[0])))
				} else {
					rest = append(rest, list...)
				}
			}
			slices.Sort(rest)
		default:
			rest = targets
		}
		delete(ann, key)
		if len(rest) > 0 {
			written := make([]string, len(rest))
			for i, to := range rest {
				written[i] = x.ref(to)
			}
			ann[key] = strings.Join(written, ", ")
		}
	}
}

// ref is how a reference is written: an exported entity by the kind of
// its document, anything else as the catalog spells it.
func (x *exporter) ref(to string) string {
	if r, ok := x.exportRef[to]; ok {
		return r
	}
	return to
}

func (x *exporter) refList(targets []string) *value {
	v := &value{kind: sequenceValue, items: []*value{}}
	for _, t := range targets {
		v.items = append(v.items, stringValue(x.ref(t)))
	}
	return v
}

func (x *exporter) links(links []catalog.Link, raw []*value) *value {
	out := &value{kind: sequenceValue}
	for i, l := range links {
		m := newMapping()
		if i < len(raw) && raw[i].kind == mappingValue {
			if u, _ := raw[i].get("url"); textIs(u, l.URL) {
				m = raw[i].clone()
			}
		}
		m.set("url", stringValue(l.URL))
		for _, f := range []struct{ key, val string }{{"title", l.Title}, {"type", l.Type}} {
			if f.val == "" {
				m.del(f.key)
			} else if v, _ := m.get(f.key); !textIs(v, f.val) {
				m.set(f.key, stringValue(f.val))
			}
		}
		out.items = append(out.items, m)
	}
	return out
}

// readRawLinks returns the imported document's links (before changes).
func readRawLinks(meta *value) []*value {
	v, _ := meta.get("links")
	if v == nil || v.kind != sequenceValue {
		return nil
	}
	return v.items
}

func sagaSteps(steps []catalog.SagaStep) *value {
	v := &value{kind: sequenceValue}
	for _, s := range steps {
		m := newMapping()
		m.set("name", stringValue(s.Name))
		m.set("service", stringValue(s.Service))
		m.set("action", stringValue(s.Action))
		if s.Compensation != "" {
			m.set("compensation", stringValue(s.Compensation))
		}
		v.items = append(v.items, m)
	}
	return v
}

// setStringMap writes m under key: keys the old mapping had keep their
// place (and their value when it reads the same), new keys follow sorted;
// an empty m removes the key.
func setStringMap(parent *value, key string, m map[string]string) {
	old, _ := parent.get(key)
	if len(m) == 0 {
		if !isEmpty(old) {
			parent.del(key)
		}
		return
	}
	out := newMapping()
	if old != nil && old.kind == mappingValue {
		for i, k := range old.keys {
			if v, ok := m[k]; ok {
				if textIs(old.vals[i], v) {
					out.set(k, old.vals[i])
				} else {
					out.set(k, stringValue(v))
				}
			}
		}
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		if v, _ := out.get(k); v == nil {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out.set(k, stringValue(m[k]))
	}
	parent.set(key, out)
}

// order moves the named keys to the front of a mapping, in that order.
func order(m *value, first ...string) {
	var keys []string
	var vals []*value
	var lines []int
	for _, k := range first {
		if v, l := m.get(k); v != nil {
			keys, vals, lines = append(keys, k), append(vals, v), append(lines, l)
		}
	}
	for i, k := range m.keys {
		if !slices.Contains(first, k) {
			keys, vals, lines = append(keys, k), append(vals, m.vals[i]), append(lines, m.keyLines[i])
		}
	}
	m.keys, m.vals, m.keyLines = keys, vals, lines
}

// isEmpty reports whether v is present and null, an empty mapping or an
// empty list: an imported spelling of "nothing" that is kept as written.
func isEmpty(v *value) bool {
	if v == nil {
		return false
	}
	return v.kind == scalarValue && v.scalar == nil || len(v.keys) == 0 && len(v.items) == 0 && v.kind != scalarValue
}

func isString(v *value) bool {
	_, ok := v.str()
	return ok
}

func isBackstageVersion(v *value) bool {
	s, _ := v.str()
	return s == "backstage.io/v1alpha1" || s == "backstage.io/v1beta1"
}

func textIs(v *value, s string) bool {
	t, ok := v.text()
	return ok && t == s
}

func ownerIs(v *value, owner string) bool {
	s, ok := v.str()
	if !ok {
		return false
	}
	o, msg := parseOwner(s)
	return msg == "" && o == owner
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
