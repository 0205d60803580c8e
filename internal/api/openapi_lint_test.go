package api_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// The OpenAPI linter: Redocly CLI, pinned. It is installed once per machine
// (make tools, .ci/run); the test never downloads it.
const (
	redoclyVersion = "2.77.0"
	redoclyInstall = "npm install -g --no-audit --no-fund @redocly/cli@" + redoclyVersion
)

// redoclyConfig is the recommended ruleset, with the rules it only warns
// about that this project holds as errors.
const redoclyConfig = `extends:
  - recommended
rules:
  operation-operationId: error
  operation-tag-defined: error
  tag-description: error
  operation-2xx-response: error
  no-server-example.com: error
  no-ambiguous-paths: error
  no-invalid-media-type-examples: error
  no-invalid-parameter-examples: error
  no-invalid-schema-examples: error
  operation-parameters-unique: error
`

// openAPIDocument is the document the server serves, parsed and built.
type openAPIDocument struct {
	raw   []byte
	doc   libopenapi.Document
	model *v3.Document
}

// servedOpenAPI fetches the server's OpenAPI document and builds its model;
// a document the model cannot be built from fails the test.
func servedOpenAPI(t testing.TB, s *testServer) openAPIDocument {
	t.Helper()
	return parseOpenAPI(t, s.must(200, "GET", "/api/v1/openapi.json", "", nil).Body)
}

// parseOpenAPI parses raw and builds its model.
func parseOpenAPI(t testing.TB, raw []byte) openAPIDocument {
	t.Helper()
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatalf("parse the OpenAPI document: %v", err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the OpenAPI model: %v", err)
	}
	return openAPIDocument{raw: raw, doc: doc, model: &m.Model}
}

// newOpenAPIValidator checks requests and answers against d: formats
// (uuid, date-time, email, ...) asserted, undocumented statuses refused.
func newOpenAPIValidator(t testing.TB, d openAPIDocument) validator.Validator {
	t.Helper()
	v, errs := validator.NewValidator(d.doc, config.WithFormatAssertions(), config.WithContentAssertions())
	if len(errs) > 0 {
		t.Fatalf("OpenAPI validator: %v", errs)
	}
	return v
}

// TestOpenAPI_Lints holds the served document to the OpenAPI 3.1 schema and
// to the linter's recommended rules: no error may remain.
func TestOpenAPI_Lints(t *testing.T) {
	s := newTestServer(t)
	d := servedOpenAPI(t, s)

	// The document against the OpenAPI 3.1 JSON Schema.
	v := newOpenAPIValidator(t, d)
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("OpenAPI 3.1 schema: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  at %s: %s", se.FieldPath, se.Reason)
			}
		}
	}

	// The linter.
	for _, p := range redoclyLint(t, d.raw) {
		if p.Severity == "error" {
			t.Errorf("lint %s: %s (%s)", p.RuleID, p.Message, p.where())
		} else {
			t.Logf("lint %s %s: %s (%s)", p.Severity, p.RuleID, p.Message, p.where())
		}
	}
}

// lintProblem is one problem of the linter's JSON report.
type lintProblem struct {
	RuleID   string `json:"ruleId"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Location []struct {
		Pointer string `json:"pointer"`
	} `json:"location"`
}

func (p lintProblem) where() string {
	var ps []string
	for _, l := range p.Location {
		ps = append(ps, l.Pointer)
	}
	return strings.Join(ps, ", ")
}

// redoclyLint lints doc with the pinned linter and returns its problems.
func redoclyLint(t testing.TB, doc []byte) []lintProblem {
	t.Helper()
	bin, err := exec.LookPath("redocly")
	if err != nil {
		t.Fatalf("the OpenAPI linter is not installed; install it once with: %s", redoclyInstall)
	}
	env := append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	version := exec.CommandContext(ctx, bin, "--version")
	version.Env = env
	out, err := version.Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != redoclyVersion {
		t.Fatalf("redocly --version: %q (%v), want %s; install it with: %s", got, err, redoclyVersion, redoclyInstall)
	}

	dir := t.TempDir()
	docPath, cfgPath := filepath.Join(dir, "openapi.json"), filepath.Join(dir, "redocly.yaml")
	if err := os.WriteFile(docPath, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(redoclyConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	lint := exec.CommandContext(ctx, bin, "lint", "--config", cfgPath, "--format", "json", "--max-problems", "100000", docPath)
	lint.Env, lint.Dir = env, dir
	var stderr strings.Builder
	lint.Stderr = &stderr
	out, err = lint.Output() // exits 1 when it found errors: the report says which
	var report struct {
		Totals struct {
			Errors   int `json:"errors"`
			Warnings int `json:"warnings"`
		} `json:"totals"`
		Problems []lintProblem `json:"problems"`
	}
	if jerr := json.Unmarshal(out, &report); jerr != nil {
		t.Fatalf("redocly lint: %v; no JSON report (%v):\n%s\n%s", err, jerr, out, stderr.String())
	}
	errors := 0
	for _, p := range report.Problems {
		if p.Severity == "error" {
			errors++
		}
	}
	if errors != report.Totals.Errors || (err != nil && errors == 0) {
		t.Fatalf("redocly lint: %v; %d errors reported, %d listed:\n%s", err, report.Totals.Errors, errors, stderr.String())
	}
	t.Logf("redocly lint: %d errors, %d warnings", report.Totals.Errors, report.Totals.Warnings)
	return report.Problems
}
