package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
)

var auditCommand = &command{
	name:    "audit",
	args:    "export [--matter M] [--identity ID] [--since T] [--until T] [--out FILE] | verify [--json]",
	summary: "export or verify the gateway's audit log",
	help: `Reads the gateway's audit log (read-only, over the API connection), checked
against the pinned log_key and the checkpoint lex remembers.

  lex audit export [--matter M] [--identity ID] [--since T] [--until T] [--out FILE]
      writes the matching entries (to stdout, or FILE) as JSON lines, each with its receipt (entry,
      inclusion proof, signed checkpoint): the raw material of a GDPR Art. 30
      record or a breach report. --identity matches the actor or a recipient;
      T is RFC 3339 (2026-11-27T10:00:00Z) or a date (2026-11-27). The whole log
      is verified while it is read; a failure ends the export with an error.

  lex audit verify [--json]
      walks the whole log, checks every entry against the hash tiles and
      recomputes the tree's root from the entries: it must be the signed one.`,
	run: runAudit,
}

// exportLine is one line of "lex audit export".
type exportLine struct {
	Index   uint64         `json:"index"`
	Event   audit.Event    `json:"event"`
	Receipt *audit.Receipt `json:"receipt"`
}

func runAudit(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want export or verify")
	}
	switch args[0] {
	case "export":
		return runAuditExport(e, args[1:])
	case "verify":
		return runAuditVerify(e, args[1:])
	}
	return usagef("unknown audit command %q: want export or verify", args[0])
}

func parseTimeFlag(name, s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, usagef("--%s %q: want RFC 3339 or YYYY-MM-DD", name, s)
	}
	if end {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, nil
}

func runAuditExport(e *env, args []string) error {
	fs := newFlagSet("audit export")
	matter := fs.String("matter", "", "")
	identity := fs.String("identity", "", "")
	sinceS := fs.String("since", "", "")
	untilS := fs.String("until", "", "")
	outPath := fs.String("out", "", "")
	fs.Bool("json", false, "") // the output is JSON lines already
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	since, err := parseTimeFlag("since", *sinceS, false)
	if err != nil {
		return err
	}
	until, err := parseTimeFlag("until", *untilS, true)
	if err != nil {
		return err
	}
	ls, c, err := e.dialLog()
	if err != nil {
		return err
	}
	defer c.Close()
	w := e.stdout
	if *outPath != "" {
		f, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	prover, err := audit.NewProver(e.ctx, ls.f, ls.cp, ls.cpRaw)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_, err = audit.VerifyLog(e.ctx, ls.f, ls.cp, func(i uint64, ev audit.Event) error {
		switch {
		case *matter != "" && ev.Matter != *matter,
			*identity != "" && ev.Actor != *identity && !slices.Contains(ev.Recipients, *identity),
			!since.IsZero() && ev.Time.Before(since),
			!until.IsZero() && ev.Time.After(until):
			return nil
		}
		entry, err := ev.Marshal() // canonical: the entry's bytes, as VerifyLog checked
		if err != nil {
			return err
		}
		r, err := prover.Receipt(e.ctx, i, entry)
		if err != nil {
			return err
		}
		return enc.Encode(exportLine{Index: i, Event: ev, Receipt: r})
	})
	return err
}

func runAuditVerify(e *env, args []string) error {
	fs := newFlagSet("audit verify")
	jsonOut := fs.Bool("json", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	ls, c, err := e.dialLog()
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := audit.VerifyLog(e.ctx, ls.f, ls.cp, nil)
	if err != nil {
		return fmt.Errorf("THE AUDIT LOG DOES NOT VERIFY: %w", err)
	}
	if *jsonOut {
		return writeJSON(e.stdout, struct {
			Origin  string `json:"origin"`
			Entries uint64 `json:"entries"`
			Root    string `json:"root"`
		}{ls.cp.Origin, n, fmt.Sprintf("%x", ls.cp.Hash)})
	}
	fmt.Fprintf(e.stdout, "audit log %s verifies: %d entries, root %x, consistent with the checkpoint lex saw before\n",
		ls.cp.Origin, n, ls.cp.Hash)
	return nil
}

// dialLog connects and returns the verified log state; it needs log_key.
func (e *env) dialLog() (*logState, *Client, error) {
	cfg, c, err := e.dial()
	if err != nil {
		return nil, nil, err
	}
	if c.log == nil {
		c.Close()
		_, err := cfg.logVerifier()
		return nil, nil, err
	}
	return c.log, c, nil
}
