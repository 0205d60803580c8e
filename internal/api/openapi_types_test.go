package api

import (
	"encoding"
	"encoding/json"
	"reflect"
	"testing"
)

// TestOpenAPI_CustomJSONTypesHaveSchemas: a type with its own JSON form
// (MarshalJSON, UnmarshalJSON, MarshalText) is invisible to the reflection
// that writes the document's schemas, so each one that a request or an
// answer holds must have an entry in typeSchemas.
func TestOpenAPI_CustomJSONTypesHaveSchemas(t *testing.T) {
	custom := func(typ reflect.Type) bool {
		p := reflect.PointerTo(typ)
		for _, i := range []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[json.Unmarshaler](),
			reflect.TypeFor[encoding.TextMarshaler](), reflect.TypeFor[encoding.TextUnmarshaler]()} {
			if typ.Implements(i) || p.Implements(i) {
				return true
			}
		}
		return false
	}
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, where string)
	walk = func(typ reflect.Type, where string) {
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem() // the document's schema is the element's
		}
		if seen[typ] {
			return
		}
		seen[typ] = true
		if _, ok := typeSchemas[typ]; ok {
			return
		}
		if custom(typ) {
			t.Errorf("%s (in %s) has its own JSON form: add it to typeSchemas in openapi.go", typ, where)
			return
		}
		switch typ.Kind() {
		case reflect.Slice, reflect.Array, reflect.Map:
			walk(typ.Elem(), where)
		case reflect.Struct:
			for i := 0; i < typ.NumField(); i++ {
				if f := typ.Field(i); f.IsExported() || f.Anonymous {
					walk(f.Type, typ.String()+"."+f.Name)
				}
			}
		}
	}
	n := 0
	for _, r := range New(Deps{}).routes() {
		for _, v := range []any{r.Request, r.Response} {
			if v != nil {
				walk(reflect.TypeOf(v), r.Method+" "+r.Path)
				n++
			}
		}
	}
	if n < 20 || !seen[reflect.TypeFor[json.RawMessage]()] {
		t.Fatalf("walked %d request and answer types", n)
	}
}

// TestOpenAPI_OpDocsNameRoutes: each entry of opDocs refines a route of
// the table; one left behind by a changed path would silently stop
// applying.
func TestOpenAPI_OpDocsNameRoutes(t *testing.T) {
	routes := map[string]bool{}
	for _, r := range New(Deps{}).routes() {
		routes[r.Method+" "+r.Path] = true
	}
	for k := range opDocs {
		if !routes[k] {
			t.Errorf("opDocs[%q] names no route of the table", k)
		}
	}
}
