package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// TestVirtualCacheAgreesWithOPA runs the same random operations on the
// pooled virtualCache and on OPA's own (topdown.NewVirtualCache) and
// requires the same answers, also after the pooled one has been released
// and reused.
func TestVirtualCacheAgreesWithOPA(t *testing.T) {
	// Terms that share prefixes, differ in type, and are equal without
	// being the same pointer (objects, sets: hashed and compared by value).
	terms := []*ast.Term{
		ast.VarTerm("data"), ast.StringTerm("lexgate"), ast.StringTerm("in_force_kinds"), ast.StringTerm("a"),
		ast.StringTerm("b"), ast.IntNumberTerm(1), ast.BooleanTerm(true), ast.NullTerm(),
		ast.MustParseTerm(`{"trust_domain": "a.example", "organisation": {"agreements": [1, 2]}}`),
		ast.MustParseTerm(`{"organisation": {"agreements": [1, 2]}, "trust_domain": "a.example"}`),
		ast.MustParseTerm(`{"SCC", "BCR"}`), ast.MustParseTerm(`{"BCR", "SCC"}`), ast.MustParseTerm(`["x", 1]`),
	}
	ref := func(rng *rand.Rand) ast.Ref {
		r := ast.Ref{terms[rng.IntN(3)]}
		for range rng.IntN(4) {
			r = append(r, terms[rng.IntN(len(terms))])
		}
		return r
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var hits, undefined int
	for round := range 20 {
		ours, theirs := getVirtualCache(), topdown.NewVirtualCache()
		depth := 1
		for op := range 2000 {
			r := ref(rng)
			switch x := rng.IntN(20); {
			case x < 8:
				v := terms[rng.IntN(len(terms))]
				if x == 0 {
					v = nil // undefined
				}
				ours.Put(r, v)
				theirs.Put(r, v)
			case x == 8 && depth < 4:
				ours.Push()
				theirs.Push()
				depth++
			case x == 9 && depth > 1:
				ours.Pop()
				theirs.Pop()
				depth--
			case x == 10:
				if got, want := refStrings(ours.Keys()), refStrings(theirs.Keys()); !slices.Equal(got, want) {
					t.Fatalf("round %d op %d: Keys() = %v, OPA's %v", round, op, got, want)
				}
			default:
				gv, gu := ours.Get(r)
				wv, wu := theirs.Get(r)
				if gu != wu || (gv == nil) != (wv == nil) || gv != nil && !gv.Equal(wv) {
					t.Fatalf("round %d op %d: Get(%v) = %v, %v; OPA's %v, %v", round, op, r, gv, gu, wv, wu)
				}
				if gv != nil {
					hits++
				}
				if gu {
					undefined++
				}
			}
		}
		ours.release()
	}
	if hits < 1000 || undefined < 100 {
		t.Errorf("%d hits and %d undefined: the operations did not exercise the caches", hits, undefined)
	}
}

func refStrings(refs []ast.Ref) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = fmt.Sprint(r)
	}
	slices.Sort(out)
	return out
}

func TestVirtualCacheReleaseDropsValues(t *testing.T) {
	c := getVirtualCache()
	c.Put(ast.Ref{ast.VarTerm("data"), ast.StringTerm("x")}, ast.StringTerm("secret"))
	nodes := c.nodes[:cap(c.nodes)]
	c.release()
	for i, n := range nodes {
		if n.key != nil || n.value != nil {
			t.Fatalf("node %d still refers to %v = %v after release", i, n.key, n.value)
		}
	}
}
