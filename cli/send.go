package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
)

// defaultChunk is the size of one PATCH of ciphertext.
const defaultChunk = 256 << 20

// minChunk is the smallest --chunk: the gateway checks the age header before it
// keeps a byte, so the first request must carry all of it (up to 256 KiB).
const minChunk = 1 << 20

// uploadAttempts bounds the retries that do not wait out an outage (those last
// the client's reconnect window): offset conflicts in a row, download retries.
const uploadAttempts = 4

var sendCommand = &command{
	name:    "send",
	args:    "--to SPIFFE_ID[,…] --matter M [--label L]… [--region XX]… [--chunk SIZE] [--streams N] [--receipt FILE] [--json] PATH…",
	summary: "encrypt files and directories to recipients and upload them",
	help: `Bundles the PATHs (files and directories; entries are named from each PATH's
base name) into a deterministic tar with a manifest of per-file SHA-256 hashes,
and encrypts it with age to every recipient's registered keys. The gateway's
policy decides first, on a manifest signed with your SVID; the ciphertext is
then uploaded in resumable chunks while it is being encrypted, and the transfer
is sealed with the final signed manifest, which carries the ciphertext's
SHA-256. If it is interrupted, run the same command again: it resumes where the
gateway's copy ends. Symbolic links, devices and FIFOs in the
input are refused (lex never follows links: name the target instead).

  --to IDS       recipients' SPIFFE IDs, comma-separated or repeated
  --matter M     the client matter the bundle belongs to
  --label L      a label such as privileged or personal-data (repeatable)
  --region XX    data subjects' region, ISO 3166 code or EU (repeatable)
  --chunk SIZE   upload chunk size, at least 1MiB (default 256MiB)
  --streams N    upload N ranges of the ciphertext at once, over separate
                 connections; the default is 4 for a large bundle (32MiB or
                 more) to a far gateway over TCP, else 1
  --receipt FILE where to save the audit receipt (default lex-receipt-ID.json
                 next to the first PATH); check it with "lex verify FILE"
  --json         print the transfer as JSON

Before encrypting, lex checks that each recipient's keys are the latest
registration the gateway's audit log records (key transparency), and refuses
to send when the log is inconsistent with the checkpoint it saw before.

Exit code 3 means the policy refused the transfer; the reasons are printed.`,
	run: runSend,
}

// sendOptions is a parsed "lex send" command line.
type sendOptions struct {
	to      []spiffeid.ID
	matter  string
	labels  []string
	regions []string
	chunk   int64
	streams int // --streams: ranges uploaded at once, 0 for the default
	paths   []string
	receipt string
}

func parseSendArgs(args []string) (*sendOptions, bool, error) {
	fs := newFlagSet("send")
	var to, labels, regions listFlag
	chunk := sizeFlag(defaultChunk)
	fs.Var(&to, "to", "")
	matter := fs.String("matter", "", "")
	fs.Var(&labels, "label", "")
	fs.Var(&regions, "region", "")
	fs.Var(&chunk, "chunk", "")
	jsonOut := fs.Bool("json", false, "")
	receipt := fs.String("receipt", "", "")
	streams := fs.Int("streams", 0, "")
	paths, err := parseArgs(fs, args)
	if err != nil {
		return nil, false, err
	}
	o := &sendOptions{matter: *matter, labels: labels, chunk: int64(chunk), streams: *streams, paths: paths, receipt: *receipt}
	switch {
	case len(to) == 0:
		return nil, false, usagef("--to is required")
	case o.matter == "":
		return nil, false, usagef("--matter is required")
	case len(paths) == 0:
		return nil, false, usagef("name at least one file or directory to send")
	case o.chunk < minChunk:
		return nil, false, usagef("--chunk %s is too small: the first chunk must carry the whole age header; use 1MiB or more", humanSize(o.chunk))
	case o.streams < 0 || o.streams > 64:
		return nil, false, usagef("--streams %d: want 1 to 64", o.streams)
	}
	for _, s := range to {
		id, err := spiffeid.FromString(s)
		if err != nil {
			return nil, false, usagef("--to %q is not a SPIFFE ID: %v", s, err)
		}
		o.to = append(o.to, id)
	}
	for _, r := range regions {
		o.regions = append(o.regions, strings.ToUpper(r))
	}
	return o, *jsonOut, nil
}

// sendResult is what "lex send --json" prints.
type sendResult struct {
	ID             string   `json:"id"`
	State          string   `json:"state"`
	ManifestHash   string   `json:"manifest_hash"`
	Recipients     []string `json:"recipients"`
	Matter         string   `json:"matter"`
	FileCount      int      `json:"file_count"`
	PlaintextSize  int64    `json:"plaintext_size"`
	CiphertextSize int64    `json:"ciphertext_size"`
	Resumed        bool     `json:"resumed"`
	Transport      string   `json:"transport"`
	// BytesSent is the ciphertext this run put on the wire: more than
	// CiphertextSize by what was sent again after an interruption, less when
	// it resumed a send the gateway already held part of.
	BytesSent int64  `json:"bytes_sent"`
	Receipt   string `json:"receipt"`   // the saved audit receipt file
	LogIndex  uint64 `json:"log_index"` // the upload's entry in the audit log
}

func runSend(e *env, args []string) error {
	if _, ok := e.stderr.(*os.File); !ok { // parallel ranges report from several goroutines
		e.stderr = &lockedWriter{w: e.stderr} // (a terminal stays an *os.File, for the progress bar)
	}
	o, jsonOut, err := parseSendArgs(args)
	if err != nil {
		return err
	}
	cfg, c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if c.log == nil { // no pinned log key: keys and receipts cannot be checked
		if _, err := cfg.logVerifier(); err != nil {
			return err
		}
	}
	s := &sender{e: e, cfg: cfg, c: c, o: o}
	res, err := s.run(e.ctx)
	if err != nil {
		return err
	}
	if res.Receipt, err = sendReceiptPath(o, res.ID); err != nil {
		return err
	}
	r, err := c.fetchReceipt(e.ctx, cfg, res.ID, res.Receipt)
	if err != nil {
		return fmt.Errorf("sent %s, but: %w", res.ID, err)
	}
	res.LogIndex = r.Index
	if jsonOut {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "sent %s: %d file(s), %s, matter %s, to %s\n", res.ID, res.FileCount,
		humanSize(res.PlaintextSize), res.Matter, strings.Join(res.Recipients, ", "))
	fmt.Fprintf(e.stdout, "receipt: %s (audit log entry %d)\n", res.Receipt, res.LogIndex)
	return nil
}

// sender runs one "lex send".
type sender struct {
	e   *env
	cfg *Config
	c   *Client
	o   *sendOptions

	sent atomic.Int64 // ciphertext bytes handed to the transport
}

// counted returns r counting what is read from it into s.sent.
func (s *sender) counted(r io.Reader) io.Reader { return &countingReader{r: r, n: &s.sent} }

// countingReader adds what is read through it to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func (s *sender) recipients() []string {
	rs := make([]string, len(s.o.to))
	for i, id := range s.o.to {
		rs[i] = id.String()
	}
	return rs
}

// draft is the manifest before encryption; validating it early catches a bad matter
// or label before a large bundle is encrypted.
func (s *sender) draft(in *bundleInputs) api.Manifest {
	return api.Manifest{
		Version:          api.ManifestVersion,
		Sender:           s.c.ID().String(),
		Recipients:       s.recipients(),
		Matter:           s.o.matter,
		Labels:           s.o.labels,
		Regions:          s.o.regions,
		FileCount:        in.files,
		PlaintextSize:    in.bytes,
		CiphertextSize:   1,
		CiphertextSHA256: strings.Repeat("0", 64),
		Created:          time.Now().UTC().Truncate(time.Second),
	}
}

func (s *sender) run(ctx context.Context) (*sendResult, error) {
	in, err := collectInputs(s.o.paths)
	if err != nil {
		return nil, err
	}
	draft := s.draft(in)
	if err := draft.Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	dir, err := outgoingDir(s.cfg)
	if err != nil {
		return nil, err
	}
	for _, p := range pruneStates(dir, staleAfter, time.Now()) {
		s.e.verbosef("removed the state of a send abandoned over %v ago: %s", staleAfter, p)
	}
	key := stateKey(sendKeyInput{sender: draft.Sender, gateway: s.cfg.Gateway, recipients: draft.Recipients,
		labels: s.o.labels, rgn: s.o.regions, matter: s.o.matter, in: in})
	st, err := loadState(dir, key)
	if err != nil {
		return nil, err
	}
	var t *api.Transfer
	if st != nil {
		if t, err = s.resume(ctx, dir, st); err != nil {
			return nil, err
		}
	}
	resumed := t != nil
	if !resumed {
		if st, t, err = s.stream(ctx, dir, key, in, draft); err != nil {
			return nil, err
		}
	}
	st.remove(dir)
	m, _ := st.Final.Decode()
	return &sendResult{
		ID: t.ID, State: api.StateReady, ManifestHash: st.Final.Hash(), Recipients: m.Recipients,
		Matter: m.Matter, FileCount: m.FileCount, PlaintextSize: m.PlaintextSize,
		CiphertextSize: m.CiphertextSize, Resumed: resumed, Transport: s.c.Transport(),
		BytesSent: s.sent.Load(),
	}, nil
}

// fetchRecipients looks up every addressee's registered keys and chooses what to
// encrypt to.
func (s *sender) fetchRecipients(ctx context.Context) ([]age.Recipient, error) {
	var sets []*keyset
	for _, id := range s.o.to {
		kr, err := s.c.Keys(ctx, id)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
			return nil, fmt.Errorf("%s has no registered age key: ask them to run \"lex keygen\" and \"lex register\"", id)
		}
		if err != nil {
			return nil, fmt.Errorf("keys of %s: %w", id, err)
		}
		if s.c.log == nil {
			return nil, errors.New("the gateway's audit log could not be followed, so its keys cannot be checked")
		}
		if err := s.c.checkKeys(ctx, s.c.log, kr); err != nil {
			return nil, err
		}
		if err := s.c.checkOwnerSigned(s.e, id, kr); err != nil {
			return nil, err
		}
		ks, err := parseKeyset(id.String(), kr.Recipients)
		if err != nil {
			return nil, err
		}
		sets = append(sets, ks)
	}
	recips, classic, err := chooseRecipients(sets)
	if err != nil {
		return nil, err
	}
	if classic {
		fmt.Fprintln(s.e.stderr, "warning: not every recipient has a post-quantum key; encrypting to X25519 keys only")
	}
	return recips, nil
}

// mbps is n bytes over d in MB/s.
func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / max(d.Seconds(), 1e-9) }

// countWriter counts the bytes written to it.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// submit posts the signed manifest that opens the transfer. A refusal, or a
// manifest the gateway rejects, deletes the state and spool: running the command
// again starts afresh.
func (s *sender) submit(ctx context.Context, dir string, st *sendState) (*api.Transfer, error) {
	t, err := s.c.CreateTransfer(ctx, st.Intent)
	var ae *api.Error
	if errors.As(err, &ae) && (ae.Code == api.CodeDenied || ae.Code == api.CodeBadRequest) {
		st.remove(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the transfer: %w", err)
	}
	if st.TransferID != t.ID {
		st.TransferID = t.ID
		if err := st.save(dir); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// upload sends the spool from the gateway's durable offset on, in chunks.
func (s *sender) upload(ctx context.Context, id, spool string, size int64) error {
	f, err := os.Open(spool)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	asked := time.Now()
	off, held, err := s.c.UploadProgress(ctx, id)
	if err != nil {
		return fmt.Errorf("upload offset of %s: %w", id, err)
	}
	if streams, why := s.uploadStreams(size-off, time.Since(asked)); streams > 1 {
		s.e.verbosef("upload: %d streams (%s)", streams, why)
		return s.uploadRanges(ctx, id, spool, completeSpool(size), size, off, held, streams, true)
	}
	p := newProgress(s.e.stderr, "uploading", size, off)
	defer p.done()
	r := retrier{c: s.c, what: "upload of " + id}
	conflicts := 0
	for off < size {
		n := min(s.o.chunk, size-off)
		body := s.counted(io.TeeReader(io.NewSectionReader(f, off, n), p))
		next, err := s.c.UploadChunk(ctx, id, off, body, n)
		var ae *api.Error
		switch {
		case errors.As(err, &ae) && ae.Code == api.CodeConflict && conflicts < uploadAttempts:
			conflicts++
			next = ae.Offset
		case err != nil && r.again(ctx, err):
			// The gateway is back (or the link): continue from what it made durable.
			if next, err = s.c.UploadOffset(ctx, id); err != nil {
				return fmt.Errorf("upload of %s: asking the gateway's offset after %w", id, err)
			}
			s.e.verbosef("upload: the gateway holds %d bytes; resuming there", next)
		case err != nil:
			return fmt.Errorf("upload of %s at byte %d: %w", id, off, err)
		default:
			r.ok()
			conflicts = 0
		}
		if next < 0 || next > size {
			return fmt.Errorf("upload of %s: the gateway reports offset %d of %d bytes", id, next, size)
		}
		off = next
		p.set(off)
	}
	p.complete()
	return nil
}
