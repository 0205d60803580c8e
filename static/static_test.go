package static_test

import (
	"bytes"
	"io/fs"
	"testing"

	"switchboard/static"
)

func TestFS_HoldsServedFiles(t *testing.T) {
	for _, name := range []string{"app.css", "app.js", "live.js", "fragments.js", "streams.js", "tables.js", "topology.js", "catalog.js",
		"vendor/htmx.min.js", "vendor/cytoscape.min.js", "vendor/cytoscape-dagre.min.js", "vendor/README.md"} {
		b, err := fs.ReadFile(static.FS, name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}

func TestFS_HtmxIsPinnedVersion(t *testing.T) {
	b, err := fs.ReadFile(static.FS, "vendor/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`version:"2.0.11"`)) {
		t.Error("vendor/htmx.min.js is not htmx 2.0.11; update vendor/README.md with the file")
	}
}
