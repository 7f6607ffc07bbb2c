package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
)

var receiveCommand = &command{
	name:    "receive",
	args:    "ID|--all -o DIR [--ack [--receipt FILE]] [--streams N] [--json]",
	summary: "download, verify, decrypt and unpack a transfer into DIR",
	help: `Checks the sender's signature on the transfer manifest against the trust bundles
before downloading anything, downloads the ciphertext (resuming a partial
download), checks its size and SHA-256 against the signed manifest, decrypts it
with your identity and unpacks it into a staging directory inside DIR, where every
file is checked against the bundle's manifest. Only then are the files moved into
DIR. Existing files are never overwritten; on any failure nothing is left in DIR.

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
	m, signer, err := verifyTransfer(t, r.c.bundles, r.c.ID(), time.Now())
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
	spool, err := r.download(ctx, id, m)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	files, err := unpack(spool, abs, r.ids, m)
	if err != nil {
		return nil, err
	}
	os.Remove(spool)
	return &receiveResult{ID: id, Sender: m.Sender, Matter: m.Matter, ManifestHash: t.Manifest.Hash(), Dir: abs, Files: files}, nil
}

// verifyTransfer checks, before anything is downloaded, that the transfer's manifest
// is signed by a valid SVID of its sender, names me as a recipient, and describes the
// same ciphertext the gateway's record does.
func verifyTransfer(t *api.Transfer, bundles x509bundle.Source, me spiffeid.ID, now time.Time) (api.Manifest, spiffeid.ID, error) {
	m, signer, err := t.Manifest.Verify(bundles, now)
	if err != nil {
		return m, signer, fmt.Errorf("the sender's signature does not check out, refusing to download: %w", err)
	}
	switch {
	case !slices.Contains(m.Recipients, me.String()):
		return m, signer, fmt.Errorf("the signed manifest does not name you (%s) as a recipient", me)
	case t.Sender != "" && t.Sender != m.Sender:
		return m, signer, fmt.Errorf("the gateway says the sender is %s but the signed manifest says %s", t.Sender, m.Sender)
	case t.CiphertextSHA256 != m.CiphertextSHA256 || t.CiphertextSize != m.CiphertextSize:
		return m, signer, errors.New("the gateway's record of the ciphertext differs from the signed manifest")
	case t.ManifestHash != "" && t.ManifestHash != t.Manifest.Hash():
		return m, signer, errors.New("the gateway's manifest hash differs from the signed manifest")
	case t.State != "" && t.State != api.StateReady && t.State != api.StateAcknowledged:
		return m, signer, fmt.Errorf("the transfer is %s, not ready to download", t.State)
	}
	return m, signer, nil
}

// download fetches the ciphertext into cache_dir/incoming/ID.age, resuming a
// partial file, and checks it against the signed manifest.
func (r *receiver) download(ctx context.Context, id string, m api.Manifest) (string, error) {
	dir := filepath.Join(r.cfg.CacheDir, "incoming")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	spool := filepath.Join(dir, id+".age")
	f, err := os.OpenFile(spool, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	defer f.Close()
	var (
		failures int
		sum      string // the whole download's SHA-256, when one fetch saw all of it
	)
	for {
		sum, err = r.fetch(ctx, f, id, m.CiphertextSize)
		if err == nil || ctx.Err() != nil || failures >= uploadAttempts {
			break
		}
		var ae *api.Error
		if errors.As(err, &ae) || handshakeError(err) != nil {
			break
		}
		failures++
		time.Sleep(time.Duration(failures) * 500 * time.Millisecond)
	}
	if err != nil {
		return "", fmt.Errorf("download of %s (run the command again to resume): %w", id, err)
	}
	if sum == "" {
		err = checkCiphertext(f, m)
	} else if sum != m.CiphertextSHA256 {
		err = errMismatch
	}
	if err != nil {
		f.Close()
		os.Remove(spool)
		return "", err
	}
	return spool, nil
}

// fetch appends to f what it lacks of the ciphertext's size bytes. When it fetched
// the whole file in one go it returns its hex SHA-256, hashed on the way in;
// otherwise "" and the caller hashes the file. The file is not fsynced: it is a
// cache, checked against the signed manifest before use.
func (r *receiver) fetch(ctx context.Context, f *os.File, id string, size int64) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := fi.Size()
	if off > size {
		off = 0
	}
	if off == size {
		return "", nil
	}
	if n := downloadStreams(size-off, r.streams, r.reply); n > 1 {
		return "", r.fetchParallel(ctx, f, id, off, size, n)
	}
	body, partial, err := r.c.Download(ctx, id, off)
	if err != nil {
		return "", err
	}
	defer body.Close()
	if !partial {
		off = 0
	}
	if err := f.Truncate(off); err != nil {
		return "", err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return "", err
	}
	p := newProgress(r.e.stderr, "receiving", size, off)
	defer p.done()
	h := newAsyncHash()
	defer h.Sum()
	w := io.MultiWriter(f, p)
	if off == 0 {
		w = io.MultiWriter(f, p, h)
	}
	n, err := io.CopyBuffer(w, io.LimitReader(body, size-off+1), make([]byte, copyBufSize))
	if err != nil {
		return "", err
	}
	if off+n != size {
		return "", fmt.Errorf("got %d bytes of %d", off+n, size)
	}
	if off == 0 {
		return h.Hex(), nil
	}
	return "", nil
}

var errMismatch = errors.New("the downloaded ciphertext does not match the signed manifest (size or SHA-256); it was discarded, nothing was decrypted")

// checkCiphertext compares the downloaded file with the signed manifest.
func checkCiphertext(f *os.File, m api.Manifest) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("hashing the download: %w", err)
	}
	if n != m.CiphertextSize || hex.EncodeToString(h.Sum(nil)) != m.CiphertextSHA256 {
		return errMismatch
	}
	return nil
}

// unpack decrypts spool with ids and delivers its files into dir through a staging
// directory, checking them against the bundle manifest and the signed manifest. On
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
	if m.Content == api.ContentFile {
		ex, err := decryptFile(bufio.NewReaderSize(f, copyBufSize), staging, ids, m)
		if err != nil {
			return nil, err
		}
		return deliver(dir, staging, ex)
	}
	ex, err := decryptAndExtract(bufio.NewReaderSize(f, copyBufSize), staging, ids)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, bf := range ex.files {
		total += bf.Size
	}
	if len(ex.files) != m.FileCount || total != m.PlaintextSize {
		return nil, unsafef("bundle has %d files of %d bytes, the signed manifest says %d of %d",
			len(ex.files), total, m.FileCount, m.PlaintextSize)
	}
	return deliver(dir, staging, ex)
}

// decryptAndExtract decrypts r and extracts the bundle into staging, reading the
// age stream to its end so that its last chunk is authenticated too.
func decryptAndExtract(r io.Reader, staging string, ids []age.Identity) (*extracted, error) {
	pr, err := age.Decrypt(r, ids...)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		return nil, fmt.Errorf("your identity cannot decrypt this transfer: it was encrypted to keys registered before your last keygen, or to someone else (%w)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	ex, err := extractBundle(pr, staging)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, pr); err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return ex, nil
}
