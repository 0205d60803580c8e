package backstage

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"switchboard/internal/catalog"
)

// coreKinds are Backstage's own kinds, which take a backstage.io
// apiVersion; other kinds (Template, custom kinds) may take any.
var coreKinds = []string{"component", "api", "resource", "system", "domain", "group", "user", "location"}

var (
	apiVersionRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/[a-z0-9]{1,63}$`)
	kindRe       = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,62}$`)
	namespaceRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelKeyRe   = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$`)
	labelValueRe = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$`)
)

// parser holds what Parse learned across the documents of one stream.
type parser struct {
	errs *errorList
	docs []*doc
	// byBackstage and byRef find the document that first declared an
	// identity: Backstage's (kind, namespace, name) and the catalog's ref.
	byBackstage map[string]int
	byRef       map[string]int
	// resources maps "namespace/name" of each Resource document to its
	// catalog kind, so that resource:x finds a queue, topic or broker.
	resources map[string]string
	rels      []catalog.Relation
}

// doc is one read document.
type doc struct {
	index   int
	ok      bool
	entity  catalog.Entity
	pending []pendingRel
}

// pendingRel is a relation whose target is resolved once every document
// is read.
type pendingRel struct {
	typ, target, defaultKind string
	line                     int
	field                    string
}

func (p *parser) reporter(index int, ok *bool) reporter {
	return func(line int, field, format string, args ...any) {
		*ok = false
		p.errs.add(index, line, field, format, args...)
	}
}

// document checks one document and reads its entity; relations are read
// into pending and resolved later.
func (p *parser) document(index int, root *value) *doc {
	d := &doc{index: index, ok: true}
	report := p.reporter(index, &d.ok)
	if root.kind != mappingValue {
		report(root.line, "", "a document must be a mapping with apiVersion, kind, metadata and spec")
		return d
	}
	apiVersion := requiredString(root, "apiVersion", root.line, report)
	kind := requiredString(root, "kind", root.line, report)
	if kind != "" && !kindRe.MatchString(kind) {
		_, l := root.get("kind")
		report(l, "kind", "must be a word of letters and digits, such as Component")
	}
	bsKind := strings.ToLower(kind)
	if apiVersion != "" {
		_, l := root.get("apiVersion")
		switch {
		case slices.Contains(coreKinds, bsKind) && apiVersion != "backstage.io/v1alpha1" && apiVersion != "backstage.io/v1beta1":
			report(l, "apiVersion", "a %s takes backstage.io/v1alpha1 or backstage.io/v1beta1", kind)
		case !apiVersionRe.MatchString(apiVersion):
			report(l, "apiVersion", "must be group/version, such as backstage.io/v1alpha1")
		}
	}
	meta, metaLine := root.get("metadata")
	if meta == nil || meta.kind != mappingValue {
		if metaLine == 0 {
			metaLine = root.line
		}
		report(metaLine, "metadata", "is required: a mapping with at least a name")
		meta = newMapping()
		meta.line = metaLine
	}
	spec, specLine := root.get("spec")
	if spec != nil && spec.kind != mappingValue && !(spec.kind == scalarValue && spec.scalar == nil) {
		report(specLine, "spec", "must be a mapping")
	}
	if spec == nil || spec.kind != mappingValue {
		spec = newMapping()
	}
	if specLine == 0 {
		specLine = root.line
	}
	e := &d.entity
	e.Name = requiredStringField(meta, "name", "metadata.name", metaLine, report)
	e.Namespace = catalog.DefaultNamespace
	if v, l := meta.get("namespace"); v != nil {
		ns, ok := v.str()
		if !ok || !namespaceRe.MatchString(ns) {
			report(l, "metadata.namespace", "must be 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit")
		} else {
			e.Namespace = ns
		}
	}
	ann := readStringMap(meta, "annotations", "metadata.annotations", report)
	ann.line = metaLine
	for k, l := range ann.lines {
		if !labelKeyRe.MatchString(k) {
			report(l, "metadata.annotations."+k, "an annotation key is an optional DNS prefix and '/', then 1-63 letters, digits, '-', '_' or '.'")
		}
	}
	specType := ""
	if v, _ := spec.get("type"); v != nil {
		specType, _ = v.text()
	}

	// The catalog kind: a Component is a service; a Resource may declare a
	// native kind; any other kind keeps its own name.
	switch bsKind {
	case "component":
		e.Kind = catalog.KindService
	case "resource":
		e.Kind = resourceKind(ann, specType)
		if v, l, ok := ann.get(AnnKind); ok && !slices.Contains([]string{catalog.KindQueue, catalog.KindTopic, catalog.KindBroker, catalog.KindSaga}, strings.ToLower(v)) {
			report(l, annField(AnnKind), "must be queue, topic, broker or saga")
		}
	default:
		e.Kind = bsKind
		if v, l, ok := ann.get(AnnKind); ok && strings.ToLower(v) != bsKind {
			report(l, annField(AnnKind), "applies to Resource documents only")
		}
	}
	if e.Name != "" && bsKind != "" && !catalog.ValidName(e.Kind, e.Name) {
		_, l := meta.get("name")
		report(l, "metadata.name", "%q is not a valid name for a %s: it %s", e.Name, e.Kind, catalog.NameHint(e.Kind))
	}
	if e.Name != "" && bsKind != "" {
		_, l := meta.get("name")
		p.checkDuplicate(d, bsKind, l, report)
		if bsKind == "resource" {
			p.resources[e.Namespace+"/"+e.Name] = e.Kind
		}
	}

	if v, l := meta.get("description"); v != nil {
		s, ok := v.text()
		if !ok {
			report(l, "metadata.description", "must be a string")
		}
		if utf8.RuneCountInString(s) > 4000 {
			report(l, "metadata.description", "at most 4000 characters")
		}
		e.Description = s
	}
	labels := readStringMap(meta, "labels", "metadata.labels", report)
	e.Labels = labels.vals
	if len(labels.vals) > 64 {
		_, l := meta.get("labels")
		report(l, "metadata.labels", "at most 64 labels")
	}
	for k, val := range labels.vals {
		if !labelKeyRe.MatchString(k) {
			report(labels.lines[k], "metadata.labels."+k, "a label key is an optional DNS prefix and '/', then 1-63 letters, digits, '-', '_' or '.'")
		} else if !labelValueRe.MatchString(val) {
			report(labels.lines[k], "metadata.labels."+k, "a label value is at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
		}
	}
	e.Annotations = map[string]string{}
	for k, v := range ann.vals {
		if !modelled(k) {
			e.Annotations[k] = v
		}
	}
	e.Links = readLinks(meta, report)

	if v, l := spec.get("owner"); v != nil {
		s, ok := v.str()
		owner, msg := parseOwner(s)
		if !ok || msg != "" {
			if msg == "" {
				msg = "must be a reference to a group or user, such as group:payments or user:jdoe"
			}
			report(l, "spec.owner", "%s", msg)
		}
		e.OwnerTeam = owner
	}

	switch e.Kind {
	case catalog.KindService:
		e.Service = readService(ann, report)
	case catalog.KindQueue:
		e.Queue = readQueue(ann, report)
	case catalog.KindTopic:
		e.Topic = readTopic(ann, report)
	case catalog.KindBroker:
		e.Broker = readBroker(ann, specType, report)
	case catalog.KindSaga:
		e.Saga = readSaga(spec, specLine, report)
	}
	d.pending = relationFields(spec, ann, report)

	var buf bytes.Buffer
	appendJSON(&buf, root)
	e.Raw = buf.Bytes()
	return d
}

func (p *parser) checkDuplicate(d *doc, bsKind string, line int, report reporter) {
	e := &d.entity
	bkey := bsKind + "|" + e.Namespace + "|" + e.Name
	ref := e.Ref().String()
	first, dupB := p.byBackstage[bkey]
	if !dupB {
		first, dupB = p.byRef[ref]
	}
	if dupB {
		report(line, "metadata.name", "%s appears twice: document %d declares it too", ref, first)
		return
	}
	p.byBackstage[bkey] = d.index
	p.byRef[ref] = d.index
}

func requiredString(m *value, key string, line int, report reporter) string {
	return requiredStringField(m, key, key, line, report)
}

func requiredStringField(m *value, key, field string, line int, report reporter) string {
	v, l := m.get(key)
	if v == nil {
		report(line, field, "is required")
		return ""
	}
	s, ok := v.str()
	if !ok || s == "" {
		report(l, field, "must be a non-empty string")
		return ""
	}
	return s
}

// readStringMap reads a mapping of plain values (labels, annotations).
func readStringMap(m *value, key, field string, report reporter) annotations {
	out := annotations{vals: map[string]string{}, lines: map[string]int{}}
	v, l := m.get(key)
	if v == nil || (v.kind == scalarValue && v.scalar == nil) {
		return out
	}
	if v.kind != mappingValue {
		report(l, field, "must be a mapping of names to strings")
		return out
	}
	for i, k := range v.keys {
		s, ok := v.vals[i].text()
		if !ok {
			report(v.keyLines[i], field+"."+k, "must be a string")
			continue
		}
		out.vals[k] = s
		out.lines[k] = v.keyLines[i]
	}
	return out
}

func readLinks(meta *value, report reporter) []catalog.Link {
	links := []catalog.Link{}
	v, l := meta.get("links")
	if v == nil || (v.kind == scalarValue && v.scalar == nil) {
		return links
	}
	if v.kind != sequenceValue {
		report(l, "metadata.links", "must be a list of links (url, title, type)")
		return links
	}
	if len(v.items) > 32 {
		report(l, "metadata.links", "at most 32 links")
	}
	for i, x := range v.items {
		field := fmt.Sprintf("metadata.links[%d]", i)
		if x.kind != mappingValue {
			report(x.line, field, "must be a mapping with url, title and type")
			continue
		}
		var link catalog.Link
		u, ul := x.get("url")
		s, ok := u.str()
		if u == nil || !ok || !webURL(s) {
			if ul == 0 {
				ul = x.line
			}
			report(ul, field+".url", "must be an http or https URL")
		}
		link.URL = s
		for _, f := range []struct {
			key string
			to  *string
		}{{"title", &link.Title}, {"type", &link.Type}} {
			if t, tl := x.get(f.key); t != nil {
				s, ok := t.text()
				if !ok {
					report(tl, field+"."+f.key, "must be a string")
				}
				*f.to = s
			}
		}
		links = append(links, link)
	}
	return links
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// parseOwner reads spec.owner: a group in the default namespace is its
// team slug; anything else (a user, a group in another namespace) is its
// catalog reference. msg says what is wrong, or is "".
func parseOwner(s string) (string, string) {
	r, msg := parseRef(s, "group")
	if msg != "" {
		return "", msg
	}
	if k := mappedKind(r.Kind); !catalog.ValidName(k, r.Name) {
		return "", fmt.Sprintf("%q is not a valid name for a %s: it %s", r.Name, k, catalog.NameHint(k))
	}
	if r.Kind == "group" && r.Namespace == catalog.DefaultNamespace {
		return r.Name, ""
	}
	return r.String(), ""
}
