package policy

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

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
		"matters": {"M-1": {"client": "C", "categories": ["x", "y"], "n": 2.5}, "M 2": {"client": "D", "hold": {"held": true}}},
		"admins": ["spiffe://a.test/admin"]
	}, "other": {"k": "v"}}`), &documents); err != nil {
		t.Fatal(err)
	}
	ours, err := newDataStore(documents, &terms{m: map[string]*ast.Term{"client": ast.StringTerm("client"), "C": ast.StringTerm("C")}})
	if err != nil {
		t.Fatal(err)
	}
	theirs := inmem.NewFromObjectWithOpts(documents, inmem.OptReturnASTValuesOnRead(true))
	module := `package q
import rego.v1
admin if input.id in data.data.admins
kinds contains ag.kind if some ag in data.data.agreements
clients contains m.client if some m in data.data.matters
`
	for _, query := range []string{
		"data.data.agreements", "data.data.agreements[1]", "data.data.agreements[0].parties[1]",
		"data.data.agreements[1].notes.x[1]", "data.data.agreements[2]", "data.data.agreements[0].missing",
		"data.data.agreements[0].parties[7]", "data.data", "data.other", "data.data.organisations",
		`object.get(data.data, "admins", [])`, "count(data.data.agreements)", "data.q.kinds", "data.q.admin",
		"[k | data.data[k]]", "data.data[x]",
		"data.data.matters", `data.data.matters["M-1"]`, `data.data.matters["M-1"].categories[1]`, `data.data.matters["M 2"].hold.held`,
		`data.data.matters["M-3"]`, `data.data.matters["M-1"].nothing`, `[m | data.data.matters[m]]`, "data.q.clients",
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
	for _, path := range []storage.Path{{}, {"data"}, {"data", "agreements"}, {"data", "agreements", "0"}, {"data", "matters"}, {"data", "matters", "M-1"}} {
		if err := ours.Write(t.Context(), txn, storage.ReplaceOp, path, ast.NewArray()); err == nil {
			t.Errorf("write %v: no error", path)
		}
	}
}

// TestDecisionsLeaveAgreementsAside: the library decides from the enriched
// input without reading data.data.agreements, or data.data whole, from the
// engine's store (each such read decodes JSON or builds an object during
// the decision), for every action over the parties of the fixture world,
// unknown organisations included. The store is topdown's (the WebAssembly
// evaluator has the data in its module's memory).
func TestDecisionsLeaveAgreementsAside(t *testing.T) {
	eng, err := New(t.Context(), Config{FS: fixtureWorld(t), Timeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler), Evaluator: EvaluatorTopdown})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"law.test/user", "lpo.test/team/mergers/x", "old.test/u", "care.test/u", "uk.test/u", "cn.test/u",
		"multi.test/ny/night/x", "ir.test/u", "nowhere.test/u"}
	bundle := &Bundle{Matter: "M-42", Labels: []string{"privileged", "personal-data", "health"}, Regions: []string{"DE", "GB", "CH", "CN"}}
	n := 0
	for _, action := range []string{"send", "receive", "ack", "list_inbox", "admin", "explain"} {
		for _, src := range ids {
			for _, dst := range ids {
				in := Input{Action: action, Time: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), Bundle: bundle,
					Source: Party{ID: "spiffe://" + src}, Destinations: []Party{{ID: "spiffe://" + dst}, {ID: "spiffe://lpo.test/u"}}}
				if _, err := eng.Decide(t.Context(), in); err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
	}
	store := eng.current.Load().store
	if reads := store.lazyReads.Load(); reads != 0 {
		t.Errorf("%d decisions read the agreements, the matters whole (or data.data whole) %d times", n, reads)
	}
	// One matter a decision at most (its registry entry), read once.
	if reads := store.matterReads.Load(); reads == 0 || reads > int64(n) {
		t.Errorf("%d decisions read a matter %d times", n, reads)
	}
}
