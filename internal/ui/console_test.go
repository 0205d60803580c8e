package ui

import (
	"strings"
	"testing"

	"switchboard/internal/rbac"
	"switchboard/internal/tenancy"
	"switchboard/views"
)

func cellOf(t *testing.T, m []views.KindMatrix, kind, role, action string) views.MatrixCell {
	t.Helper()
	for _, k := range m {
		if k.Kind != kind {
			continue
		}
		for _, r := range k.Rows {
			if r.Role != role {
				continue
			}
			for _, c := range r.Cells {
				if c.Action == action {
					return c
				}
			}
		}
	}
	t.Fatalf("no cell for %s %s %s", role, action, kind)
	return views.MatrixCell{}
}

func TestPolicyMatrix_FollowsTheBuiltinRulesAndTheTenantsOwn(t *testing.T) {
	rules := append(rbac.Builtin(),
		rbac.Rule{Role: tenancy.Viewer, Resource: "election", Action: rbac.Read, Effect: "deny"},
		rbac.Rule{Role: tenancy.Operator, Resource: "dlq", Action: rbac.Replay, Condition: `label(r.obj, "env") == "prod"`, Effect: "deny"},
		rbac.Rule{Role: tenancy.Viewer, Resource: "kv", Action: rbac.Use, Condition: `hasTeam(r.sub, r.obj.Team)`, Effect: "allow"},
	)
	m := policyMatrix(rules, "")
	if len(m) != len(rbac.Kinds) {
		t.Fatalf("%d kinds, want %d", len(m), len(rbac.Kinds))
	}
	for _, tc := range []struct{ kind, role, action, want string }{
		{"lock", "admin", "delete", "yes"},   // force release: admins
		{"lock", "owner", "delete", "yes"},   // and owners
		{"lock", "editor", "delete", "no"},   // not editors
		{"lock", "operator", "use", "yes"},   // operators take locks
		{"token", "editor", "read", "no"},    // tokens are for admins
		{"tenant", "admin", "delete", "no"},  // the built-in deny
		{"policy", "owner", "create", "yes"}, // owners always manage the policy
		{"election", "viewer", "read", "no"}, // the tenant's deny
		{"dlq", "operator", "replay", "if"},  // an allow less a conditional deny
		{"kv", "viewer", "use", "if"},        // a conditional allow
		{"stream", "viewer", "read", "yes"},  // plain read
	} {
		c := cellOf(t, m, tc.kind, tc.role, tc.action)
		if c.Verdict != tc.want {
			t.Errorf("%s %s %s: %s (%s), want %s", tc.role, tc.action, tc.kind, c.Verdict, c.Why, tc.want)
		}
	}
	if c := cellOf(t, m, "dlq", "operator", "replay"); !strings.Contains(c.Why, "when") {
		t.Errorf("the conditional cell should say its condition: %q", c.Why)
	}
	if only := policyMatrix(rules, "kv"); len(only) != 1 || only[0].Kind != "kv" || len(only[0].Actions) != 5 {
		t.Errorf("kv only: %+v", only)
	}
}

func TestParseAppend_SaysWhatToFixPerField(t *testing.T) {
	_, _, _, errs := parseAppend(views.AppendForm{Expected: "exact", Version: "x", Data: "{total: 1}", Metadata: "nope"})
	for _, f := range []string{"stream", "type", "version", "data", "metadata"} {
		if errs[f] == "" {
			t.Errorf("no message for %s: %v", f, errs)
		}
	}
	exp, data, meta, errs := parseAppend(views.AppendForm{Stream: "order-1", Type: "OrderPlaced", Expected: "exact", Version: "3", Data: ` {"total": 42} `})
	if len(errs) != 0 || exp.String() != "3" || string(data) != `{"total": 42}` || meta != nil {
		t.Errorf("a good form: %v %s %s %v", exp, data, meta, errs)
	}
	if exp, _, _, _ := parseAppend(views.AppendForm{Stream: "s", Type: "T", Expected: "exact", Version: "-1", Data: "1"}); exp.String() != "no_stream" {
		t.Errorf("version -1 should expect no stream, got %s", exp)
	}
}

func TestParseLabels(t *testing.T) {
	l, bad := parseLabels(" env=prod, tier = 1 ")
	if bad != "" || l["env"] != "prod" || l["tier"] != "1" {
		t.Errorf("labels %v, bad %q", l, bad)
	}
	if _, bad := parseLabels("env=prod, oops"); bad != "oops" {
		t.Errorf("bad = %q", bad)
	}
	if l, bad := parseLabels(""); l != nil || bad != "" {
		t.Errorf("empty: %v %q", l, bad)
	}
}

func TestKVText_PrettyPrintsJSONAndKeepsText(t *testing.T) {
	if got := kvText([]byte(`{"a":1}`)); got != "{\n  \"a\": 1\n}" {
		t.Errorf("json: %q", got)
	}
	if got := kvText([]byte("plain")); got != "plain" {
		t.Errorf("text: %q", got)
	}
}
