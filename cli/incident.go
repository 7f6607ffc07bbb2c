package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
)

var incidentCommand = &command{
	name:    "incident",
	args:    "report (--identity ID | --matter M | --org TD) --since T [--until T] --discovered T [--json] [--out FILE]",
	summary: "report what an identity, matter or organisation did, with breach notification deadlines",
	help: `Builds an incident report from the audit log, verified as lex audit export
does, for a security team to hand to counsel: what was sent, received,
downloaded (when, how many times), acknowledged, which keys were registered
and what was refused, in the window; grouped by client, matter, recipient
organisation and country, and data category; for each transfer the age
recipients that can decrypt it (fingerprints of the keys registered when it
was sent) and its receipt; and the notification deadlines that apply from
the discovery time (GDPR and UK GDPR Art. 33, NYDFS 500.17, SEC Reg S-P,
HIPAA, CERT-In, India DPDP, Philippine NPC — kept as data in
incident_deadlines.json, each with its source).

The report shows your organisation's side only: the log's other entries are
commitments lex cannot read. Countries, clients and matter categories come
from the policy data (--policy DIR, default ./policies when present); without
it, categories are the transfers' labels and countries are left out.

  lex incident report --identity spiffe://manila-lpo.example/site/review-team \
      --since 2026-12-01 --discovered 2026-12-07T08:30:00Z            Markdown
  lex incident report --matter HL-2026-0042 --since 2026-11-01 --discovered … --json --out incident.json

T is RFC 3339 or a date (midnight UTC).`,
	run: runIncident,
}

func runIncident(e *env, args []string) error {
	if len(args) == 0 || args[0] != "report" {
		return usagef("want: lex incident report …")
	}
	fs := newFlagSet("incident report")
	var scope incidentScope
	fs.StringVar(&scope.Identity, "identity", "", "")
	fs.StringVar(&scope.Matter, "matter", "", "")
	fs.StringVar(&scope.Org, "org", "", "")
	since := fs.String("since", "", "")
	until := fs.String("until", "", "")
	discovered := fs.String("discovered", "", "")
	jsonOut := fs.Bool("json", false, "")
	outPath := fs.String("out", "", "")
	policyDirFlag := fs.String("policy", "", "")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	n := 0
	for _, s := range []string{scope.Identity, scope.Matter, scope.Org} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return usagef("give exactly one of --identity, --matter or --org")
	}
	if *since == "" || *discovered == "" {
		return usagef("--since and --discovered are required")
	}
	if scope.Since, err = parseWhenFlag("since", *since); err != nil {
		return err
	}
	if scope.Until, err = parseWhenFlag("until", *until); err != nil {
		return err
	}
	if scope.Discovered, err = parseWhenFlag("discovered", *discovered); err != nil {
		return err
	}
	rules, err := loadDeadlineRules(deadlineRulesJSON)
	if err != nil {
		return err
	}
	facts, err := loadIncidentFacts(*policyDirFlag)
	if err != nil {
		return err
	}
	ls, c, err := e.dialLog()
	if err != nil {
		return err
	}
	defer c.Close()
	scope.Viewer = c.ID().TrustDomain().Name()
	prover, err := audit.NewProver(e.ctx, ls.f, ls.cp, ls.cpRaw)
	if err != nil {
		return err
	}
	var entries []incidentEntry
	_, _, err = walkOwn(e, ls, c, func(i uint64, ev audit.Event, b *api.AuditBody, own bool) error {
		en := incidentEntry{Index: i, Event: ev}
		if ev.Kind == audit.KindUploadComplete {
			r, err := entryReceipt(e, prover, i, ev, b)
			if err != nil {
				return err
			}
			en.Receipt = r
		}
		entries = append(entries, en)
		return nil
	})
	if err != nil {
		return fmt.Errorf("THE AUDIT LOG DOES NOT VERIFY: %w", err)
	}
	rep := buildIncident(scope, facts, rules, entries)
	w := e.stdout
	if *outPath != "" {
		f, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if *jsonOut {
		return writeIncidentJSON(w, rep)
	}
	return writeIncidentMarkdown(w, rep)
}

func writeIncidentJSON(w io.Writer, rep IncidentReport) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// loadIncidentFacts reads organisations (and matters, when the policy data
// has them) from DIR/data; dir "" means ./policies when it exists, or none.
func loadIncidentFacts(dir string) (incidentFacts, error) {
	facts := incidentFacts{Orgs: map[string]orgFacts{}, Matters: map[string]matterFacts{}}
	if dir == "" {
		if info, err := os.Stat("policies"); err != nil || !info.IsDir() {
			return facts, nil
		}
		dir = "policies"
	}
	var orgs struct {
		Organisations map[string]orgFacts `json:"organisations"`
	}
	if err := readLenientJSON(filepath.Join(dir, "data", "organisations.json"), &orgs); err != nil {
		return facts, err
	}
	var matters struct {
		Matters map[string]matterFacts `json:"matters"`
	}
	if err := readLenientJSON(filepath.Join(dir, "data", "matters.json"), &matters); err != nil && !errors.Is(err, os.ErrNotExist) {
		return facts, err
	}
	if orgs.Organisations != nil {
		facts.Orgs = orgs.Organisations
	}
	if matters.Matters != nil {
		facts.Matters = matters.Matters
	}
	return facts, nil
}

// readLenientJSON reads the fields it knows of a policy data file (which
// holds much more than a report needs).
func readLenientJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("policy data: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("policy data %s: %w", path, err)
	}
	return nil
}
