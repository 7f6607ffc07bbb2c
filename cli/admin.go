package cli

import (
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
)

// The admin plane (issue 16): revocations and quarantines. Each is one API
// call over mutual TLS; the gateway's policy decides who may (the admins of
// policies/data), and every change is an audit entry.

var adminCommand = &command{
	name:    "admin",
	args:    "revoke|unrevoke|revocations|quarantine|release|quarantines …",
	summary: "revoke identities and quarantine transfers (administrators)",
	help: `Administrators (the policy's admins) act on the running gateway; each change
is an audit entry.

  lex admin revoke ID --reason TEXT
        refuse ID at once: new handshakes fail, and its live HTTPS, HTTP/3 and
        SFTP connections are closed (an upload in flight is cut and resumes
        only if it is unrevoked). Survives a restart.
  lex admin unrevoke ID --reason TEXT
        lift a revocation made here (one in the config file's identity.revoked
        is lifted only by editing the file)
  lex admin revocations [--json]
        the deny list: run-time revocations and the config file's
  lex admin quarantine [--transfer T] [--identity ID] [--matter M]
                       [--since TIME] [--until TIME] --reason TEXT
        stop delivery of the transfers picked (every given filter must match;
        --identity picks what ID sent or receives; TIME is RFC 3339 or YYYY-MM-DD)
  lex admin release   (the same filters) --reason TEXT
        deliver them again
  lex admin quarantines [--json]
        the transfers quarantined, oldest first`,
	run: runAdmin,
}

func runAdmin(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("name a subcommand: revoke, unrevoke, revocations, quarantine, release or quarantines")
	}
	fs := newFlagSet("admin " + args[0])
	reason := fs.String("reason", "", "")
	jsonOut := fs.Bool("json", false, "")
	var q api.QuarantineRequest
	fs.StringVar(&q.Transfer, "transfer", "", "")
	fs.StringVar(&q.Identity, "identity", "", "")
	fs.StringVar(&q.Matter, "matter", "", "")
	since := fs.String("since", "", "")
	until := fs.String("until", "", "")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "revoke", "unrevoke":
		if len(pos) != 1 || *reason == "" {
			return usagef("%s needs one SPIFFE ID and --reason", args[0])
		}
		return e.adminRevoke(args[0], pos[0], *reason, *jsonOut)
	case "revocations":
		return e.adminRevocations(*jsonOut)
	case "quarantine", "release":
		if len(pos) > 0 {
			return usagef("unexpected argument %q: pick transfers with --transfer, --identity, --matter, --since, --until", pos[0])
		}
		if *reason == "" {
			return usagef("%s needs --reason", args[0])
		}
		if q.Since, err = parseWhenFlag("since", *since); err != nil {
			return err
		}
		if q.Until, err = parseWhenFlag("until", *until); err != nil {
			return err
		}
		q.Reason = *reason
		return e.adminQuarantine(args[0], q, *jsonOut)
	case "quarantines":
		return e.adminQuarantines(*jsonOut)
	}
	return usagef("unknown subcommand %q: want revoke, unrevoke, revocations, quarantine, release or quarantines", args[0])
}

// parseWhenFlag is parseWhen for an optional flag: "" is the zero time.
func parseWhenFlag(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := parseWhen(s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--%s %q: want an RFC 3339 time (2026-12-07T09:00:00Z) or a date (2026-12-07)", flagName, s)
}

func (e *env) adminRevoke(op, id, reason string, jsonOut bool) error {
	path := api.PathAdminRevocations
	if op == "unrevoke" {
		path = api.PathAdminUnrevoke
	}
	var out api.Revocation
	if err := e.call(http.MethodPost, path, api.RevokeRequest{ID: id, Reason: reason}, &out); err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(e.stdout, out)
	}
	if op == "revoke" {
		fmt.Fprintf(e.stdout, "revoked %s: new connections are refused; %d live connections closed\n", out.ID, out.ClosedConnections)
	} else {
		fmt.Fprintf(e.stdout, "revocation of %s lifted\n", out.ID)
	}
	fmt.Fprintf(e.stdout, "decision %s\n", out.DecisionID)
	return nil
}

func (e *env) adminRevocations(jsonOut bool) error {
	var out api.RevocationList
	if err := e.call(http.MethodGet, api.PathAdminRevocations, nil, &out); err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(e.stdout, out)
	}
	if len(out.Revocations) == 0 {
		fmt.Fprintln(e.stdout, "no revocations")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tBY\tDATE\tREASON")
	for _, r := range out.Revocations {
		when := ""
		if !r.At.IsZero() {
			when = r.At.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Source, dash(r.By), dash(when), dash(r.Reason))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (e *env) adminQuarantine(op string, q api.QuarantineRequest, jsonOut bool) error {
	path := api.PathAdminQuarantines
	if op == "release" {
		path = api.PathAdminRelease
	}
	var out api.QuarantineResult
	if err := e.call(http.MethodPost, path, q, &out); err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(e.stdout, out)
	}
	verb := map[string]string{"quarantine": "quarantined", "release": "released"}[op]
	fmt.Fprintf(e.stdout, "%s %d transfers", verb, len(out.Transfers))
	if len(out.Transfers) > 0 {
		fmt.Fprintf(e.stdout, ": %s", strings.Join(out.Transfers, " "))
	}
	fmt.Fprintf(e.stdout, "\ndecision %s\n", out.DecisionID)
	return nil
}

func (e *env) adminQuarantines(jsonOut bool) error {
	var out api.QuarantineList
	if err := e.call(http.MethodGet, api.PathAdminQuarantines, nil, &out); err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(e.stdout, out)
	}
	if len(out.Quarantines) == 0 {
		fmt.Fprintln(e.stdout, "no quarantined transfers")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSFER\tSENDER\tMATTER\tBY\tDATE\tREASON")
	for _, q := range out.Quarantines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", q.Transfer, dash(q.Sender), dash(q.Matter), q.By, q.At.Local().Format("2006-01-02 15:04"), q.Reason)
	}
	return tw.Flush()
}
