package policy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/decide")

// alice, manila, bogota... are parties of the shipped contracts.
var (
	alice  = policy.Party{ID: "spiffe://harbor-law.example/paralegal/alice"}
	manila = policy.Party{ID: "spiffe://manila-lpo.example/site/review-team"}
	bogota = policy.Party{ID: "spiffe://bogota-lpo.example/site/review-team"}
	evil   = policy.Party{ID: "spiffe://evil.example/mallory"}
	bob    = policy.Party{ID: "spiffe://harbor-law.example/paralegal/bob"}
)

var june = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

// send is a send from Alice on matter HL-2026-0042 of the shipped registry
// (Manila permitted, with the client's consent).
func send(t time.Time, labels []string, to ...policy.Party) policy.Input {
	return sendOn("HL-2026-0042", t, labels, to...)
}

// sendOn is a send from Alice on a matter of the shipped registry
// (HL-2026-0050 permits Bogotá and Manila).
func sendOn(matter string, t time.Time, labels []string, to ...policy.Party) policy.Input {
	return policy.Input{
		Version: 1, Action: "send", Time: t, Source: alice, Destinations: to,
		Bundle: &policy.Bundle{Matter: matter, Labels: labels, Size: 1 << 20, FileCount: 3,
			ManifestHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
	}
}

// newDefault returns an engine on the embedded default policy, logging to buf.
func newDefault(t *testing.T, buf *bytes.Buffer) *policy.Engine {
	t.Helper()
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	// A generous timeout: under -race on a busy machine a decision of the
	// whole library can take far longer than in production.
	eng, err := policy.New(t.Context(), policy.Config{FS: policies.FS, Timeout: 10 * time.Second, Logger: slog.New(slog.NewJSONHandler(buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func TestDefaultPolicy(t *testing.T) {
	eng := newDefault(t, nil)
	tests := []struct {
		name    string
		in      policy.Input
		allow   bool
		codes   []string
		message string // a substring of one message
	}{
		{"send_harbor_to_manila", send(june, []string{"privileged"}, manila), true, nil, ""},
		{"send_within_harbor", send(june, []string{"health"}, bob), true, nil, ""},
		{"send_health_to_manila", send(june, []string{"health"}, manila), false, []string{"hipaa.no_baa"},
			"manila-lpo.example cannot receive health data from harbor-law.example without a Business Associate Agreement (BAA)"},
		{"send_to_bogota_expired", sendOn("HL-2026-0050", june, nil, bogota), false, []string{"agreement.not_in_force"},
			"bogota-lpo.example has no agreement in force with harbor-law.example: the NDA expired on 2026-03-31"},
		{"send_to_bogota_last_day", sendOn("HL-2026-0050", time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC), nil, bogota), true, nil, ""},
		{"send_to_bogota_just_after", sendOn("HL-2026-0050", time.Date(2026, 4, 1, 0, 0, 0, 1, time.UTC), nil, bogota), false, []string{"agreement.not_in_force"},
			"the NDA expired on 2026-03-31"},
		{"send_to_unknown", send(june, nil, evil), false, []string{"org.unknown"}, "evil.example, which is not a known organisation"},
		{"send_from_unknown", policy.Input{Action: "send", Time: june, Source: evil, Destinations: []policy.Party{manila}, Bundle: &policy.Bundle{Matter: "HL-2026-0042"}}, false, []string{"org.unknown"}, "spiffe://evil.example/mallory"},
		{"send_multi_one_bad", sendOn("HL-2026-0050", june, nil, manila, bogota, bob), false, []string{"agreement.not_in_force"}, "bogota-lpo.example has no agreement"},
		{"send_no_recipients", send(june, nil), false, []string{"send.no_recipients"}, ""},
		{"register_key", policy.Input{Action: "register_key", Time: june, Source: manila}, true, nil, ""},
		{"list_inbox_unknown", policy.Input{Action: "list_inbox", Time: june, Source: evil}, false, []string{"org.unknown"}, ""},
		{"receive_health_no_baa", policy.Input{Action: "receive", Time: june, Source: manila, Destinations: []policy.Party{alice},
			Bundle: &policy.Bundle{Matter: "HL-2026-0042", Labels: []string{"health"}}}, false, []string{"hipaa.no_baa"}, ""},
		{"receive", policy.Input{Action: "receive", Time: june, Source: manila, Destinations: []policy.Party{alice},
			Bundle: &policy.Bundle{Matter: "HL-2026-0042", Labels: []string{"privileged"}}}, true, nil, ""},
		{"admin", policy.Input{Action: "admin", Time: june, Source: alice}, false, []string{"admin.not_admin"}, ""},
		{"wrong_version", policy.Input{Version: 2, Action: "lookup_key", Time: june, Source: alice}, false, []string{"input.version"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := eng.Decide(t.Context(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow {
				t.Errorf("Allow = %v, want %v; reasons %v", d.Allow, tt.allow, d.Reasons)
			}
			if codes := d.Codes(); !slices.Equal(codes, tt.codes) && !(len(codes) == 0 && tt.codes == nil) {
				t.Errorf("codes = %q, want %q", codes, tt.codes)
			}
			if tt.message != "" && !slices.ContainsFunc(d.Reasons, func(r policy.Reason) bool { return strings.Contains(r.Message, tt.message) }) {
				t.Errorf("no reason says %q: %v", tt.message, d.Reasons)
			}
			if d.ID == "" || !strings.HasPrefix(d.PolicyVersion, "sha256:") {
				t.Errorf("ID %q, PolicyVersion %q", d.ID, d.PolicyVersion)
			}
			checkGolden(t, eng, tt.name, tt.in, d)
		})
	}
}

// checkGolden compares the enriched input and the decision (without its
// random id and policy version) with testdata/decide/name.json.
func checkGolden(t *testing.T, eng *policy.Engine, name string, in policy.Input, d policy.Decision) {
	t.Helper()
	d.ID, d.PolicyVersion = "", ""
	got, err := json.MarshalIndent(struct {
		Input    policy.Input    `json:"input"`
		Decision policy.Decision `json:"decision"`
	}{eng.Enrich(in), d}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "decide", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", path, got)
	}
}

func TestObligations(t *testing.T) {
	d, err := newDefault(t, nil).Decide(t.Context(), send(june, nil, manila))
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Obligations{RetentionDays: 60, MaxDownloads: 5, ExpiresAt: june.AddDate(0, 0, 60)}
	if !d.Obligations.ExpiresAt.Equal(want.ExpiresAt) || d.Obligations.RetentionDays != 60 || d.Obligations.MaxDownloads != 5 {
		t.Errorf("Obligations = %+v, want %+v", d.Obligations, want)
	}
}

func TestEnrich(t *testing.T) {
	in := newDefault(t, nil).Enrich(send(june, nil, manila, evil))
	if in.Source.TrustDomain != "harbor-law.example" || in.Source.Path != "/paralegal/alice" {
		t.Errorf("source names not derived: %+v", in.Source)
	}
	if o := in.Source.Organisation; o == nil || o.Jurisdiction != "DE" || !o.EUEEA || len(o.Agreements) != 0 {
		t.Errorf("source organisation = %+v", o)
	}
	m := in.Destinations[0].Organisation
	if m == nil || m.Jurisdiction != "PH" || !slices.Contains(m.Certifications, "ISO 27001") || len(m.Agreements) != 2 {
		t.Errorf("manila organisation = %+v", m)
	}
	if p := in.Destinations[0]; p.Site == nil || p.Site.Name != "Manila" || p.Jurisdiction != "PH" || p.EUEEA || !slices.Equal(p.Certifications, []string{"ISO 27001"}) {
		t.Errorf("manila party = %+v", p)
	}
	if in.Destinations[1].Organisation != nil {
		t.Errorf("unknown organisation enriched: %+v", in.Destinations[1].Organisation)
	}
}

func TestDecisionLogged(t *testing.T) {
	var buf bytes.Buffer
	eng := newDefault(t, &buf)
	buf.Reset() // "policy loaded"
	d, _ := eng.Decide(t.Context(), send(june, []string{"health"}, manila))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if rec["level"] != "INFO" || rec["decision_id"] != d.ID || rec["action"] != "send" ||
		rec["source"] != alice.ID || rec["allow"] != false || !strings.Contains(buf.String(), "hipaa.no_baa") {
		t.Errorf("log record = %v", rec)
	}
	for _, secret := range []string{"Acme", "9f86d081", "health\""} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("log contains %q: %s", secret, buf.String())
		}
	}
}
