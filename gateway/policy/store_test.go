package policy

import (
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// TestDataStoreReadsAsInMemory: a policy reading data.data.agreements from
// the engine's store (which keeps them as JSON text) gets what OPA's
// in-memory store holding every document as OPA values gives, whichever
// way it reads them: whole, one agreement, one field, missing ones, the
// root document, data.data whole, and through rules that OPA's rule index
// answers by looking into data.data.
func TestDataStoreReadsAsInMemory(t *testing.T) {
	var documents map[string]any
	if err := util.UnmarshalJSON([]byte(`{"data": {
		"agreements": [
			{"parties": ["a.test", "b.test"], "kind": "NDA", "signed": "2025-01-01", "expires": "2026-12-31", "n": 1.5},
			{"parties": ["b.test", "c.test"], "kind": "SCC", "signed": "2025-01-01", "notes": {"x": [1, 2]}}
		],
		"organisations": {"a.test": {"name": "A"}},
		"admins": ["spiffe://a.test/admin"]
	}, "other": {"k": "v"}}`), &documents); err != nil {
		t.Fatal(err)
	}
	ours, err := newDataStore(documents)
	if err != nil {
		t.Fatal(err)
	}
	theirs := inmem.NewFromObjectWithOpts(documents, inmem.OptReturnASTValuesOnRead(true))
	module := `package q
import rego.v1
admin if input.id in data.data.admins
kinds contains ag.kind if some ag in data.data.agreements
`
	for _, query := range []string{
		"data.data.agreements", "data.data.agreements[1]", "data.data.agreements[0].parties[1]",
		"data.data.agreements[1].notes.x[1]", "data.data.agreements[2]", "data.data.agreements[0].missing",
		"data.data.agreements[0].parties[7]", "data.data", "data.other", "data.data.organisations",
		`object.get(data.data, "admins", [])`, "count(data.data.agreements)", "data.q.kinds", "data.q.admin",
		"[k | data.data[k]]", "data.data[x]",
	} {
		eval := func(store storage.Store) string {
			rs, err := rego.New(rego.Query(query), rego.Module("q.rego", module), rego.Store(store),
				rego.Input(map[string]any{"id": "spiffe://a.test/admin"})).Eval(t.Context())
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			b, err := json.Marshal(rs)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if got, want := eval(ours), eval(theirs); got != want {
			t.Errorf("%s:\n got %s\nwant %s", query, got, want)
		}
	}
	txn := storage.NewTransactionOrDie(t.Context(), ours, storage.WriteParams)
	defer ours.Abort(t.Context(), txn)
	for _, path := range []storage.Path{{}, {"data"}, {"data", "agreements"}, {"data", "agreements", "0"}} {
		if err := ours.Write(t.Context(), txn, storage.ReplaceOp, path, ast.NewArray()); err == nil {
			t.Errorf("write %v: no error", path)
		}
	}
}
