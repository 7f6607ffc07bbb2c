package policy_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
)

func TestRunTestsOnDefaultPolicies(t *testing.T) {
	rep, err := policy.RunTests(t.Context(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed() || len(rep.Results) < 50 {
		t.Errorf("%d tests, %d failed", len(rep.Results), rep.Failed())
	}
	if rep.Coverage < 90 {
		t.Errorf("coverage %.1f%%, want at least 90%%", rep.Coverage)
	}
	for _, f := range rep.Files {
		if strings.HasSuffix(f.File, "_test.rego") {
			t.Errorf("coverage reports a test file: %s", f.File)
		}
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	fsys := mapFS(map[string]string{
		"p.rego":      allowAll,
		"p_test.rego": "package lexgate_test\n\ntest_ok if data.lexgate.decision.allow\n\ntest_bad if not data.lexgate.decision.allow\n",
	})
	rep, err := policy.RunTests(t.Context(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Passed() || rep.Failed() != 1 || len(rep.Results) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if bad := rep.Results[1]; bad.Pass || bad.Name != "data.lexgate_test.test_bad" || bad.File != "p_test.rego" || bad.Line != 5 {
		t.Errorf("failed test %+v", bad)
	}
}

// writeSet writes files under dir, replacing what was there.
func writeSet(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	os.RemoveAll(dir)
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const denyAll = `package lexgate

decision := {"allow": false, "reasons": [{"code": "test.deny", "message": "denied"}], "obligations": {}}
`

func TestStartWithoutValidSetRefusesEverything(t *testing.T) {
	dir := t.TempDir()
	writeSet(t, dir, map[string]string{"p.rego": "package lexgate\n\ndecision := {\n"})
	eng, err := policy.Start(t.Context(), policy.Config{Dir: dir, Logger: quiet})
	if err == nil || eng == nil {
		t.Fatalf("Start = %v, %v; want an engine and an error", eng, err)
	}
	d, err := eng.Decide(t.Context(), policy.Input{Action: "list_inbox", Time: june, Source: alice})
	if err == nil || d.Allow || d.Codes()[0] != policy.CodeError {
		t.Errorf("decision without a policy: %+v, %v", d, err)
	}
	writeSet(t, dir, map[string]string{"p.rego": allowAll})
	if err := eng.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d, _ := eng.Decide(t.Context(), policy.Input{Action: "list_inbox", Time: june, Source: alice}); !d.Allow {
		t.Errorf("after a good reload: %+v", d)
	}
}

func TestReloadRejectsFailingTests(t *testing.T) {
	dir := t.TempDir()
	writeSet(t, dir, map[string]string{"p.rego": denyAll, "p_test.rego": "package lexgate_test\n\ntest_denies if not data.lexgate.decision.allow\n"})
	eng, err := policy.New(t.Context(), policy.Config{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	v := eng.Version()
	writeSet(t, dir, map[string]string{"p.rego": allowAll, "p_test.rego": "package lexgate_test\n\ntest_denies if not data.lexgate.decision.allow\n"})
	err = eng.Reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), "p_test.rego:3: test data.lexgate_test.test_denies fails") {
		t.Fatalf("Reload of a set failing its tests: %v", err)
	}
	if eng.Version() != v {
		t.Error("a rejected set replaced the last good one")
	}
	if d, _ := eng.Decide(t.Context(), policy.Input{Action: "list_inbox", Time: june, Source: alice}); d.Allow {
		t.Error("the rejected allow-all set decided")
	}
	eng2, err := policy.New(t.Context(), policy.Config{Dir: dir, Logger: quiet, SkipTests: true})
	if err != nil || eng2.Version() == v {
		t.Errorf("SkipTests: %v", err)
	}
}

// TestWatch: Watch reloads a changed set, including a change made between
// the load and the start of Watch.
func TestWatch(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprintf("changed before Watch starts=%v", early), func(t *testing.T) {
			dir := t.TempDir()
			writeSet(t, dir, map[string]string{"p.rego": denyAll})
			eng, err := policy.New(t.Context(), policy.Config{Dir: dir, Logger: quiet, WatchInterval: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			v := eng.Version()
			if !early {
				go eng.Watch(t.Context())
			}
			writeSet(t, dir, map[string]string{"p.rego": allowAll})
			if early {
				go eng.Watch(t.Context())
			}
			deadline := time.Now().Add(time.Minute)
			for eng.Version() == v {
				if time.Now().After(deadline) {
					t.Fatal("the changed set was not reloaded")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestDecisionLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	eng, err := policy.New(t.Context(), policy.Config{FS: policies.FS, Logger: quiet, DecisionLog: path})
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := eng.Decide(t.Context(), send(june, []string{"health"}, manila))
	d2, _ := eng.Decide(policy.Hypothetical(t.Context()), send(june, nil, manila))
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("decision log mode: %v %v", info, err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	var got []policy.DecisionLogEntry
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var e policy.DecisionLogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2", len(got))
	}
	e := got[0]
	if e.DecisionID != d1.ID || e.Path != "lexgate/decision" || e.Result.Allow || e.Result.Reasons[0].Code != "hipaa.no_baa" ||
		e.Bundles["lexgate"].Revision != eng.Version() || e.Input.Destinations[0].Jurisdiction != "PH" || e.Timestamp.IsZero() {
		t.Errorf("entry %+v", e)
	}
	if e.Hypothetical || got[1].DecisionID != d2.ID || !got[1].Result.Allow || !got[1].Hypothetical {
		t.Errorf("entry %+v", got[1])
	}
}

func TestCheckLocatesDataErrors(t *testing.T) {
	fsys := mapFS(map[string]string{
		"p.rego":                  allowAll,
		"data/organisations.json": "{\"organisations\": {\n  \"a.test\": {\"name\": \"A\", \"jurisdiction\": \"DE\"},\n  \"b.test\": {\"name\": \"B\", \"jurisdiction\": \"Germany\"}\n}}\n",
		"data/agreements.json":    "{\"agreements\": [\n  {\"parties\": [\"a.test\", \"b.test\"], \"kind\": \"NDA\", \"signed\": \"2025-01-01\"},\n  {\"parties\": [\"a.test\", \"c.test\"], \"kind\": \"NDA\", \"signed\": \"2025-01-01\"}\n]}\n",
		"data/access.yaml":        "admins:\n  - alice\n",
	})
	var got []string
	for _, err := range policy.Check(t.Context(), fsys) {
		var pe *policy.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%T %v", err, err)
		}
		got = append(got, fmt.Sprintf("%s:%d", pe.File, pe.Line))
	}
	want := []string{"data/organisations.json:3", "data/access.yaml:2", "data/agreements.json:3"}
	if !slices.Equal(got, want) {
		t.Errorf("located at %v, want %v", got, want)
	}
}

// TestCheckLocatesMatterErrors: a bad matter registry or label vocabulary is
// refused, each problem at the line of the value it is about.
func TestCheckLocatesMatterErrors(t *testing.T) {
	matters := `{"matters": {
  "M-1": {
    "client": "Acme",
    "owner": "a.test",
    "categories": ["helth"],
    "data_subject_jurisdictions": ["Germany"],
    "client_consents": [{"reference": "C1", "given": "2025-13-01", "organisations": ["c.test"]}],
    "permitted_recipients": {"organisations": ["d.test"], "identities": ["b.test/x"]},
    "legal_hold": {"held": true, "at": "yesterday"},
    "retention_seconds": 0
  },
  "M-2": {"client": "", "owner": "nowhere.test", "permitted_recipients": {}}
}}
`
	fsys := mapFS(map[string]string{
		"p.rego":                  allowAll,
		"data/organisations.json": "{\"organisations\": {\n  \"a.test\": {\"name\": \"A\", \"jurisdiction\": \"DE\"}\n}}\n",
		"data/labels.json":        "{\"labels\": {\n  \"health\": \"Health\",\n  \"Bad Label\": \"x\"\n}}\n",
		"data/access.json":        "{\"roles\": {\n  \"approver\": [\"bob\"]\n}}\n",
		"data/matters.json":       matters,
	})
	var got []string
	for _, err := range policy.Check(t.Context(), fsys) {
		var pe *policy.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%T %v", err, err)
		}
		got = append(got, fmt.Sprintf("%s:%d %s", pe.File, pe.Line, pe.Message))
	}
	for _, want := range []string{
		`data/labels.json:3 labels: "Bad Label" must be lower case`,
		`data/access.json:2 roles["approver"]: "bob" is not a SPIFFE ID`,
		`data/matters.json:5 matters["M-1"]: category "helth" is not in the label vocabulary`,
		`data/matters.json:6 matters["M-1"]: data-subject jurisdiction "Germany"`,
		`data/matters.json:7 matters["M-1"]: client_consents[0]: organisation "c.test" is not in organisations`,
		`data/matters.json:7 matters["M-1"]: client_consents[0]: given "2025-13-01" is not a date`,
		`data/matters.json:8 matters["M-1"]: permitted recipient organisation "d.test" is not in organisations`,
		`data/matters.json:8 matters["M-1"]: permitted recipient "b.test/x" is not a SPIFFE ID`,
		`data/matters.json:2 matters["M-1"]: legal_hold is held but by or reason is missing`,
		`data/matters.json:9 matters["M-1"]: legal_hold at "yesterday" is not an RFC 3339 time`,
		`data/matters.json:2 matters["M-1"]: retention_seconds is 0`,
		`data/matters.json:12 matters["M-2"]: client is missing`,
		`data/matters.json:12 matters["M-2"]: owner "nowhere.test" is not in organisations`,
	} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, want) }) {
			t.Errorf("no error %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

// TestCheckTransferRecords: the records of issue 15 (transfer fields of
// agreements, certificates, screening, PIPL volumes, dated adequacy and
// sanctions entries, matter derogations and authorisations, settings) are
// checked at load, each problem named.
func TestCheckTransferRecords(t *testing.T) {
	fsys := mapFS(map[string]string{
		"p.rego": allowAll,
		"data/organisations.json": `{"organisations": {
  "a.test": {"name": "A", "jurisdiction": "DE", "sites": [{"name": "HQ", "paths": ["/"], "region": "Crimea"}],
    "certificates": [{"standard": "", "sites": ["Nowhere"], "expires": "soon"}],
    "screening": {"lists": [], "date": "x"}, "pipl": {"personal_subjects": -1}, "sanctions_nexus": ["UN"]},
  "b.test": {"name": "B", "jurisdiction": "PH"}
}}`,
		"data/agreements.json": `{"agreements": [
  {"parties": ["a.test", "b.test"], "kind": "NDA", "signed": "2025-01-01", "module": 2, "roles": {"c.test": "boss"}, "tia": {"date": "2025"}}
]}`,
		"data/jurisdictions.json": `{"jurisdictions": {"eu_eea": ["DE"], "gdpr_adequacy": {"JP": {"from": "2019-01-23", "scope": "partial", "source": "x"}},
  "uk_adequacy": {}, "ch_adequacy": {}, "embargoed": {}, "sanctions": {"UN": {}, "EU": {"RU": {"tier": "ban", "from": "2014-07-31"}}}}}`,
		"data/labels.json":   `{"labels": {"health": "h"}}`,
		"data/settings.json": `{"settings": {"tia_max_age_days": 0}}`,
		"data/matters.json": `{"matters": {"M": {"client": "C", "owner": "a.test", "permitted_recipients": {},
  "derogations": [{"article": "49(2)", "justification": ""}], "export_control": [{"authorisation": "permit"}], "pipl_exemption": "always"}}}`,
	})
	var got []string
	for _, err := range policy.Check(t.Context(), fsys) {
		got = append(got, err.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`region "Crimea" is not an ISO 3166-2 code`,
		`certificates[0]: standard is missing`,
		`certificates[0]: site "Nowhere" is not a site of a.test`,
		`certificates[0]: expires "soon" is not a date`,
		`screening needs lists, a date`,
		`pipl needs personal_subjects`,
		`sanctions_nexus "UN" is not one of EU, US, UK`,
		`roles names "c.test", which is not a party`,
		`role "boss" is not controller, processor or sub-processor`,
		`module 2: only SCCs have modules`,
		`tia needs a reference and a date`,
		`scope "partial" needs requires`,
		`regime "UN" is not one of EU, US, UK`,
		`tier "ban" is not "embargo" or "restricted"`,
		`source is missing`,
		`settings: tia_max_age_days is 0`,
		`article "49(2)" is not a point of GDPR Art. 49(1)`,
		`justification is missing`,
		`authorisation "permit" is not "licence" or "exception"`,
		`pipl_exemption "always" is not`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no error %q in:\n%s", want, all)
		}
	}
}
