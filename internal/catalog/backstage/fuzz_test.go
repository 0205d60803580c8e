package backstage_test

import (
	"os"
	"testing"

	"switchboard/internal/catalog/backstage"
)

// FuzzParse checks Parse never panics on any input, and that what it
// reads without errors exports to a stream it reads again without errors
// and to the same relations.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"org.yaml", "systems.yaml"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(good))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"))
	f.Add([]byte("--- [1]\n--- {a: 1, a: 2}\n...\n%YAML 1.2\n---\nkind: x\n"))
	f.Add([]byte("apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: q\n  annotations:\n    switchboard.io/kind: queue\n    switchboard.io/broker: b\n    <<: {x: y}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := backstage.Parse(data, backstage.Options{MaxBytes: 64 << 10, MaxDocuments: 200})
		if err != nil || len(res.Errors) > 0 {
			return
		}
		out, err := backstage.Export(res.Entities, res.Relations)
		if err != nil {
			t.Fatalf("Export of a parsed stream: %v", err)
		}
		again, err := backstage.Parse(out, backstage.Options{})
		if err != nil || len(again.Errors) > 0 {
			t.Fatalf("Parse of the export failed: %v %v\ninput:\n%q\nexport:\n%s", err, again.Errors, data, out)
		}
		assertSame(t, res, again, true)
		if t.Failed() {
			t.Logf("input:\n%q\nexport:\n%s", data, out)
		}
	})
}
