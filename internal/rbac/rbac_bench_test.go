package rbac

import "testing"

func BenchmarkEnforceBuiltin(b *testing.B) {
	e, err := build(Builtin())
	if err != nil {
		b.Fatal(err)
	}
	sub := subject{Role: "viewer", Teams: []string{"a"}}
	obj := object{Kind: "team", Labels: map[string]string{}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ok, err := e.Enforce(sub, obj, "read")
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
