package policy

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"reflect"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lexgate/lexgate/policies"
	"github.com/open-policy-agent/opa/v1/rego"
)

// fixtureWorld is the policy library with the contracts of its Rego unit
// tests (policies/fixtures_test.rego) as its data files.
func fixtureWorld(t *testing.T) fs.FS {
	t.Helper()
	set, errs := load(t.Context(), policies.FS, ".", true)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	world := map[string]any{}
	for key, rule := range map[string]string{"organisations": "orgs", "agreements": "agreements",
		"jurisdictions": "jurisdictions", "ethical_walls": "walls", "admins": "admins",
		"matters": "matters", "labels": "vocabulary", "roles": "roles"} {
		rs, err := rego.New(rego.Query("data.lexgate_test."+rule), rego.Compiler(set.compiler)).Eval(t.Context())
		if err != nil || len(rs) != 1 {
			t.Fatalf("fixture %s: %v %v", rule, rs, err)
		}
		world[key] = rs[0].Expressions[0].Value
	}
	b, err := json.Marshal(world)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"data/world.json": {Data: b}}
	rules, _ := fs.Glob(policies.FS, "*.rego")
	for _, name := range rules {
		if b, _ := fs.ReadFile(policies.FS, name); len(name) < 10 || name[len(name)-10:] != "_test.rego" {
			fsys[name] = &fstest.MapFile{Data: b}
		}
	}
	return fsys
}

// TestEnrichedPartiesDecideAlike: the library reads a party's site,
// jurisdiction and certifications from the input when the engine enriched
// it, and works them out from data.data otherwise (opa test, opa eval).
// Both ways must give the same decision, reasons and obligations, for
// parties at every kind of site of the fixture world.
func TestEnrichedPartiesDecideAlike(t *testing.T) {
	eng, err := New(t.Context(), Config{FS: fixtureWorld(t), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	p := eng.current.Load()
	ids := []string{"law.test/user", "lpo.test/team/mergers/x", "old.test/u", "care.test/u", "uk.test/u", "ch.test/u",
		"cn.test/u", "cert.test/u", "ir.test/u", "small.test/u", "multi.test/x", "multi.test/ny/x", "multi.test/ny/night/x", "nowhere.test/u"}
	bundles := []*Bundle{
		{Matter: "M-42", Labels: []string{"privileged", "personal-data", "health"}, Regions: []string{"DE", "GB", "CH", "CN"}, Size: 5000, FileCount: 20},
		{Matter: "M-1", Labels: []string{"personal-data"}, Regions: []string{"FR"}, Size: 10, FileCount: 1},
	}
	times := []time.Time{time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 6, 6, 23, 30, 0, 0, time.UTC)}
	n := 0
	for i, src := range ids {
		for j, dst := range ids {
			k := i*len(ids) + j
			in := Input{Action: []string{"send", "receive"}[k%2], Time: times[k/2%2], Bundle: bundles[k/4%2],
				Source: Party{ID: "spiffe://" + src}, Destinations: []Party{{ID: "spiffe://" + dst}}}
			if j%5 == 0 {
				in.Destinations = append(in.Destinations, Party{ID: "spiffe://" + ids[(j+3)%len(ids)]}, Party{ID: "spiffe://multi.test/ny/night/y"})
			}
			if k%17 == 0 {
				in = Input{Action: "list_inbox", Time: times[0], Source: in.Source}
			}
			enriched := p.set.facts.enrich(in)
			bare := enriched
			bare.Source = names(bare.Source)
			bare.Destinations = nil
			for _, d := range enriched.Destinations {
				bare.Destinations = append(bare.Destinations, names(d))
			}
			got, want := decide(t, p, enriched), decide(t, p, bare)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s -> %v:\nenriched: %+v\nfrom data: %+v", in.Action, src, in.Destinations, got, want)
			}
			n++
		}
	}
	t.Logf("%d inputs", n)
}

// names is p with only the fields a caller sets: id, trust domain, path.
func names(p Party) Party { return Party{ID: p.ID, TrustDomain: p.TrustDomain, Path: p.Path} }

// decide evaluates the prepared query on in as given (not enriched).
func decide(t *testing.T, p *prepared, in Input) string {
	t.Helper()
	rs, err := p.query.Eval(t.Context(), rego.EvalParsedInput(inputValue(in)))
	if err != nil || len(rs) != 1 {
		t.Fatalf("%v %v", rs, err)
	}
	res, err := parseResult(rs[0].Expressions[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%+v", res)
}

// TestEnrichedAgreementsOfThePair: a destination's organisation carries
// the agreements between its organisation and the source's, and no
// others: within one organisation, only those whose two parties are that
// organisation (it listed every agreement of the organisation).
func TestEnrichedAgreementsOfThePair(t *testing.T) {
	set, errs := load(t.Context(), fixtureWorld(t), ".", false)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, tc := range []struct {
		from, to string
		want     []string
	}{
		{"multi.test", "multi.test", []string{"multi.test multi.test BCR"}},
		{"law.test", "law.test", nil},
		{"law.test", "lpo.test", []string{"law.test lpo.test NDA", "law.test lpo.test SCC"}},
		{"lpo.test", "law.test", []string{"law.test lpo.test NDA", "law.test lpo.test SCC"}},
		{"law.test", "none.test", nil},
	} {
		in := set.facts.enrich(Input{Action: "send", Source: Party{ID: "spiffe://" + tc.from + "/x"}, Destinations: []Party{{ID: "spiffe://" + tc.to + "/y"}}})
		var got []string
		for _, a := range in.Destinations[0].Organisation.Agreements {
			got = append(got, a.Parties[0]+" "+a.Parties[1]+" "+a.Kind)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s -> %s: agreements %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
}
