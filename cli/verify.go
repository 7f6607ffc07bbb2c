package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lexgate/lexgate/gateway/audit"
)

var verifyCommand = &command{
	name:    "verify",
	args:    "[--log-key KEY] [--json] RECEIPT|CERTIFICATE",
	summary: "check an audit receipt or a destruction certificate offline",
	help: `Checks a receipt saved by "lex send" or "lex ack" without the gateway: the
checkpoint's signature against the pinned log_key, the entry against its leaf
hash, and the inclusion proof from the entry to the checkpoint's root. It says
which part is wrong when one is, and prints what the entry records.

A destruction certificate ("lex certificate get") is checked the same way:
its statement's signature, its receipt, and that the logged destruction entry
commits to this very statement.

Anyone holding the log's public key can check a receipt the same way, without a
lex config: --log-key takes the key ("lexgate log-key" prints it) instead of
the config's log_key.`,
	run: runVerify,
}

func runVerify(e *env, args []string) error {
	fs := newFlagSet("verify")
	jsonOut := fs.Bool("json", false, "")
	logKey := fs.String("log-key", "", "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one receipt file")
	}
	cfg := &Config{LogKey: *logKey, Path: "--log-key"}
	if *logKey == "" {
		if cfg, err = e.loadConfig(); err != nil {
			return err
		}
	}
	v, err := cfg.logVerifier()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	if audit.IsCertificate(b) { // a destruction certificate (lex certificate get)
		return verifyCertificate(e, cfg, pos[0], b, *jsonOut)
	}
	r, err := audit.ParseReceipt(b)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	ev, cp, err := audit.VerifyReceipt(r, v)
	if err != nil {
		return fmt.Errorf("%s does NOT verify: %w", pos[0], err)
	}
	if *jsonOut {
		return writeJSON(e.stdout, map[string]any{"verified": true, "index": r.Index, "tree_size": cp.Size, "origin": cp.Origin, "event": ev})
	}
	fmt.Fprintf(e.stdout, "%s verifies: entry %d of %s (tree size %d)\n", pos[0], r.Index, cp.Origin, cp.Size)
	fmt.Fprintf(e.stdout, "  %s by %s at %s\n", ev.Kind, ev.Actor, ev.Time.Format("2006-01-02 15:04:05Z"))
	if ev.Transfer != "" {
		fmt.Fprintf(e.stdout, "  transfer %s, matter %s, to %s\n", ev.Transfer, ev.Matter, strings.Join(ev.Recipients, ", "))
	}
	if ev.CiphertextSHA256 != "" {
		fmt.Fprintf(e.stdout, "  ciphertext sha256 %s (%d bytes)\n", ev.CiphertextSHA256, ev.CiphertextSize)
	}
	if ev.Decision != nil {
		fmt.Fprintf(e.stdout, "  decision %s allow=%v\n", ev.Decision.ID, ev.Decision.Allow)
	}
	return nil
}

// sendReceiptPath is where lex send saves its receipt: --receipt, or
// lex-receipt-ID.json in the directory of the first PATH.
func sendReceiptPath(o *sendOptions, id string) (string, error) {
	if o.receipt != "" {
		return o.receipt, nil
	}
	abs, err := filepath.Abs(o.paths[0])
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(abs), "lex-receipt-"+id+".json"), nil
}

// ackReceiptPath is where an acknowledgement's receipt goes: choice, or
// lex-receipt-ID-ack.json in dir.
func ackReceiptPath(choice, dir, id string) string {
	if choice != "" {
		return choice
	}
	return filepath.Join(dir, "lex-receipt-"+id+"-ack.json")
}

// saveAckReceipt fetches, verifies and saves the receipt of the caller's
// acknowledgement of id, and returns where. Without log_key it warns and saves nothing.
func saveAckReceipt(e *env, cfg *Config, c *Client, id, path string) (string, error) {
	if cfg.LogKey == "" {
		fmt.Fprintf(e.stderr, "warning: no log_key in %s: the acknowledgement's audit receipt is not fetched\n", cfg.Path)
		return "", nil
	}
	if _, err := c.fetchReceipt(e.ctx, cfg, id, path); err != nil {
		return "", fmt.Errorf("acknowledged %s, but: %w", id, err)
	}
	return path, nil
}
