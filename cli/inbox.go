package cli

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/lexgate/lexgate/gateway/api"
)

var inboxCommand = &command{
	name:    "inbox",
	args:    "[--json] [--watch [--exec CMD]]",
	summary: "list the transfers waiting for you",
	help: `Lists the ready transfers addressed to you that you have not acknowledged, oldest
first. Fetch one with "lex receive ID -o DIR".

  --json       print the gateway's answer as JSON (with --watch: one transfer per line)
  --watch      keep running: print each transfer as it arrives (those waiting first),
               over a long poll that reconnects on its own after a network or gateway
               outage; stop with Ctrl-C
  --exec CMD   with --watch, run CMD through the shell for each new transfer, {id}
               replaced by its ID, e.g. --exec 'lex receive {id} -o /ingest --ack'`,
	run: runInbox,
}

func runInbox(e *env, args []string) error {
	fs := newFlagSet("inbox")
	jsonOut := fs.Bool("json", false, "")
	watch := fs.Bool("watch", false, "")
	execCmd := fs.String("exec", "", "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *execCmd != "" && !*watch {
		return usagef("--exec needs --watch")
	}
	if *watch {
		return watchInbox(e, *jsonOut, *execCmd)
	}
	_, c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ir, err := c.Inbox(e.ctx)
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	if *jsonOut {
		if ir.Transfers == nil {
			ir.Transfers = []api.Transfer{}
		}
		return writeJSON(e.stdout, ir)
	}
	if len(ir.Transfers) == 0 {
		fmt.Fprintln(e.stdout, "no transfers waiting")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFROM\tMATTER\tLABELS\tFILES\tSIZE\tDATE\tNOTE")
	for _, t := range ir.Transfers {
		labels := strings.Join(t.Labels, ",")
		if labels == "" {
			labels = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.ID, t.Sender, t.Matter, labels,
			t.FileCount, humanSize(t.PlaintextSize), t.Created.Local().Format("2006-01-02 15:04"), obligationNote(t))
	}
	return tw.Flush()
}

var ackCommand = &command{
	name:    "ack",
	args:    "[--receipt FILE] [--json] ID",
	summary: "acknowledge receipt of a transfer",
	help: `Tells the gateway you received the transfer: it leaves your inbox and a delivery
receipt is written to the audit log. "lex receive --ack" does this after a
successful receive (and saves the receipt beside the received files). The audit
receipt of the acknowledgement is saved as lex-receipt-ID-ack.json in
cache_dir/receipts/, or --receipt FILE.`,
	run: runAck,
}

func runAck(e *env, args []string) error {
	fs := newFlagSet("ack")
	jsonOut := fs.Bool("json", false, "")
	receipt := fs.String("receipt", "", "")
	pos, err := parseArgs(fs, args)
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
	if err := c.Ack(e.ctx, id); err != nil {
		return fmt.Errorf("ack %s: %w", id, err)
	}
	path, err := saveAckReceipt(e, cfg, c, id, ackReceiptPath(*receipt, filepath.Join(cfg.CacheDir, "receipts"), id))
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(e.stdout, map[string]any{"id": id, "acknowledged": true, "receipt": path})
	}
	fmt.Fprintf(e.stdout, "acknowledged %s\n", id)
	if path != "" {
		fmt.Fprintf(e.stdout, "receipt: %s\n", path)
	}
	return nil
}

var transferIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// oneTransferID checks that pos is one well-formed transfer ID. IDs become file
// names in the cache, so the alphabet is narrow.
func oneTransferID(pos []string) (string, error) {
	if len(pos) != 1 {
		return "", usagef("want exactly one transfer ID, got %d arguments", len(pos))
	}
	if !transferIDRE.MatchString(pos[0]) {
		return "", usagef("%s is not a transfer ID", strconv.Quote(pos[0]))
	}
	return pos[0], nil
}
