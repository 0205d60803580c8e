package static_test

import (
	"os/exec"
	"testing"
)

// TestScripts runs the tests of the scripts (static/test/*.test.js) with
// Node.js's own test runner: the parts of the scripts that need no page
// (sorting, filtering, reading events) are tested there; the pages
// themselves are driven in a browser by e2e/.
func TestScripts(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the script tests need Node.js on PATH (apt-get install -y nodejs): %v", err)
	}
	out, err := exec.Command(node, "--test", "test/").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test test/: %v\n%s", err, out)
	}
}
