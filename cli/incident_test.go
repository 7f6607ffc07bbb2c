package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
)

var updateIncident = flag.Bool("update-incident", false, "rewrite the golden files in testdata/incident")

const (
	hAlice  = "spiffe://harbor-law.example/paralegal/alice"
	hBob    = "spiffe://harbor-law.example/paralegal/bob"
	mTeam   = "spiffe://manila-lpo.example/site/review-team"
	bReview = "spiffe://bogota-lpo.example/site/review"
)

// incidentHistory is a synthetic, verified-looking history: sends to two
// countries under two matters, downloads, acks, refusals, key registrations,
// and activity before the window.
func incidentHistory() []incidentEntry {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 3, h, m, 0, 0, time.UTC) }
	allow := &audit.Decision{ID: "D", Allow: true}
	deny := func(code string) *audit.Decision {
		return &audit.Decision{ID: "X", Allow: false, Reasons: []string{code}}
	}
	evs := []audit.Event{
		{Kind: audit.KindKeyRegistration, Time: at(7, 0), Actor: mTeam, Keys: []string{"age1oldteamkey"}},
		{Kind: audit.KindKeyRegistration, Time: at(8, 0), Actor: mTeam, Keys: []string{"age1teamkey"}},
		{Kind: audit.KindKeyRegistration, Time: at(8, 5), Actor: bReview, Keys: []string{"age1bogotakey"}},
		// t0: before the window
		{Kind: audit.KindTransferCreated, Time: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), Actor: hAlice, Recipients: []string{mTeam}, Transfer: "t0", Matter: "HL-1", Labels: []string{"personal-data"}, Decision: allow},
		{Kind: audit.KindTransferCreated, Time: at(9, 0), Actor: hAlice, Recipients: []string{mTeam}, Transfer: "t1", Matter: "HL-1", Labels: []string{"personal-data"}, Decision: allow},
		{Kind: audit.KindUploadComplete, Time: at(9, 1), Actor: hAlice, Recipients: []string{mTeam}, Transfer: "t1", Matter: "HL-1", CiphertextSize: 1000, Decision: allow},
		{Kind: audit.KindDelivery, Time: at(10, 0), Actor: mTeam, Sender: hAlice, Recipients: []string{mTeam}, Transfer: "t1", Matter: "HL-1", Decision: allow},
		{Kind: audit.KindDelivery, Time: at(10, 30), Actor: mTeam, Sender: hAlice, Recipients: []string{mTeam}, Transfer: "t1", Matter: "HL-1", Decision: allow},
		{Kind: audit.KindAck, Time: at(10, 31), Actor: mTeam, Sender: hAlice, Recipients: []string{mTeam}, Transfer: "t1", Matter: "HL-1", Decision: allow},
		{Kind: audit.KindTransferCreated, Time: at(11, 0), Actor: hBob, Recipients: []string{mTeam, bReview}, Transfer: "t2", Matter: "HL-2", Labels: []string{"health"}, Decision: allow},
		{Kind: audit.KindUploadComplete, Time: at(11, 2), Actor: hBob, Recipients: []string{mTeam, bReview}, Transfer: "t2", Matter: "HL-2", CiphertextSize: 5000, Decision: allow},
		{Kind: audit.KindDelivery, Time: at(12, 0), Actor: bReview, Sender: hBob, Recipients: []string{mTeam, bReview}, Transfer: "t2", Matter: "HL-2", Decision: allow},
		{Kind: audit.KindDecision, Time: at(12, 5), Actor: mTeam, Action: "receive", Matter: "HL-2", Recipients: []string{hBob}, Decision: deny("limits.max_downloads")},
		{Kind: audit.KindDecision, Time: at(13, 0), Actor: mTeam, Action: "send", Matter: "HL-1", Recipients: []string{bReview}, Decision: deny("agreement.missing")},
		// after the window
		{Kind: audit.KindDelivery, Time: at(23, 0), Actor: mTeam, Sender: hBob, Recipients: []string{mTeam, bReview}, Transfer: "t2", Matter: "HL-2", Decision: allow},
	}
	out := make([]incidentEntry, len(evs))
	for i, ev := range evs {
		out[i] = incidentEntry{Index: uint64(i), Event: ev}
		if ev.Kind == audit.KindUploadComplete {
			out[i].Receipt = &audit.Receipt{Version: 1, Index: uint64(i), Entry: `{"commitment":"…"}`, LeafHash: "LEAF"}
		}
	}
	return out
}

var incidentFactsForTest = incidentFacts{
	Orgs: map[string]orgFacts{
		"harbor-law.example": {Name: "Harbor Law", Jurisdiction: "DE"},
		"manila-lpo.example": {Name: "Manila LPO", Jurisdiction: "PH"},
		"bogota-lpo.example": {Name: "Bogota LPO", Jurisdiction: "CO"},
	},
	Matters: map[string]matterFacts{
		"HL-1": {Client: "Acme GmbH", Categories: []string{"personal-data"}},
		"HL-2": {Client: "Beta Clinic", Categories: []string{"health", "personal-data"}},
	},
}

// TestIncidentReportGolden: over a window with sends, receives, refusals and
// downloads across two matters and two countries, the groups, counts and
// deadlines are exactly those of the golden files (JSON and Markdown).
func TestIncidentReportGolden(t *testing.T) {
	rules, err := loadDeadlineRules(deadlineRulesJSON)
	if err != nil {
		t.Fatal(err)
	}
	window := incidentScope{Since: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC),
		Discovered: time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC), Viewer: "harbor-law.example"}
	for _, c := range []struct {
		name  string
		scope func(s *incidentScope)
	}{
		{"identity-team", func(s *incidentScope) { s.Identity = mTeam }},
		{"matter-hl1", func(s *incidentScope) { s.Matter = "HL-1" }},
		{"org-bogota", func(s *incidentScope) { s.Org = "bogota-lpo.example" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			scope := window
			c.scope(&scope)
			rep := buildIncident(scope, incidentFactsForTest, rules, incidentHistory())
			var js, md bytes.Buffer
			if err := writeIncidentJSON(&js, rep); err != nil {
				t.Fatal(err)
			}
			if err := writeIncidentMarkdown(&md, rep); err != nil {
				t.Fatal(err)
			}
			for ext, got := range map[string][]byte{".json": js.Bytes(), ".md": md.Bytes()} {
				path := filepath.Join("testdata", "incident", c.name+ext)
				if *updateIncident {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (go test -run TestIncidentReportGolden -update-incident writes it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from the golden file (-update-incident rewrites it):\n%s", path, got)
				}
			}
		})
	}
}

// TestDeadlineRulesData: every rule of the shipped data is well formed, and
// the deadlines are there with their hours.
func TestDeadlineRulesData(t *testing.T) {
	rules, err := loadDeadlineRules(deadlineRulesJSON)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range rules {
		got[r.ID] = r.Hours
	}
	want := map[string]int{"gdpr-art33": 72, "uk-gdpr-art33": 72, "nydfs-500.17": 72, "sec-reg-sp": 72,
		"hipaa-164.410": 60 * 24, "cert-in-6h": 6, "dpdp-72h": 72, "ph-npc-72h": 72}
	b1, _ := json.Marshal(got)
	b2, _ := json.Marshal(want)
	if !bytes.Equal(b1, b2) {
		t.Errorf("deadline rules %s, want %s", b1, b2)
	}
	if _, err := loadDeadlineRules([]byte(`{"rules":[{"id":"x","hours":0}]}`)); err == nil {
		t.Error("a rule without hours was accepted")
	}
}

// BenchmarkIncidentReport builds a report over 100,000 verified entries
// (2,000 transfers of 50 entries each: creation, upload, deliveries, acks,
// refusals), the part of lex incident report after the log is verified.
func BenchmarkIncidentReport(b *testing.B) {
	rules, err := loadDeadlineRules(deadlineRulesJSON)
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var entries []incidentEntry
	for i := 0; len(entries) < 100_000; i++ {
		id := fmt.Sprintf("t%05d", i)
		matter := []string{"HL-1", "HL-2"}[i%2]
		rcpt := []string{mTeam, bReview}[i%2]
		at := base.Add(time.Duration(i) * time.Minute)
		add := func(ev audit.Event) {
			entries = append(entries, incidentEntry{Index: uint64(len(entries)), Event: ev})
		}
		add(audit.Event{Kind: audit.KindTransferCreated, Time: at, Actor: hAlice, Recipients: []string{rcpt}, Transfer: id, Matter: matter, Labels: []string{"personal-data"}})
		add(audit.Event{Kind: audit.KindUploadComplete, Time: at, Actor: hAlice, Recipients: []string{rcpt}, Transfer: id, Matter: matter, CiphertextSize: 1 << 20})
		for j := 0; j < 44; j++ {
			add(audit.Event{Kind: audit.KindDelivery, Time: at.Add(time.Duration(j) * time.Second), Actor: rcpt, Sender: hAlice, Transfer: id, Matter: matter})
		}
		for j := 0; j < 2; j++ {
			add(audit.Event{Kind: audit.KindAck, Time: at.Add(time.Hour), Actor: rcpt, Sender: hAlice, Transfer: id, Matter: matter})
		}
		for j := 0; j < 2; j++ {
			add(audit.Event{Kind: audit.KindDecision, Time: at, Actor: rcpt, Action: "receive", Matter: matter, Decision: &audit.Decision{Reasons: []string{"limits.max_downloads"}}})
		}
	}
	scope := incidentScope{Org: "manila-lpo.example", Since: base, Discovered: base.Add(72 * time.Hour), Viewer: "harbor-law.example"}
	b.ReportAllocs()
	for b.Loop() {
		rep := buildIncident(scope, incidentFactsForTest, rules, entries)
		if err := writeIncidentJSON(io.Discard, rep); err != nil {
			b.Fatal(err)
		}
	}
}
