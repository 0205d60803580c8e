package rbac

import "testing"

func TestExplain_SaysConditionsInWords(t *testing.T) {
	for cond, want := range map[string]string{
		"":                           "always",
		"hasTeam(r.sub, r.obj.Team)": "the caller is in the object's owning team",
		"!hasTeam(r.sub, r.obj.Team) || label(r.obj, \"env\") == \"prod\"": `the caller is not in the object's owning team or the object's label "env" is "prod"`,
		`r.obj.Team == "payments" && r.sub.Role != "viewer"`:               `the object's owning team is "payments" and the caller's role is not "viewer"`,
		`!(label(r.obj, "env") == "prod")`:                                 `not (the object's label "env" is "prod")`,
		`label(r.obj, "tier") in ("web", "api")`:                           `the object's label "tier" is one of ("web", "api")`,
		`hasTeam(r.sub, "payments")`:                                       `the caller is in "payments"`,
		`r.obj.Name =~ "^orders-"`:                                         `the object's name matches the pattern "^orders-"`,
		`this is ((( not valid`:                                            "(not a valid condition) this is ((( not valid",
	} {
		if got := Explain(cond); got != want {
			t.Errorf("Explain(%q)\n got %q\nwant %q", cond, got, want)
		}
	}
}
