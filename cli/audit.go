package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
)

var auditCommand = &command{
	name:    "audit",
	args:    "export [--matter M] [--identity ID] [--since T] [--until T] [--out FILE] | verify [--json]",
	summary: "export or verify the gateway's audit log",
	help: `Reads the gateway's audit log (read-only, over the API connection), checked
against the pinned log_key and the checkpoint lex remembers.

  lex audit export [--matter M] [--identity ID] [--since T] [--until T] [--out FILE]
      writes your organisation's matching entries (to stdout, or FILE) as JSON
      lines, each with its receipt (entry, inclusion proof, signed checkpoint,
      and for a private entry its body and salt): the raw material of a GDPR
      Art. 30 record or a breach report. --identity matches the actor, sender,
      a recipient or the subject; T is RFC 3339 (2026-11-27T10:00:00Z) or a
      date (2026-11-27). The whole log is verified while it is read, and each
      entry of yours against its commitment; a failure ends the export.

  lex audit verify [--json]
      walks the whole log, checks every entry against the hash tiles and
      recomputes the tree's root from the entries: it must be the signed one.
      Then opens each of your organisation's entries against its commitment.

The log is private in its contents: other organisations' entries are
commitments (salted hashes), which lex verifies but cannot read.`,
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
	_, _, err = walkOwn(e, ls, c, func(i uint64, ev audit.Event, b *api.AuditBody, own bool) error {
		switch {
		case !own:
			return nil
		case *matter != "" && ev.Matter != *matter,
			*identity != "" && ev.Actor != *identity && ev.Sender != *identity && ev.Subject != *identity && !slices.Contains(ev.Recipients, *identity),
			!since.IsZero() && ev.Time.Before(since),
			!until.IsZero() && ev.Time.After(until):
			return nil
		}
		r, err := entryReceipt(e, prover, i, ev, b)
		if err != nil {
			return err
		}
		return enc.Encode(exportLine{Index: i, Event: ev, Receipt: r})
	})
	return err
}

// entryReceipt builds the receipt of entry i (event ev, body b if private)
// under the prover's checkpoint.
func entryReceipt(e *env, prover *audit.Prover, i uint64, ev audit.Event, b *api.AuditBody) (*audit.Receipt, error) {
	var leaf []byte
	if b == nil {
		var err error
		if leaf, err = ev.Marshal(); err != nil { // a public entry: the event is the leaf
			return nil, err
		}
	} else {
		leaf = audit.CommitmentLeaf(audit.Commit(b.Salt, []byte(b.Body)))
	}
	r, err := prover.Receipt(e.ctx, i, leaf)
	if err != nil {
		return nil, err
	}
	if b != nil {
		r.Salt, r.Body = b.Salt, b.Body
	}
	return r, nil
}

// walkOwn verifies the whole log up to the verified checkpoint (every leaf
// against the hash tiles and the signed root) and calls fn, in order, with
// every entry of the caller's organisation: the private ones whose bodies
// the gateway serves to it (b), each opened against its commitment in the
// verified tree, and the public ones (key registrations): own says whether
// the organisation is a party to a public one. It returns the number of
// entries in the tree and of the organisation's.
func walkOwn(e *env, ls *logState, c *Client, fn func(i uint64, ev audit.Event, b *api.AuditBody, own bool) error) (total, own uint64, err error) {
	req, err := c.newRequest(e.ctx, http.MethodGet, api.PathAuditBodies+"?size="+strconv.FormatUint(ls.cp.Size, 10), nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	var next *api.AuditBody
	advance := func() error {
		next = nil
		var b api.AuditBody
		if err := dec.Decode(&b); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("the gateway's audit bodies: %w", err)
		}
		next = &b
		return nil
	}
	if err := advance(); err != nil {
		return 0, 0, err
	}
	td := c.ID().TrustDomain().Name()
	total, err = audit.VerifyLog(e.ctx, ls.f, ls.cp, func(i uint64, lf audit.Leaf) error {
		if next != nil && next.Index < i {
			return fmt.Errorf("the gateway sent a body for entry %d, which is not a private entry of the verified log", next.Index)
		}
		if lf.Public != nil {
			mine := slices.Contains(audit.Parties(*lf.Public, ""), td)
			if mine {
				own++
			}
			return fn(i, *lf.Public, nil, mine)
		}
		if next == nil || next.Index != i {
			return nil // another organisation's entry: a commitment only
		}
		b := next
		ev, err := lf.Open(b.Salt, []byte(b.Body))
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if !slices.Contains(audit.Parties(ev, ""), td) {
			return fmt.Errorf("entry %d: the gateway served the body of an entry %s is no party to", i, td)
		}
		own++
		if err := fn(i, ev, b, true); err != nil {
			return err
		}
		return advance()
	})
	if err == nil && next != nil {
		err = fmt.Errorf("the gateway sent a body for entry %d, beyond or outside the verified log", next.Index)
	}
	return total, own, err
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
	n, own, err := walkOwn(e, ls, c, func(uint64, audit.Event, *api.AuditBody, bool) error { return nil })
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
	fmt.Fprintf(e.stdout, "%d entries of %s open against their commitments; the others are commitments only\n",
		own, c.ID().TrustDomain().Name())
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
