package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/lexgate/lexgate/policies"
)

// reviewedNativeBuiltins are the builtins the shipped library calls that
// its WebAssembly module evaluates itself (not through the host, where an
// error ends the evaluation). Such a builtin's error is undefined in
// WebAssembly and an evaluation error in topdown (strict builtin errors):
// in a deny rule, undefined would fail open. Each was reviewed: it cannot
// fail on the library's inputs. to_number and time.parse_ns read only data
// the engine validates at load (business hours HH:MM, dates, datacheck.go);
// the others fail only on operands of the wrong type, which the input
// (built from Go types) and the validated data never have, or, for div,
// on a zero divisor (obligations.rego divides by 86400).
var reviewedNativeBuiltins = []string{
	"and", "array.concat", "ceil", "concat", "contains", "count", "div", "endswith", "eq", "gt", "gte",
	"internal.member_2", "is_number", "is_object", "lower", "lt", "lte", "max", "min", "minus", "mul",
	"neq", "numbers.range", "object.get", "object.keys", "object.union", "or", "plus", "sort", "split",
	"startswith", "substring", "time.parse_ns", "to_number", "trim_prefix", "type_name",
}

// TestShippedNativeBuiltinsReviewed fails when the shipped library comes
// to call a builtin that its WebAssembly module evaluates itself and that
// was not reviewed (reviewedNativeBuiltins): "auto" evaluates the library
// with WebAssembly, where that builtin's errors would be undefined.
func TestShippedNativeBuiltinsReviewed(t *testing.T) {
	set, errs := load(t.Context(), policies.FS, ".", false)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	used := map[string]bool{}
	for _, m := range set.compiler.Modules {
		ast.WalkTerms(m, func(x *ast.Term) bool {
			switch v := x.Value.(type) {
			case ast.Call:
				used[v[0].String()] = true
			case ast.Ref:
				used[v.String()] = true // an expression's operator
			}
			return false
		})
	}
	w, err := compileWasm(t.Context(), set.rego, set.documents, false)
	if err != nil {
		t.Fatal(err)
	}
	var host []string
	for name := range used {
		if ast.BuiltinMap[name] == nil {
			continue
		}
		if _, ok := w.builtinIDs[name]; ok {
			host = append(host, name)
			continue
		}
		if !slices.Contains(reviewedNativeBuiltins, name) {
			t.Errorf("the library calls %s, which WebAssembly evaluates natively (an error is undefined there, an evaluation error in topdown): review whether it can fail on the library's inputs, then add it to reviewedNativeBuiltins", name)
		}
	}
	slices.Sort(host)
	t.Logf("builtins through the host (errors end the evaluation): %s", strings.Join(host, " "))
}
