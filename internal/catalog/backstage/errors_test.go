package backstage_test

import (
	"fmt"
	"strings"
	"testing"

	"switchboard/internal/catalog"
	"switchboard/internal/catalog/backstage"
	"switchboard/internal/problem"
)

type wantErr struct {
	doc, line int
	contains  string
}

func assertErrors(t *testing.T, data string, opts backstage.Options, want []wantErr) *backstage.Result {
	t.Helper()
	res, _ := backstage.Parse([]byte(data), opts)
	if len(res.Errors) != len(want) {
		for _, e := range res.Errors {
			t.Log(e)
		}
		t.Fatalf("got %d errors, want %d", len(res.Errors), len(want))
	}
	for i, w := range want {
		e := res.Errors[i]
		if e.Document != w.doc || e.Line != w.line || !strings.Contains(e.Message, w.contains) {
			t.Errorf("error %d = %s; want document %d, line %d, containing %q", i, e, w.doc, w.line, w.contains)
		}
	}
	if res.Err() == nil {
		t.Error("Err() is nil with errors")
	}
	return res
}

const good = `apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: fine
spec:
  owner: payments
`

func TestParse_BadInput(t *testing.T) {
	bomb := `apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: bomb
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
`
	cases := []struct {
		name string
		data string
		want []wantErr
	}{
		{"alias bomb", good + "---\n" + bomb, []wantErr{{1, 8, "excessive aliasing"}}},
		{"non-UTF-8", good + "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: caf\xe9\n", []wantErr{{1, 11, "not UTF-8"}}},
		{"tab indentation", good + "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n\tname: x\n", []wantErr{{1, 11, "tab"}}},
		{"duplicate key", good + "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: a\n  name: b\n", []wantErr{{1, 12, `duplicate key "name" (first at line 11)`}}},
		{"not a mapping", "- one\n- two\n---\n" + good, []wantErr{{0, 1, "must be a mapping"}}},
		{"scalar document", good + "--- just words\n", []wantErr{{1, 7, "must be a mapping"}}},
		{"missing apiVersion", "kind: Group\nmetadata:\n  name: x\n", []wantErr{{0, 1, "is required"}}},
		{"missing kind", "apiVersion: backstage.io/v1alpha1\nmetadata:\n  name: x\n", []wantErr{{0, 1, "is required"}}},
		{"missing metadata", "apiVersion: backstage.io/v1alpha1\nkind: Group\nspec: {}\n", []wantErr{{0, 1, "is required"}, {0, 1, "is required"}}},
		{"missing name", "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  title: x\n", []wantErr{{0, 3, "is required"}}},
		{"bad core apiVersion", "apiVersion: v1\nkind: Group\nmetadata:\n  name: x\n", []wantErr{{0, 1, "backstage.io/v1alpha1"}}},
		{"service name", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: Checkout_Svc\n", []wantErr{{0, 4, "not a valid name for a service"}}},
		{"backstage name", "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: -team\n", []wantErr{{0, 4, "not a valid name for a group"}}},
		{"long name", "apiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: " + strings.Repeat("a", 64) + "\n", []wantErr{{0, 4, "not a valid name"}}},
		{"bad namespace", "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: x\n  namespace: Bad_NS\n", []wantErr{{0, 5, "lower-case"}}},
		{"duplicate entity", good + "---\n" + good, []wantErr{{1, 11, "appears twice: document 0"}}},
		{"same name in two namespaces is fine", good + "---\n" + strings.Replace(good, "  name: fine\n", "  name: fine\n  namespace: other\n", 1), nil},
		{"reference without kind", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\nspec:\n  dependsOn:\n    - db\n", []wantErr{{0, 7, "must name its kind"}}},
		{"self relation", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\n  annotations:\n    switchboard.io/calls: component:x\n", []wantErr{{0, 6, "itself"}}},
		{"credentials in a broker URL", "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: mq\n  annotations:\n    switchboard.io/url: amqp://user:secret@mq:5672/\nspec:\n  type: rabbitmq\n", []wantErr{{0, 6, "must not hold credentials"}}},
		{"topic without partitions", "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: t\n  annotations:\n    switchboard.io/broker: events\nspec:\n  type: topic\n", []wantErr{{0, 3, "is required for a topic"}}},
		{"deep nesting", good + "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: deep\n  x: " + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "\n", []wantErr{{1, 12, "nested deeper than"}}},
		{"bad YAML", good + "---\nkind: [unclosed\n", []wantErr{{1, 8, "not valid YAML"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == nil {
				res, err := backstage.Parse([]byte(c.data), backstage.Options{})
				if err != nil || len(res.Errors) != 0 {
					t.Fatalf("errors: %v %v", err, res.Errors)
				}
				return
			}
			res := assertErrors(t, c.data, backstage.Options{}, c.want)
			if strings.Contains(fmt.Sprint(res.Errors), "secret") {
				t.Error("an error shows a credential")
			}
		})
	}
}

// Every error of a file is reported, each at its document and line, and a
// broken document does not hide the ones after it.
func TestParse_ReportsEveryError(t *testing.T) {
	data := "" +
		"apiVersion: backstage.io/v1alpha1\n" + // doc 0, line 1
		"kind: Component\n" +
		"metadata:\n" +
		"  name: Bad_Name\n" + // 4: service name
		"  labels:\n" +
		"    env: prod\n" +
		"    env: dev\n" + // 7: duplicate key
		"---\n" +
		"kind: [broken\n" + // doc 1, line 9: YAML
		"---\n" +
		"apiVersion: backstage.io/v1alpha1\n" + // doc 2, line 11
		"kind: Group\n" +
		"metadata:\n" +
		"  name: ok-group\n" +
		"spec:\n" +
		"  parent: component:Not_Valid\n" + // 16: bad reference
		"---\n" +
		"apiVersion: backstage.io/v1alpha1\n" + // doc 3, line 18
		"kind: Group\n" +
		"metadata:\n" +
		"  name: ok-group\n" // 21: duplicate entity
	assertErrors(t, data, backstage.Options{}, []wantErr{
		{0, 7, "duplicate key"},
		{1, 9, "not valid YAML"},
		{3, 21, "appears twice: document 2"},
		{2, 16, "not a valid name for a service"},
	})
}

func TestParse_RefusesTooLargeStream(t *testing.T) {
	res, err := backstage.Parse([]byte(good+good), backstage.Options{MaxBytes: len(good)})
	if problem.Code(err) != problem.CodeTooLarge || len(res.Errors) != 1 {
		t.Fatalf("err = %v, errors = %v", err, res.Errors)
	}
}

func TestParse_RefusesTooManyDocuments(t *testing.T) {
	var b strings.Builder
	for i := range 4 {
		fmt.Fprintf(&b, "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: g%d\n", i)
	}
	assertErrors(t, b.String(), backstage.Options{MaxDocuments: 3}, []wantErr{{3, 16, "over the limit of 3"}})
}

func TestParse_CapsTheErrorList(t *testing.T) {
	var b strings.Builder
	for range 10 {
		b.WriteString("--- [a list]\n")
	}
	res, _ := backstage.Parse([]byte(b.String()), backstage.Options{MaxErrors: 3})
	if len(res.Errors) != 4 || !strings.Contains(res.Errors[3].Message, "7 more") {
		t.Fatalf("errors = %v", res.Errors)
	}
}

// Documents are counted as the stream holds them: comments, directives
// and empty documents are not documents; CRLF line ends and a byte-order
// mark are read.
func TestParse_DocumentIndexAndLines(t *testing.T) {
	data := "\xef\xbb\xbf# leading comment\r\n---\r\n---\r\n" + strings.ReplaceAll(good, "\n", "\r\n") +
		"...\r\n%YAML 1.1\r\n---\r\napiVersion: backstage.io/v1alpha1\r\nkind: Group\r\nmetadata:\r\n  name: bad name\r\n"
	assertErrors(t, data, backstage.Options{}, []wantErr{{1, 16, "not a valid name for a group"}})
}

// Aliases within reason are read as if written out; anchors do not cross
// documents.
func TestParse_ExpandsModestAliases(t *testing.T) {
	data := `apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: a
  labels: &labels
    env: prod
  annotations:
    <<: *labels
    team: a
spec:
  type: team
`
	res, _ := backstage.Parse([]byte(data), backstage.Options{})
	if len(res.Errors) != 0 || res.Entities[0].Labels["env"] != "prod" || res.Entities[0].Annotations["env"] != "prod" || res.Entities[0].Annotations["team"] != "a" {
		t.Fatalf("errors %v, entities %+v", res.Errors, res.Entities)
	}
	assertErrors(t, data+"---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: b\n  labels: *labels\n", backstage.Options{},
		[]wantErr{{1, 12, "unknown anchor"}})
}

func TestExport_RefusesUnknownRelationType(t *testing.T) {
	res, _ := backstage.Parse([]byte(good), backstage.Options{})
	_, err := backstage.Export(res.Entities, []catalog.Relation{{From: "service:fine", Type: "likes", To: "service:other"}})
	if problem.Code(err) != problem.CodeInvalid {
		t.Fatalf("err = %v", err)
	}
}
