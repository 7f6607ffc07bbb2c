package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/policies"
	"github.com/open-policy-agent/opa/v1/ast"
)

// jsonValue is in as an OPA value through its JSON text: the reference
// inputValue must match.
func jsonValue(tb testing.TB, in Input) ast.Value {
	tb.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := ast.ValueFromReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// fill sets every field reachable from v to a value that is not zero, n
// elements in each slice, so that a field inputValue forgets shows up.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 3, 31, 23, 59, 59, 120000000, time.FixedZone("x", 3600))))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for i := range n {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			k.SetString(fmt.Sprintf("k%d\x01é", i))
			fill(e, n)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		v.SetString("s\"é\x01")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1<<40 + 7)
	case reflect.Float64:
		v.SetFloat(-3.25)
	default:
		panic("fill: add a case for " + v.Kind().String())
	}
}

func TestInputValueIsItsJSON(t *testing.T) {
	set, errs := load(t.Context(), policies.FS, ".", false)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var full, empties Input
	fill(reflect.ValueOf(&full).Elem(), 2)
	fill(reflect.ValueOf(&empties).Elem(), 0)
	june := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	cases := map[string]Input{
		"zero":            {},
		"every field set": full,
		"empty slices":    empties,
		"enriched send": set.facts.enrich(Input{Action: "send", Time: june,
			Source:       Party{ID: "spiffe://harbor-law.example/paralegal/alice"},
			Destinations: []Party{{ID: "spiffe://manila-lpo.example/site/review-team"}, {ID: "spiffe://bogota-lpo.example/x"}, {ID: "spiffe://nowhere.example/x"}},
			Bundle:       &Bundle{Matter: "M-1", Labels: []string{"privileged"}, Size: 1 << 40}}),
		"enriched receive": set.facts.enrich(Input{Action: "receive", Time: june.Add(time.Nanosecond), RiskScore: 3,
			Source: Party{ID: "spiffe://manila-lpo.example/cebu/x"}, Destinations: []Party{{ID: "spiffe://harbor-law.example/y"}}}),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			got, want := inputValue(in), jsonValue(t, in)
			if got.Compare(want) != 0 {
				t.Errorf("inputValue =\n%v\nJSON form =\n%v", got, want)
			}
			if !strings.HasPrefix(name, "enriched") {
				return
			}
			if got := set.facts.valueOf(in); got.Compare(want) != 0 {
				t.Errorf("valueOf =\n%v\nJSON form =\n%v", got, want)
			}
		})
	}
}

// TestValueOfIsItsJSON: the engine builds the input of a decision from
// parts made when the data was loaded (facts.valueOf); for every pair of
// parties of the fixture world, at every kind of site and with the
// agreements between them, that is the value of the input's JSON form.
func TestValueOfIsItsJSON(t *testing.T) {
	set, errs := load(t.Context(), fixtureWorld(t), ".", false)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ids := []string{"law.test/user", "lpo.test/team/mergers/x", "old.test/u", "care.test/u", "uk.test/u", "multi.test/x",
		"multi.test/ny/x", "multi.test/ny/night/x", "nowhere.test/u", "multi.test", "law.test"}
	for _, src := range ids {
		for _, dst := range ids {
			in := set.facts.enrich(Input{Action: "send", Time: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC),
				Source:       Party{ID: "spiffe://" + src},
				Destinations: []Party{{ID: "spiffe://" + dst}, {ID: "spiffe://multi.test/ny/night/y"}},
				Bundle:       &Bundle{Matter: "M-1", Labels: []string{"health"}, Regions: []string{"DE"}}})
			if got, want := set.facts.valueOf(in), jsonValue(t, in); got.Compare(want) != 0 {
				t.Errorf("%s -> %s: valueOf =\n%v\nJSON form =\n%v", src, dst, got, want)
			}
		}
	}
}
