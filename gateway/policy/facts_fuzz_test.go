package policy

import (
	"encoding/json"
	"io/fs"
	"testing"

	"github.com/lexgate/lexgate/policies"
)

// FuzzFacts feeds arbitrary contracts data (the merged data.data document)
// to the data checks and the enrichment: they must not panic, and data they
// accept must enrich any party into an input whose OPA value is its JSON form.
func FuzzFacts(f *testing.F) {
	merged := map[string]any{}
	for _, name := range []string{"organisations", "agreements", "jurisdictions", "walls", "access", "matters", "labels", "settings"} {
		b, _ := fs.ReadFile(policies.FS, "data/"+name+".json")
		var m map[string]any
		json.Unmarshal(b, &m)
		for k, v := range m {
			merged[k] = v
		}
	}
	seed, _ := json.Marshal(merged)
	f.Add(seed, "spiffe://manila-lpo.example/site/x", "spiffe://harbor-law.example/y")
	f.Add([]byte(`{"organisations": {"a": {"name": "A", "jurisdiction": "DE", "sites": [{"name": "S", "paths": ["/", "/a"]}, {"name": "T", "paths": ["/a"]}]}}}`), "spiffe://a/a/b", "spiffe://a")
	f.Add([]byte(`{"organisations": {"a": {"name": "A", "jurisdiction": "DE", "sites": [{"name": "S", "business_hours": {"time_zone": "Mars/Olympus", "days": [], "from": "9", "to": "8"}}]}}, "agreements": [{"parties": ["a"], "signed": "x"}]}`), "", "spiffe://")
	f.Add([]byte(`{"jurisdictions": {"gdpr_adequacy": {"US": {"from": "2023-07-10", "scope": "certified"}, "JP": "2019-01-23", "X": 3}}, "matters": {"M": {"owner": "a", "retention_seconds": 0, "derogations": [{"article": "49(1)(e)"}]}}}`), "spiffe://a/x", "spiffe://b")
	f.Fuzz(func(t *testing.T, data []byte, src, dst string) {
		var doc any
		if json.Unmarshal(data, &doc) != nil {
			return
		}
		facts, errs := parseFacts(map[string]any{"data": doc})
		if len(errs) > 0 {
			if facts != nil {
				t.Fatal("facts returned with errors")
			}
			return
		}
		in := facts.enrich(Input{Action: "send", Source: Party{ID: src}, Destinations: []Party{{ID: dst}}, Bundle: &Bundle{}})
		if got, want := inputValue(in), jsonValue(t, in); got.Compare(want) != 0 {
			t.Fatalf("inputValue =\n%v\nJSON form =\n%v", got, want)
		}
	})
}
