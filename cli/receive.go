package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/internal/agestream"
)

var receiveCommand = &command{
	name:    "receive",
	args:    "ID|--all -o DIR [--ack [--receipt FILE]] [--streams N] [--json]",
	summary: "download, verify, decrypt and unpack a transfer into DIR",
	help: `Checks the sender's signature on the transfer manifest against the trust bundles
before downloading anything, then downloads the ciphertext (resuming a partial
download) and, as it arrives, hashes it, decrypts it with your identity and
unpacks it into a staging directory inside DIR, checking every file against the
bundle's manifest. Only when the whole ciphertext's size and SHA-256 match the
signed manifest and every file matches are the files moved into DIR. Existing
files are never overwritten; on any failure nothing is left in DIR.

  -o DIR   where to put the files (created if missing)
  --all    receive every transfer waiting in your inbox, each into DIR/ID
  --ack    acknowledge receipt after a successful receive, and save the audit
           receipt of the acknowledgement (lex-receipt-ID-ack.json beside DIR,
           or --receipt FILE)
  --streams N  fetch N ranges of the ciphertext at once, over separate
           connections (TCP) or streams (QUIC); the default is 4 for
           downloads of 32 MiB or more, which keeps a long lossy link full
  --json   print the result as JSON`,
	run: runReceive,
}

// receiveResult is what "lex receive --json" prints.
type receiveResult struct {
	ID           string   `json:"id"`
	Sender       string   `json:"sender"`
	Matter       string   `json:"matter"`
	ManifestHash string   `json:"manifest_hash"`
	Dir          string   `json:"dir"`
	Files        []string `json:"files"`
	Acknowledged bool     `json:"acknowledged"`
	Receipt      string   `json:"receipt,omitempty"`
}

func runReceive(e *env, args []string) error {
	fs := newFlagSet("receive")
	dir := fs.String("o", "", "")
	ack := fs.Bool("ack", false, "")
	receipt := fs.String("receipt", "", "")
	jsonOut := fs.Bool("json", false, "")
	streams := fs.Int("streams", 0, "")
	all := fs.Bool("all", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *all {
		return receiveAll(e, args, pos, *dir, *receipt)
	}
	id, err := oneTransferID(pos)
	if err != nil {
		return err
	}
	if *dir == "" {
		return usagef("-o DIR is required")
	}
	if *streams < 0 || *streams > 64 {
		return usagef("--streams %d: want 1 to 64", *streams)
	}
	cfg, c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ids, err := readIdentities(cfg.Identity)
	if err != nil {
		return err
	}
	info := e.stdout
	if *jsonOut {
		info = e.stderr
	}
	r := &receiver{e: e, cfg: cfg, c: c, ids: ids, info: info, streams: *streams}
	res, err := r.run(e.ctx, id, *dir)
	if err != nil {
		return err
	}
	if *ack {
		if err := c.Ack(e.ctx, id); err != nil {
			return fmt.Errorf("received, but the acknowledgement failed (run \"lex ack %s\"): %w", id, err)
		}
		res.Acknowledged = true
		abs, _ := filepath.Abs(res.Dir)
		if res.Receipt, err = saveAckReceipt(e, cfg, c, id, ackReceiptPath(*receipt, filepath.Dir(abs), id)); err != nil {
			return err
		}
	}
	if *jsonOut {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "wrote %d file(s) to %s:\n", len(res.Files), res.Dir)
	for _, f := range res.Files {
		fmt.Fprintf(e.stdout, "  %s\n", f)
	}
	if res.Acknowledged {
		fmt.Fprintf(e.stdout, "acknowledged %s\n", id)
		if res.Receipt != "" {
			fmt.Fprintf(e.stdout, "receipt: %s\n", res.Receipt)
		}
	}
	return nil
}

// receiver runs one "lex receive".
type receiver struct {
	e    *env
	cfg  *Config
	c    *Client
	ids  []age.Identity
	info io.Writer
	// streams is --streams: ranges fetched at once, 0 for the default.
	streams int
	// reply is how long the transfer's metadata took to come: about an RTT.
	reply time.Duration
}

func (r *receiver) run(ctx context.Context, id, dir string) (*receiveResult, error) {
	start := time.Now()
	t, err := r.c.Transfer(ctx, id)
	r.reply = time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("transfer %s: %w", id, err)
	}
	m, signer, at, err := verifyTransfer(t, r.c.ids, r.c.ID())
	if err != nil {
		return nil, fmt.Errorf("transfer %s: %w", id, err)
	}
	if m.SealedBy != "" {
		// A legacy sender uploaded plaintext over SFTP; the gateway encrypted it
		// and signed for it. Only the gateway this config pins may do that.
		if m.SealedBy != r.cfg.GatewayID {
			return nil, fmt.Errorf("transfer %s: sealed on ingest by %s, which is not your gateway (%s); refusing it", id, m.SealedBy, r.cfg.GatewayID)
		}
		fmt.Fprintf(r.info, "from %s, sealed on ingest by %s (signature verified), matter %s\n", m.Sender, signer, m.Matter)
	} else {
		fmt.Fprintf(r.info, "from %s (signature verified), matter %s\n", signer, m.Matter)
	}
	fmt.Fprintf(r.info, "signed by %s with a certificate valid at signing time, %s\n", signer, at.UTC().Format(time.RFC3339))
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	files, err := r.receiveInto(ctx, id, m, abs)
	if err != nil {
		return nil, err
	}
	return &receiveResult{ID: id, Sender: m.Sender, Matter: m.Matter, ManifestHash: t.Manifest.Hash(), Dir: abs, Files: files}, nil
}

// verifyTransfer checks, before anything is downloaded, that the transfer's manifest
// is signed by an SVID of its sender that was valid when the gateway accepted the
// signature (api.Transfer.VerifyManifest: not now, so a short-lived SVID that
// expired since still vouches for what it signed), names me as a recipient, and
// describes the same ciphertext the gateway's record does. It returns the time the
// signature was judged at.
func verifyTransfer(t *api.Transfer, bundles x509bundle.Source, me spiffeid.ID) (api.Manifest, spiffeid.ID, time.Time, error) {
	m, signer, at, err := t.VerifyManifest(bundles)
	if err != nil {
		return m, signer, at, fmt.Errorf("the sender's signature does not check out, refusing to download: %w", err)
	}
	switch {
	case !slices.Contains(m.Recipients, me.String()):
		return m, signer, at, fmt.Errorf("the signed manifest does not name you (%s) as a recipient", me)
	case t.Sender != "" && t.Sender != m.Sender:
		return m, signer, at, fmt.Errorf("the gateway says the sender is %s but the signed manifest says %s", t.Sender, m.Sender)
	case t.CiphertextSHA256 != m.CiphertextSHA256 || t.CiphertextSize != m.CiphertextSize:
		return m, signer, at, errors.New("the gateway's record of the ciphertext differs from the signed manifest")
	case t.ManifestHash != "" && t.ManifestHash != t.Manifest.Hash():
		return m, signer, at, errors.New("the gateway's manifest hash differs from the signed manifest")
	case t.State != "" && t.State != api.StateReady && t.State != api.StateAcknowledged:
		return m, signer, at, fmt.Errorf("the transfer is %s, not ready to download", t.State)
	}
	return m, signer, at, nil
}

var errMismatch = errors.New("the downloaded ciphertext does not match the signed manifest (size or SHA-256); it was discarded and nothing was delivered; run the command again to download it afresh")

// unpack decrypts the ciphertext file spool with ids and delivers its files into
// dir through a staging directory, checking them against the bundle manifest and
// the signed manifest, as receiveInto does with a ciphertext on its way in. On
// any error the staging directory is removed and dir is left as it was.
func unpack(spool, dir string, ids []age.Identity, m api.Manifest) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	staging, err := os.MkdirTemp(dir, ".lex-staging-")
	if err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	defer os.RemoveAll(staging)
	f, err := os.Open(spool)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ex, err := decryptInto(bufio.NewReaderSize(f, copyBufSize), staging, ids, m, nil)
	if err != nil {
		return nil, err
	}
	return deliver(dir, staging, ex)
}

// decryptAndExtract decrypts r and extracts the bundle into staging, reading the
// age stream to its end so that its last chunk is authenticated too. It takes
// checkpoints with ck, which may be nil.
func decryptAndExtract(r io.Reader, staging string, ids []age.Identity, ck *checkpointer) (*extracted, error) {
	pr, err := openPayload(r, ids)
	if err != nil {
		return nil, err
	}
	ex, err := resumeBundle(pr, staging, nil, ck)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return ex, nil
}

// openPayload reads the age header of r and returns its plaintext, decrypted
// by agestream into the reader's buffers (age's own reader allocates and
// copies every 64 KiB chunk).
func openPayload(r io.Reader, ids []age.Identity) (io.Reader, error) {
	pr, err := agestream.NewReader(r, ids...)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		return nil, fmt.Errorf("your identity cannot decrypt this transfer: it was encrypted to keys registered before your last keygen, or to someone else (%w)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return pr, nil
}
