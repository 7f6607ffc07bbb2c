package cli_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// policyWorld copies the policy library's rules (../policies/*.rego, tests
// left out: they test the shipped contracts) and the contracts of
// testdata/policyworld into a new directory, for a gateway to serve.
func policyWorld(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rules, _ := filepath.Glob(filepath.Join("..", "policies", "*.rego"))
	for _, src := range rules {
		if strings.HasSuffix(src, "_test.rego") {
			continue
		}
		copyFile(t, src, filepath.Join(dir, filepath.Base(src)))
	}
	data, _ := filepath.Glob(filepath.Join("testdata", "policyworld", "data", "*.json"))
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	for _, src := range data {
		copyFile(t, src, filepath.Join(dir, "data", filepath.Base(src)))
	}
	if len(rules) < 10 || len(data) < 7 {
		t.Fatalf("policy world: %d rules, %d data files", len(rules), len(data))
	}
	return dir
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// explain runs lex policy explain --json as config and returns the answer.
func explain(t *testing.T, config string, args ...string) (int, api.ExplainResponse, string) {
	t.Helper()
	if !slices.Contains(args, "--matter") {
		// Every send names a matter: PW-ALL of the policy world is open to
		// every organisation there, with the client's consent, and has US
		// data subjects, so that only the rules a case is about decide.
		args = append(args, "--matter", "PW-ALL")
	}
	code, out, errOut := lex(t, config, append([]string{"policy", "explain", "--json"}, args...)...)
	var r api.ExplainResponse
	if code == cli.ExitOK || code == cli.ExitRefused && out != "" {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("explain printed %q (stderr %q): %v", out, errOut, err)
		}
	}
	return code, r, errOut
}

func codesOf(r api.ExplainResponse) []string {
	var codes []string
	for _, x := range r.Reasons {
		codes = append(codes, x.Code)
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

const (
	harbor   = "spiffe://harbor-law.example/paralegal/alice"
	manila   = "spiffe://manila-lpo.example/site/review-team"
	night    = "spiffe://manila-lpo.example/night/desk"
	mergers  = "spiffe://manila-lpo.example/site/mergers/bob"
	bogota   = "spiffe://bogota-lpo.example/site/ana"
	tokyo    = "spiffe://tokyo-lpo.example/team/ken"
	london   = "spiffe://london-counsel.example/clerk/sam"
	zurich   = "spiffe://zurich-lpo.example/team/lea"
	shanghai = "spiffe://shanghai-lpo.example/team/li"
	care     = "spiffe://care-lpo.example/team/joe"
	tehran   = "spiffe://tehran-office.example/desk"
)

// TestPolicyDecisionsThroughGateway asks a real gateway, serving the policy
// library on testdata/policyworld's contracts, what it decides, through
// lex policy explain over mTLS. Alice is an administrator there, so she may
// ask about any organisation.
func TestPolicyDecisionsThroughGateway(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(policyWorld(t)))
	alice := env.ClientConfig(gatewaytest.Alice)
	const t1 = "2026-03-15T10:00:00Z"
	tests := []struct {
		name  string
		args  []string // after --from
		at    string
		codes []string // nil: allowed
		about string   // every reason's message mentions it
	}{
		{"privileged to an ISO 27001 site with an NDA", []string{harbor, "--to", manila, "--label", "privileged"}, t1, nil, ""},
		{"EU personal data under SCC, last second", []string{harbor, "--to", manila, "--label", "personal-data", "--region", "DE"}, "2026-03-31T23:59:59Z", nil, ""},
		{"EU personal data, SCC expired at midnight", []string{harbor, "--to", manila, "--label", "personal-data", "--region", "DE"}, "2026-04-01T00:00:00Z", []string{"gdpr.no_transfer_mechanism"}, "the SCC expired on 2026-03-31"},
		{"expiry is midnight UTC, not local", []string{harbor, "--to", manila, "--label", "personal-data", "--region", "FR"}, "2026-04-01T01:30:00+02:00", nil, ""},
		{"EU personal data to an adequate country", []string{harbor, "--to", tokyo, "--label", "personal-data", "--region", "DE"}, t1, nil, ""},
		{"EU personal data, special category", []string{harbor, "--to", bogota, "--label", "special-category", "--region", "EU"}, t1, []string{"gdpr.no_processor_contract", "gdpr.no_transfer_mechanism"}, "bogota-lpo.example"},
		{"Art. 44: a German firm, US subjects, to Colombia", []string{harbor, "--to", bogota, "--label", "personal-data", "--region", "US"}, "2026-01-01T00:00:00Z", []string{"gdpr.no_processor_contract", "gdpr.no_transfer_mechanism"}, "bogota-lpo.example"},
		{"NDA on its last day", []string{harbor, "--to", bogota}, "2026-03-31T12:00:00Z", nil, ""},
		{"NDA expired the day after", []string{harbor, "--to", bogota}, "2026-04-01T00:00:00Z", []string{"agreement.not_in_force"}, "the NDA expired on 2026-03-31"},
		{"health without a BAA", []string{harbor, "--to", manila, "--label", "health"}, t1, []string{"hipaa.no_baa"}, "Business Associate Agreement"},
		{"health under a BAA", []string{harbor, "--to", care, "--label", "health"}, t1, nil, ""},
		{"health after the BAA expired", []string{harbor, "--to", care, "--label", "health"}, "2027-01-01T00:00:00Z", []string{"hipaa.no_baa"}, "the BAA expired on 2026-12-31"},
		{"privileged to a site without ISO 27001", []string{harbor, "--to", bogota, "--label", "privileged"}, t1, []string{"privilege.no_iso27001"}, "bogota"},
		{"multi-recipient: only Bogotá fails", []string{harbor, "--to", manila, "--to", bogota, "--to", tokyo, "--label", "privileged"}, "2026-04-02T00:00:00Z",
			[]string{"agreement.not_in_force", "privilege.no_iso27001", "privilege.no_nda"}, "bogota"},
		{"multi-recipient: agreements only", []string{harbor, "--to", manila, "--to", bogota}, "2026-04-01T00:00:00Z", []string{"agreement.not_in_force"}, "bogota"},
		{"to an embargoed jurisdiction", []string{harbor, "--to", tehran}, t1, []string{"sanctions.embargoed"}, "IR"},
		{"from an embargoed jurisdiction", []string{tehran, "--to", harbor}, t1, []string{"sanctions.embargoed"}, "IR"},
		{"ethical wall: a team", []string{harbor, "--to", mergers, "--matter", "HL-2026-007"}, t1, []string{"wall.blocked"}, "HL-2026-007"},
		{"ethical wall: an organisation", []string{harbor, "--to", tokyo, "--to", manila, "--matter", "HL-2026-007"}, t1, []string{"wall.blocked"}, "tokyo"},
		{"ethical wall: others may receive", []string{harbor, "--to", manila, "--matter", "HL-2026-007"}, t1, nil, ""},
		{"bundle over the size limit", []string{harbor, "--to", manila, "--size", "11GiB"}, t1, []string{"limits.size"}, "manila-lpo.example"},
		{"bundle over the file limit", []string{harbor, "--to", manila, "--files", "1001"}, t1, []string{"limits.file_count"}, "1000 files"},
		{"within business hours", []string{night, "--to", harbor}, "2026-03-16T02:00:00Z", nil, ""},
		{"outside business hours", []string{night, "--to", harbor}, "2026-03-16T11:00:00Z", []string{"hours.outside"}, "Mon 19:00"},
		{"UK personal data under the IDTA, last second", []string{london, "--to", manila, "--label", "personal-data", "--region", "GB"}, "2026-05-31T23:59:59Z", nil, ""},
		{"UK personal data, IDTA expired", []string{london, "--to", manila, "--label", "personal-data", "--region", "GB"}, "2026-06-01T00:00:00Z", []string{"uk_gdpr.no_transfer_mechanism"}, "the IDTA expired on 2026-05-31"},
		{"Swiss personal data without SCCs", []string{zurich, "--to", manila, "--label", "personal-data", "--region", "CH"}, t1, []string{"fadp.no_transfer_mechanism"}, "Swiss"},
		{"PIPL export under the standard contract", []string{shanghai, "--to", manila, "--label", "personal-data", "--region", "CN"}, t1, nil, ""},
		{"PIPL export without it", []string{shanghai, "--to", harbor, "--label", "personal-data", "--region", "CN"}, t1, []string{"pipl.no_transfer_mechanism"}, "PIPL-SCC"},
		{"receive re-checks GDPR at delivery", []string{manila, "--action", "receive", "--to", harbor, "--label", "personal-data", "--region", "DE"}, "2026-04-01T00:00:00Z", []string{"gdpr.no_transfer_mechanism"}, "expired"},
		{"unknown organisation", []string{harbor, "--to", "spiffe://nowhere.example/x"}, t1, []string{"org.unknown"}, "nowhere.example"},
		// Issue 15's reproductions: each refused, naming the provision and the fix.
		{"SCCs of 2010/87 no longer count", []string{harbor, "--to", "spiffe://delhi-lpo.example/team/raj", "--label", "personal-data", "--region", "DE"}, t1, []string{"gdpr.scc_outdated"}, "2021/914"},
		{"SCCs do not cover a site in another country", []string{harbor, "--to", "spiffe://mumbai-lpo.example/sg/wei", "--label", "personal-data", "--region", "DE"}, t1, []string{"gdpr.destination_not_covered"}, "SG"},
		{"UK Addendum without the EU SCCs", []string{london, "--to", bogota, "--label", "personal-data", "--region", "GB"}, t1, []string{"gdpr.no_processor_contract", "uk_gdpr.addendum_without_scc"}, "bogota-lpo.example"},
		{"client-confidential to an uncertified LPO", []string{harbor, "--to", bogota, "--label", "client-confidential"}, t1, []string{"confidentiality.no_iso27001"}, "ISO 27001"},
		{"export-controlled without a licence on the matter", []string{harbor, "--to", manila, "--label", "export-controlled"}, t1, []string{"export.no_authorisation"}, "licence"},
		{"PIPL keys on the exporter: a New York firm's Chinese subjects", []string{"spiffe://newyork-firm.example/x", "--to", manila, "--label", "personal-data", "--region", "CN"}, t1, nil, ""},
		{"unknown label with a suggestion", []string{harbor, "--to", manila, "--label", "helth"}, t1, []string{"label.unknown"}, "did you mean `health`?"},
		// Issue 14: the matter's records decide; each refusal names the matter.
		{"unknown matter", []string{harbor, "--to", manila, "--matter", "NO-SUCH-MATTER"}, t1, []string{"matter.unknown"}, "NO-SUCH-MATTER"},
		{"personal data with no data-subject jurisdiction", []string{harbor, "--to", manila, "--matter", "PW-NOJUR"}, t1, []string{"classification.no_jurisdiction"}, "PW-NOJUR"},
		{"recipient not permitted on the matter", []string{harbor, "--to", tokyo, "--matter", "PW-MANILA-ONLY"}, t1, []string{"matter.recipient_not_permitted"}, "PW-MANILA-ONLY"},
		{"the client's consent expired", []string{harbor, "--to", manila, "--matter", "PW-CONSENT-LAPSED"}, t1, []string{"consent.expired"}, "PW-CONSENT-LAPSED"},
		{"the client's consent does not cover the recipient's country", []string{harbor, "--to", manila, "--matter", "PW-CONSENT-JP"}, t1, []string{"consent.not_covering"}, "PW-CONSENT-JP"},
		{"a sender-added label adds a restriction", []string{harbor, "--to", manila, "--matter", "PW-MANILA-ONLY", "--label", "health"}, t1, []string{"hipaa.no_baa"}, "Business Associate Agreement"},
		{"admin action for an administrator", []string{harbor, "--action", "admin"}, t1, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, r, errOut := explain(t, alice, append(append([]string{"--from"}, tt.args...), "--at", tt.at)...)
			if tt.codes == nil {
				if code != cli.ExitOK || !r.Allow || len(r.Reasons) != 0 {
					t.Fatalf("exit %d, decision %+v, stderr %s; want allowed", code, r, errOut)
				}
				return
			}
			if code != cli.ExitRefused || r.Allow {
				t.Fatalf("exit %d, decision %+v, stderr %s; want refused", code, r, errOut)
			}
			if got := codesOf(r); !slices.Equal(got, tt.codes) {
				t.Errorf("codes %v, want %v: %+v", got, tt.codes, r.Reasons)
			}
			for _, rs := range r.Reasons {
				if !strings.Contains(rs.Message, tt.about) {
					t.Errorf("reason %q does not mention %q", rs.Message, tt.about)
				}
			}
			if r.DecisionID == "" || r.PolicyVersion != env.Gateway.PolicyVersion() {
				t.Errorf("decision id %q, policy version %q (gateway %q)", r.DecisionID, r.PolicyVersion, env.Gateway.PolicyVersion())
			}
		})
	}
}

// TestPolicyExplainWhoMayAsk: a non-administrator may ask about its own
// organisation only; the refusal of the question is a policy refusal.
func TestPolicyExplainWhoMayAsk(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithPolicyDir(policyWorld(t)))
	team := env.ClientConfig(gatewaytest.Team)
	if code, r, errOut := explain(t, team, "--from", manila, "--to", harbor, "--at", "2026-03-15"); code != cli.ExitOK || !r.Allow {
		t.Errorf("own organisation: exit %d %+v %s", code, r, errOut)
	}
	code, _, errOut := explain(t, team, "--from", harbor, "--to", manila)
	if code != cli.ExitRefused || !strings.Contains(errOut, "[admin.not_admin]") || !strings.Contains(errOut, "decision ") {
		t.Errorf("other organisation: exit %d, stderr %q", code, errOut)
	}
	// The human form names every reason and the decision.
	_, out, _ := lex(t, team, "policy", "explain", "--from", manila, "--to", harbor, "--label", "health", "--matter", "PW-ALL", "--at", "2026-03-15")
	if !strings.HasPrefix(out, "REFUSED: send from "+manila) || !strings.Contains(out, "[hipaa.no_baa]") || !strings.Contains(out, "decision ") {
		t.Errorf("explain printed:\n%s", out)
	}
}

// TestPolicyRealSendsAndDecisionLog sends real bundles with lex through the
// policy world: one allowed, one refused with a decision id that the
// gateway's decision log holds, in OPA's shape.
func TestPolicyRealSendsAndDecisionLog(t *testing.T) {
	env, alice, _ := setup(t, gatewaytest.WithPolicyDir(policyWorld(t)))
	mustLex(t, alice, "send", "--to", gatewaytest.Team, "--matter", "HL-2026-001", "--label", "privileged", caseFolder(t))
	// The SCC with Manila expired on 2026-03-31: EU personal data is refused.
	code, _, errOut := lex(t, alice, "send", "--to", gatewaytest.Team, "--matter", "HL-2026-002", "--label", "personal-data", "--region", "DE", caseFolder(t))
	if code != cli.ExitRefused || !strings.Contains(errOut, "[gdpr.no_transfer_mechanism]") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	// The last "decision ID" of the output (reasons may say "adequacy decision").
	var id string
	i := strings.LastIndex(errOut, "decision ")
	ok := i >= 0
	if ok {
		id = strings.TrimSpace(errOut[i+len("decision "):])
	}
	if !ok || id == "" {
		t.Fatalf("no decision id in %q", errOut)
	}
	f, err := os.Open(filepath.Join(env.Config.Store.Dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found bool
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var e struct {
			DecisionID string `json:"decision_id"`
			Path       string `json:"path"`
			Input      struct {
				Action string `json:"action"`
			} `json:"input"`
			Result struct {
				Allow   bool `json:"allow"`
				Reasons []struct {
					Code string `json:"code"`
				} `json:"reasons"`
			} `json:"result"`
			Bundles map[string]struct {
				Revision string `json:"revision"`
			} `json:"bundles"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("decision log line %q: %v", sc.Text(), err)
		}
		if e.DecisionID == id {
			found = true
			if e.Path != "lexgate/decision" || e.Input.Action != "send" || e.Result.Allow || e.Result.Reasons[0].Code != "gdpr.no_transfer_mechanism" ||
				e.Bundles["lexgate"].Revision != env.Gateway.PolicyVersion() {
				t.Errorf("decision log entry %s", sc.Text())
			}
		}
	}
	if !found {
		t.Errorf("decision %s is not in the decision log", id)
	}
}
