package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
)

// Governance commands (issue 14): four-eyes recipients of a matter, legal
// holds, and destruction certificates. Each is one API call; the gateway's
// policy decides who may do what, and every step is in the audit log.

var matterCommand = &command{
	name:    "matter",
	args:    "request-recipient|pending|approve …",
	summary: "add a recipient to a matter, with a second person's approval",
	help: `Adding a recipient to a matter needs two people (four-eyes): one asks, an
approver of the matter's organisation confirms; nobody can approve their own
request. Both steps are in the audit log, and the policy decides who may do each.

  lex matter request-recipient --matter M --recipient ID|TRUST_DOMAIN --reason TEXT
        ask; prints the request id
  lex matter pending [--json]
        the requests of your organisation waiting for approval
  lex matter approve REQUEST_ID
        approve one (not your own): the recipient may receive the matter's transfers`,
	run: runMatter,
}

var holdCommand = &command{
	name:    "hold",
	args:    "place|lift|list [--matter M --reason TEXT] [--json]",
	summary: "place, lift or list legal holds on matters",
	help: `A legal hold on a matter suspends the deletion of its transfers: the retention
sweeper keeps every transfer of a held matter, even past its expiry (listed as
"held past expiry"), until the hold is lifted; the next sweep then deletes
what expired. Records managers place and lift holds (the policy decides);
both are audit entries.

  lex hold place --matter M --reason TEXT
  lex hold lift  --matter M --reason TEXT
  lex hold list  [--json]    holds placed by your organisation, with what they keep`,
	run: runHold,
}

var certificateCommand = &command{
	name:    "certificate",
	args:    "get ID [-o FILE] [--json]",
	summary: "fetch the destruction certificate of a deleted transfer",
	help: `When the gateway deletes a transfer (its retention expired, or every recipient
acknowledged it with purge_on_ack) it issues a destruction certificate: a
statement of what it deleted and when, whether it ever held a key that could
decrypt it, signed with the audit log's key, with the receipt of the
destruction's audit entry. Its sender and recipients fetch it here; it is
checked against the pinned log_key before it is saved (lex-certificate-ID.json
in the current directory, or -o FILE), and "lex verify FILE" checks it again
offline, anywhere.`,
	run: runCertificate,
}

func runMatter(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: request-recipient, pending or approve")
	}
	fs := newFlagSet("matter " + args[0])
	matter := fs.String("matter", "", "")
	recipient := fs.String("recipient", "", "")
	reason := fs.String("reason", "", "")
	jsonOut := fs.Bool("json", false, "")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "request-recipient":
		if *matter == "" || *recipient == "" || *reason == "" || len(pos) > 0 {
			return usagef("request-recipient needs --matter, --recipient and --reason")
		}
		var out api.MatterRequest
		in := api.MatterRequestCreate{Matter: *matter, Recipient: *recipient, Reason: *reason}
		if err := e.call(http.MethodPost, api.PathMatterRequests, in, &out); err != nil {
			return err
		}
		return e.printRequest(out, *jsonOut, "requested")
	case "pending":
		var out api.MatterRequestList
		if err := e.call(http.MethodGet, api.PathMatterRequests, nil, &out); err != nil {
			return err
		}
		if *jsonOut {
			return writeJSON(e.stdout, out)
		}
		if len(out.Requests) == 0 {
			fmt.Fprintln(e.stdout, "no requests waiting for approval")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REQUEST\tMATTER\tRECIPIENT\tREQUESTED BY\tDATE\tREASON")
		for _, r := range out.Requests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Matter, r.Recipient, r.RequestedBy,
				r.Created.Local().Format("2006-01-02 15:04"), r.Reason)
		}
		return tw.Flush()
	case "approve":
		if len(pos) != 1 {
			return usagef("approve takes one REQUEST_ID")
		}
		var out api.MatterRequest
		if err := e.call(http.MethodPost, api.PathMatterRequests+"/"+url.PathEscape(pos[0])+"/approve", nil, &out); err != nil {
			return err
		}
		return e.printRequest(out, *jsonOut, "approved")
	}
	return usagef("unknown subcommand %q: want request-recipient, pending or approve", args[0])
}

func (e *env) printRequest(r api.MatterRequest, jsonOut bool, what string) error {
	if jsonOut {
		return writeJSON(e.stdout, r)
	}
	switch what {
	case "requested":
		fmt.Fprintf(e.stdout, "request %s: add %s to matter %s — waiting for an approver (lex matter approve %s)\n", r.ID, r.Recipient, r.Matter, r.ID)
	default:
		fmt.Fprintf(e.stdout, "request %s approved by %s: %s may receive transfers of matter %s\n", r.ID, r.ApprovedBy, r.Recipient, r.Matter)
	}
	if r.DecisionID != "" {
		fmt.Fprintf(e.stdout, "decision %s\n", r.DecisionID)
	}
	return nil
}

func runHold(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: place, lift or list")
	}
	fs := newFlagSet("hold " + args[0])
	matter := fs.String("matter", "", "")
	reason := fs.String("reason", "", "")
	jsonOut := fs.Bool("json", false, "")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	var out api.Hold
	switch args[0] {
	case "place", "lift":
		if *matter == "" || *reason == "" {
			return usagef("%s needs --matter and --reason", args[0])
		}
		path := api.PathHolds
		in := api.HoldRequest{Matter: *matter, Reason: *reason}
		if args[0] == "lift" {
			path, in.Matter = api.PathHolds+"/"+url.PathEscape(*matter)+"/lift", ""
		}
		if err := e.call(http.MethodPost, path, in, &out); err != nil {
			return err
		}
		if *jsonOut {
			return writeJSON(e.stdout, out)
		}
		verb := "placed on"
		if args[0] == "lift" {
			verb = "lifted from"
		}
		fmt.Fprintf(e.stdout, "legal hold %s matter %s by %s\ndecision %s\n", verb, out.Matter, out.By, out.DecisionID)
		return nil
	case "list":
		var list api.HoldList
		if err := e.call(http.MethodGet, api.PathHolds, nil, &list); err != nil {
			return err
		}
		if *jsonOut {
			return writeJSON(e.stdout, list)
		}
		if len(list.Holds) == 0 {
			fmt.Fprintln(e.stdout, "no legal holds")
			return nil
		}
		for _, h := range list.Holds {
			fmt.Fprintf(e.stdout, "%s  held since %s by %s: %s\n", h.Matter, h.At.Local().Format("2006-01-02 15:04"), h.By, h.Reason)
			for _, t := range h.HeldPastExpiry {
				fmt.Fprintf(e.stdout, "  %s  held past expiry (expired %s), from %s\n", t.ID, t.ExpiresAt.Local().Format("2006-01-02 15:04:05"), t.Sender)
			}
		}
		return nil
	}
	return usagef("unknown subcommand %q: want place, lift or list", args[0])
}

func runCertificate(e *env, args []string) error {
	if len(args) == 0 || args[0] != "get" {
		return usagef("usage: lex certificate get ID [-o FILE]")
	}
	fs := newFlagSet("certificate get")
	out := fs.String("o", "", "")
	jsonOut := fs.Bool("json", false, "")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	id, err := oneTransferID(pos)
	if err != nil {
		return err
	}
	cfg, c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	v, err := cfg.logVerifier()
	if err != nil {
		return fmt.Errorf("a certificate is checked against the pinned log_key: %w", err)
	}
	var cert audit.Certificate
	if err := c.call(e.ctx, http.MethodGet, transferPath(id, "/certificate"), nil, &cert); err != nil {
		return fmt.Errorf("certificate of %s: %w", id, err)
	}
	st, _, _, err := audit.VerifyCertificate(&cert, v)
	if err != nil {
		return fmt.Errorf("the certificate of %s from the gateway does NOT verify: %w", id, err)
	}
	path := *out
	if path == "" {
		path = filepath.Join(".", "lex-certificate-"+id+".json")
	}
	if err := writeFileAtomic(path, cert.Marshal()); err != nil {
		return fmt.Errorf("save certificate: %w", err)
	}
	if *jsonOut {
		return writeJSON(e.stdout, map[string]any{"certificate": path, "statement": st})
	}
	fmt.Fprintf(e.stdout, "destruction certificate of %s saved to %s (verified)\n", id, path)
	printStatement(e, st)
	return nil
}

// printStatement prints what a destruction statement says.
func printStatement(e *env, st audit.Statement) {
	fmt.Fprintf(e.stdout, "  transfer %s, matter %s, from %s to %s\n", st.Transfer, st.Matter, st.Sender, strings.Join(st.Recipients, ", "))
	fmt.Fprintf(e.stdout, "  ciphertext sha256 %s (%d bytes), stored %s, destroyed %s\n", st.CiphertextSHA256, st.CiphertextSize,
		st.StoredAt.Format(time.RFC3339), st.DestroyedAt.Format(time.RFC3339))
	fmt.Fprintf(e.stdout, "  why: %s (%s)\n", st.Why, st.Detail)
	held := "no: only the recipients' own keys could decrypt it"
	if st.GatewayHeldKey {
		held = "YES, for the custodial account(s) " + strings.Join(st.KeyHeldFor, ", ")
	}
	fmt.Fprintf(e.stdout, "  gateway held a decryption key: %s\n", held)
}

// verifyCertificate is lex verify for a destruction certificate file.
func verifyCertificate(e *env, cfg *Config, name string, b []byte, jsonOut bool) error {
	v, err := cfg.logVerifier()
	if err != nil {
		return err
	}
	c, err := audit.ParseCertificate(b)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	st, ev, cp, err := audit.VerifyCertificate(c, v)
	if err != nil {
		return fmt.Errorf("%s does NOT verify: %w", name, err)
	}
	if jsonOut {
		return writeJSON(e.stdout, map[string]any{"verified": true, "index": c.Receipt.Index, "tree_size": cp.Size,
			"origin": cp.Origin, "statement": st, "event": ev})
	}
	fmt.Fprintf(e.stdout, "%s verifies: destruction certificate signed by %s, logged as entry %d (tree size %d)\n",
		name, cp.Origin, c.Receipt.Index, cp.Size)
	printStatement(e, st)
	return nil
}

// call dials, makes one JSON API call, and closes.
func (e *env) call(method, path string, in, out any) error {
	_, c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.call(e.ctx, method, path, in, out)
}

// obligationNote is what lex inbox says about a transfer's obligations:
// held past expiry, expired, or the downloads used of those allowed.
func obligationNote(t api.Transfer) string {
	o := t.Obligations
	switch {
	case t.HeldPastExpiry:
		return "held past expiry (legal hold)"
	case o != nil && !o.ExpiresAt.IsZero() && !time.Now().Before(o.ExpiresAt):
		return "expired"
	case o != nil && o.MaxDownloads > 0:
		return fmt.Sprintf("downloads %d of %d", t.Downloads, o.MaxDownloads)
	}
	return "-"
}
