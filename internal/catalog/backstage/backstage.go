package backstage

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"switchboard/internal/catalog"
	"switchboard/internal/problem"
)

// Default limits of Options.
const (
	DefaultMaxBytes     = 4 << 20
	DefaultMaxDocuments = 20000
	DefaultMaxErrors    = 1000
)

// Options bound what Parse reads. Zero values take the defaults.
type Options struct {
	// MaxBytes is the largest stream accepted (default 4 MiB).
	MaxBytes int
	// MaxDocuments is the most documents a stream may hold (default 20,000).
	MaxDocuments int
	// MaxErrors is the most errors listed; one more says the rest were
	// left out (default 1,000).
	MaxErrors int
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxDocuments <= 0 {
		o.MaxDocuments = DefaultMaxDocuments
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	return o
}

// Error is one problem in a stream: the 0-based index of its document,
// the 1-based line (0 when it concerns the whole stream), the field path
// inside the document when there is one, and a message safe to show.
type Error struct {
	Document int    `json:"document"`
	Line     int    `json:"line,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
}

// String reads "document 2, line 14, metadata.name: ...".
func (e Error) String() string {
	s := fmt.Sprintf("document %d", e.Document)
	if e.Line > 0 {
		s += fmt.Sprintf(", line %d", e.Line)
	}
	if e.Field != "" {
		s += ", " + e.Field
	}
	return s + ": " + e.Message
}

// Result is what Parse read: entities and relations in document order,
// and every error found. Any error means nothing may be applied.
type Result struct {
	Entities  []catalog.Entity
	Relations []catalog.Relation
	Errors    []Error
}

// Err is nil when the stream had no errors, else an invalid problem
// counting them (the list is in Errors).
func (r *Result) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return problem.Errorf(problem.CodeInvalid, "the catalog file has %d error(s); nothing was applied", len(r.Errors))
}

// ImportErrors returns Errors as the catalog records them.
func (r *Result) ImportErrors() []catalog.ImportError {
	out := make([]catalog.ImportError, len(r.Errors))
	for i, e := range r.Errors {
		out[i] = catalog.ImportError{Document: e.Document, Line: e.Line, Field: e.Field, Message: e.Message}
	}
	return out
}

// errorList collects errors up to a cap.
type errorList struct {
	max   int
	list  []Error
	extra int
}

func (l *errorList) add(doc, line int, field, format string, args ...any) {
	if len(l.list) >= l.max {
		l.extra++
		return
	}
	l.list = append(l.list, Error{Document: doc, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (l *errorList) result() []Error {
	if l.extra > 0 {
		l.list = append(l.list, Error{Document: l.list[len(l.list)-1].Document, Message: fmt.Sprintf("%d more error(s) not listed", l.extra)})
	}
	return l.list
}

// Parse reads a multi-document catalog-info.yaml stream. Every document
// is checked and every error is listed with its document and line; the
// caller applies the entities and relations only when Errors is empty.
// The error return is set only when the stream is refused as a whole
// before reading it (too large: problem.CodeTooLarge); Result then holds
// that error too. Parse never panics.
func Parse(data []byte, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	res := &Result{Entities: []catalog.Entity{}, Relations: []catalog.Relation{}, Errors: []Error{}}
	if len(data) > opts.MaxBytes {
		msg := fmt.Sprintf("the file is %d bytes, over the limit of %d bytes", len(data), opts.MaxBytes)
		res.Errors = append(res.Errors, Error{Message: msg})
		return res, problem.Errorf(problem.CodeTooLarge, "%s", msg)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	errs := &errorList{max: opts.MaxErrors}
	chunks := splitDocuments(data)
	if len(chunks) > opts.MaxDocuments {
		errs.add(opts.MaxDocuments, chunks[opts.MaxDocuments].start, "", "the file holds %d documents, over the limit of %d", len(chunks), opts.MaxDocuments)
		res.Errors = errs.result()
		return res, nil
	}
	conv := newConverter(2*int64(len(data)) + 100000)
	p := &parser{errs: errs, byBackstage: map[string]int{}, byRef: map[string]int{}, resources: map[string]string{}}
	for i, ch := range chunks {
		root := readChunk(ch, i, conv, errs)
		if root == nil {
			p.docs = append(p.docs, nil)
			continue
		}
		p.docs = append(p.docs, p.document(i, root))
	}
	for _, d := range p.docs {
		if d == nil {
			continue
		}
		p.relations(d)
	}
	res.Errors = errs.result()
	for _, d := range p.docs {
		if d != nil && d.ok {
			res.Entities = append(res.Entities, d.entity)
		}
	}
	res.Relations = append(res.Relations, p.rels...)
	return res, nil
}

// chunk is one document's text and the line of the stream it starts on.
type chunk struct {
	text  []byte
	start int
}

// splitDocuments cuts a stream at its document markers ("---" or "..." at
// the start of a line; YAML forbids both inside a document's content), so
// that a broken document does not hide the errors of those after it.
// Chunks with nothing but comments, directives and markers are no
// documents and are left out.
func splitDocuments(data []byte) []chunk {
	var out []chunk
	cur := chunk{start: 1}
	content, sawMarker := false, false
	flush := func(next int, end int, begin int) {
		if content {
			cur.text = data[begin:end]
			out = append(out, cur)
		}
		cur = chunk{start: next}
		content, sawMarker = false, false
	}
	begin, lineNo := 0, 1
	for off := 0; off < len(data); lineNo++ {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
		}
		line := data[off:next]
		switch {
		case marker(line, "---"):
			if content {
				flush(lineNo, off, begin)
				begin = off
			} else if sawMarker {
				// The document before this marker was empty: drop it.
				cur.start, begin = lineNo, off
			}
			sawMarker = true
			if rest := bytes.TrimSpace(line[3:]); len(rest) > 0 && rest[0] != '#' {
				content = true
			}
		case marker(line, "..."):
			if content {
				flush(lineNo+1, next, begin)
			} else {
				cur.start = lineNo + 1
			}
			begin = next
		default:
			t := bytes.TrimSpace(line)
			if len(t) > 0 && t[0] != '#' && !(line[0] == '%' && !content) {
				content = true
			}
		}
		off = next
	}
	flush(lineNo, len(data), begin)
	return out
}

func marker(line []byte, m string) bool {
	if !bytes.HasPrefix(line, []byte(m)) {
		return false
	}
	rest := line[len(m):]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// readChunk reads one document; nil after reporting why it could not be.
func readChunk(ch chunk, doc int, conv *converter, errs *errorList) (root *value) {
	lines := bytes.SplitAfter(ch.text, []byte("\n"))
	for i, l := range lines {
		if !utf8.Valid(l) {
			errs.add(doc, ch.start+i, "", "the text is not UTF-8")
			return nil
		}
	}
	var n yaml.Node
	err := decodeSafely(ch.text, &n)
	if err != nil {
		line := 0
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, m[0]), ": ")
			// The reader counts lines from 0 in its parser's messages and
			// from 1 in its scanner's.
			if strings.HasPrefix(msg, "did not find expected") {
				line++
			}
			line = min(line, len(lines))
		}
		if t := tabIndented(lines, line); t > 0 {
			errs.add(doc, ch.start+t-1, "", "a tab is used for indentation; YAML indents with spaces")
			return nil
		}
		if line == 0 {
			line = 1
		}
		errs.add(doc, ch.start+line-1, "", "not valid YAML: %s", msg)
		return nil
	}
	before := len(conv.errs)
	conv.offset = ch.start - 1
	v := conv.document(&n)
	for _, e := range conv.errs[before:] {
		errs.add(doc, ch.start+e.line-1, e.field, "%s", e.message)
	}
	if len(conv.errs) > before {
		return nil
	}
	if v != nil {
		shiftLines(v, ch.start-1, map[*value]bool{})
	}
	return v
}

// decodeSafely decodes one YAML document, turning a panic of the reader
// into an error: no input may bring the server down.
func decodeSafely(text []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the document could not be read")
		}
	}()
	return yaml.NewDecoder(bytes.NewReader(text)).Decode(n)
}

// tabIndented returns the 1-based line, up to upTo (all lines when 0), of
// the first line whose indentation holds a tab, or 0.
func tabIndented(lines [][]byte, upTo int) int {
	for i, l := range lines {
		if upTo > 0 && i >= upTo {
			break
		}
		for _, c := range l {
			if c == '\t' {
				return i + 1
			}
			if c != ' ' {
				break
			}
		}
	}
	return 0
}

// shiftLines moves the lines of a chunk's values to lines of the stream.
func shiftLines(v *value, by int, done map[*value]bool) {
	if done[v] {
		return
	}
	done[v] = true
	v.line += by
	for i := range v.keyLines {
		v.keyLines[i] += by
	}
	for _, x := range v.vals {
		shiftLines(x, by, done)
	}
	for _, x := range v.items {
		shiftLines(x, by, done)
	}
}
