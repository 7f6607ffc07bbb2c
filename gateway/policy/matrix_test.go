package policy

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDecisionMatrix decides a matrix of inputs in the fixture world of
// the Rego unit tests (every pair of parties at every kind of site, send
// and receive, several bundles, times on both sides of the midnights when
// agreements lapse and adequacy decisions take effect) and compares the
// decisions, reasons and obligations with testdata/matrix.golden. The
// golden file was written by the library before it was tuned for speed:
// a rewrite of the rules for speed must not change any decision or
// message. go test -update rewrites it.
func TestDecisionMatrix(t *testing.T) {
	eng, err := New(t.Context(), Config{FS: fixtureWorld(t), Timeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for n, in := range matrixInputs() {
		d, err := eng.Decide(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		dests := make([]string, len(in.Destinations))
		for i, p := range in.Destinations {
			dests[i] = p.ID
		}
		line, err := json.Marshal(map[string]any{"n": n, "action": in.Action, "time": in.Time, "from": strings.TrimPrefix(in.Source.ID, "spiffe://"), "to": dests,
			"bundle": in.Bundle, "allow": d.Allow, "reasons": d.Reasons, "obligations": d.Obligations})
		if err != nil {
			t.Fatal(err)
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	path := filepath.Join("testdata", "matrix.golden")
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, wantLines := strings.Split(out.String(), "\n"), strings.Split(string(want), "\n")
	if len(got) != len(wantLines) {
		t.Fatalf("%d decisions, golden file has %d", len(got), len(wantLines))
	}
	bad := 0
	for i := range got {
		if got[i] != wantLines[i] {
			if bad++; bad <= 5 {
				t.Errorf("decision differs from %s:\n got: %s\nwant: %s", path, got[i], wantLines[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d decisions differ", bad, len(got)-1)
	}
}

// matrixInputs are the inputs of TestDecisionMatrix, in the order of its
// golden file: every pair of parties at every kind of site, send and
// receive, several bundles, times on both sides of the midnights when
// agreements lapse and adequacy decisions take effect; then the matter
// rules: from every party to lpo.test, a bundle of an unknown matter, a
// mistyped label, personal data with no data-subject jurisdiction, no
// matter at all, and a delivery of an unknown matter.
func matrixInputs() []Input {
	ids := []string{"law.test/user", "lpo.test/team/mergers/x", "old.test/u", "care.test/u", "new.test/u", "uk.test/u", "ch.test/u",
		"cn.test/u", "cert.test/u", "ir.test/u", "small.test/u", "multi.test/x", "multi.test/ny/x", "multi.test/ny/night/x", "kr.test/u", "nowhere.test/u"}
	bundles := []*Bundle{
		{Matter: "M-42", Labels: []string{"privileged", "personal-data", "health"}, Regions: []string{"DE", "GB", "CH", "CN"}, Size: 5000, FileCount: 20},
		{Matter: "M-1", Labels: []string{"personal-data"}, Regions: []string{"FR"}, Size: 10, FileCount: 1},
		{Matter: "M-2", Labels: []string{"privileged", "special-category"}, Regions: []string{"GB", "CH"}, Size: 500, FileCount: 5},
		{Matter: "M-3", Labels: []string{"health"}, Regions: []string{"CN", "IE"}},
		nil,
	}
	times := []time.Time{
		time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 31, 23, 59, 59, 999e6, time.UTC), // old.test's NDA: its last moment
		time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),         // ... and lapsed
		time.Date(2026, 6, 30, 23, 59, 59, 0, time.UTC),     // multi.test's BCR: last second; KR adequacy not yet
		time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC),         // BCR lapsed; KR adequate; new.test's DPA signed
		time.Date(2026, 6, 6, 23, 30, 0, 0, time.UTC),       // a Saturday night in New York
	}
	actions := []string{"send", "receive", "send", "ack", "register_key", "admin", "explain"}
	var inputs []Input
	for i, src := range ids {
		for j, dst := range ids {
			k := i*len(ids) + j
			in := Input{Action: actions[k%len(actions)], Time: times[k%len(times)], Bundle: bundles[k%len(bundles)],
				Source: Party{ID: "spiffe://" + src}, Destinations: []Party{{ID: "spiffe://" + dst}}}
			if j%4 == 0 {
				in.Destinations = append(in.Destinations, Party{ID: "spiffe://" + ids[(j+3)%len(ids)]})
			}
			if k%13 == 0 {
				in.Destinations = nil
			}
			inputs = append(inputs, in)
		}
	}
	// The matter rules, after the rest (so that the lines above keep their
	// numbers): from every party to lpo.test, a bundle of an unknown matter,
	// a mistyped label, personal data with no data-subject jurisdiction, no
	// matter at all, and a delivery of an unknown matter.
	matterBundles := []*Bundle{
		{Matter: "M-999", Labels: []string{"privileged"}},
		{Matter: "M-1", Labels: []string{"helth"}},
		{Matter: "M-2", Labels: []string{"personal-data"}},
		{Labels: []string{"privileged"}},
	}
	for i, src := range ids {
		for j, b := range matterBundles {
			in := Input{Action: []string{"send", "receive"}[(i+j)%2], Time: times[0], Bundle: b,
				Source: Party{ID: "spiffe://" + src}, Destinations: []Party{{ID: "spiffe://lpo.test/team/x"}}}
			inputs = append(inputs, in)
		}
	}
	return inputs
}
