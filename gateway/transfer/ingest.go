package transfer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// Ingest: transfers from senders that cannot run lex (legacy systems on SFTP).
// They hand the gateway plaintext; the gateway decides "send" before the first
// byte, age-encrypts the stream to the recipient's registered keys as it arrives
// into a staging file (plaintext never touches disk), and only when the sender
// finishes successfully hashes the ciphertext, signs the manifest on the sender's
// behalf with its own X.509-SVID (Manifest.SealedBy), and creates the transfer,
// ready, in one step. An ingest that is aborted, or whose connection drops,
// leaves no transfer and no staged file. The gateway sees the plaintext
// transiently, in memory: that is the trade-off of serving clients that cannot
// encrypt.

// IngestRequest describes a transfer a legacy sender is about to upload.
type IngestRequest struct {
	Recipient spiffeid.ID
	Name      string // the file's name, api.ValidFileName
	Matter    string
	Labels    []string
	Regions   []string
	// MaxSize bounds the plaintext, in bytes; 0 means the core's MaxCiphertextSize.
	MaxSize int64
}

// Ingest is one upload being encrypted on arrival. Write it in order, then Commit
// or Abort; it is safe for use by one writer at a time.
type Ingest struct {
	s       *Service
	caller  spiffeid.ID
	req     IngestRequest
	sealer  x509svid.Source
	recips  []string
	dec     policy.Decision
	f       *store.Staged
	buf     *bufio.Writer
	h       hash.Hash
	enc     io.WriteCloser
	n       int64 // plaintext bytes written
	ctSize  int64 // ciphertext bytes written
	max     int64
	done    bool
	err     error // the first write error: the ingest can only be aborted
	closeMu sync.Mutex
	// upload, when set, is the SFTP upload Commit records with the
	// transfer, and claims against identical ones (recentuploads.go).
	upload *uploadClaim
}

// BeginIngest asks the policy whether caller may send req's file to its
// recipient (action "send", file count 1, size not yet known) and opens a staging
// file with an age encryptor to the recipient's registered keys. A refusal is a
// *DeniedError, audited, with nothing stored. sealer is the gateway's own
// X.509-SVID source, which signs the manifest at Commit.
func (s *Service) BeginIngest(ctx context.Context, caller spiffeid.ID, sealer x509svid.Source, req IngestRequest) (*Ingest, error) {
	if err := s.checkCaller(ctx, caller, "send"); err != nil {
		return nil, err
	}
	if err := api.ValidFileName(req.Name); err != nil {
		return nil, badRequest("%v", err)
	}
	if req.Recipient.IsZero() {
		return nil, badRequest("no recipient")
	}
	in := policy.Input{Action: "send", Source: party(caller), Destinations: []policy.Party{party(req.Recipient)},
		Bundle: &policy.Bundle{Matter: req.Matter, Labels: req.Labels, Regions: req.Regions, FileCount: 1, Stage: StageDeclared}}
	if s.revoked(req.Recipient) {
		d := policy.Decision{Reasons: []policy.Reason{{Code: "identity.revoked", Message: req.Recipient.String() + " is revoked and cannot receive transfers"}}}
		s.auditRefusal(ctx, in, d)
		return nil, &DeniedError{Action: "send", Decision: d}
	}
	d, err := s.decideMatter(ctx, in)
	if err != nil {
		return nil, err
	}
	recips, _, err := s.store.Keys(ctx, req.Recipient.String())
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s has registered no age key, nothing can be encrypted to it", ErrNotFound, req.Recipient)
	}
	if err != nil {
		return nil, fmt.Errorf("transfer: ingest: %w", err)
	}
	ageRecips, err := parseRecipients(recips)
	if err != nil {
		return nil, err
	}
	f, err := s.store.Stage()
	if err != nil {
		return nil, fmt.Errorf("transfer: ingest: %w", err)
	}
	in2 := &Ingest{s: s, caller: caller, req: req, sealer: sealer, recips: recips, dec: d, f: f,
		h: sha256.New(), max: s.cfg.MaxCiphertextSize}
	if req.MaxSize > 0 && req.MaxSize < in2.max {
		in2.max = req.MaxSize
	}
	in2.buf = bufio.NewWriterSize(io.MultiWriter(countWriter{f, &in2.ctSize}, in2.h), 1<<20)
	if in2.enc, err = age.Encrypt(in2.buf, ageRecips...); err != nil {
		in2.Abort()
		return nil, fmt.Errorf("transfer: ingest: encrypt: %w", err)
	}
	return in2, nil
}

func parseRecipients(rs []string) ([]age.Recipient, error) {
	out := make([]age.Recipient, 0, len(rs))
	for _, r := range rs {
		ar, err := age.ParseRecipients(strings.NewReader(r))
		if err != nil {
			return nil, fmt.Errorf("transfer: ingest: registered key %.20q…: %w", r, err)
		}
		out = append(out, ar...)
	}
	return out, nil
}

type countWriter struct {
	w io.Writer
	n *int64
}

func (c countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

// Write encrypts p into the staging file. Past the size limit it fails with
// ErrTooLarge and the ingest can only be aborted.
func (in *Ingest) Write(p []byte) (int, error) {
	if in.err != nil {
		return 0, in.err
	}
	if in.done {
		return 0, errors.New("transfer: ingest already finished")
	}
	if in.n+int64(len(p)) > in.max {
		in.err = fmt.Errorf("%w: the upload exceeds the limit of %d bytes; nothing was kept", ErrTooLarge, in.max)
		return 0, in.err
	}
	n, err := in.enc.Write(p)
	in.n += int64(n)
	if err != nil {
		in.err = fmt.Errorf("transfer: ingest: %w", err)
		return n, in.err
	}
	return n, nil
}

// Size is how many plaintext bytes were written so far.
func (in *Ingest) Size() int64 { return in.n }

// Abort discards the ingest: the staging file is removed, no transfer exists.
// It is safe to call after Commit (it does nothing then) and more than once.
func (in *Ingest) Abort() {
	in.closeMu.Lock()
	defer in.closeMu.Unlock()
	if in.done {
		return
	}
	in.done = true
	name := in.f.Name()
	in.f.Close()
	if err := in.s.store.Unstage(name); err != nil {
		in.s.log.Error("ingest: removing a staged file failed", "file", name, "err", err)
	}
}

// Commit finishes the encryption, makes the ciphertext durable, signs the
// manifest with the gateway's SVID on the sender's behalf, and creates the
// transfer, ready to deliver. On error nothing is stored.
func (in *Ingest) Commit(ctx context.Context) (*api.Transfer, error) {
	in.closeMu.Lock()
	defer in.closeMu.Unlock()
	if in.done {
		return nil, errors.New("transfer: ingest already finished")
	}
	in.done = true
	t, err := in.commit(ctx)
	if err != nil {
		name := in.f.Name()
		in.f.Close()
		in.s.store.Unstage(name)
		return nil, err
	}
	return t, nil
}

func (in *Ingest) commit(ctx context.Context) (*api.Transfer, error) {
	s := in.s
	if in.err != nil {
		return nil, in.err
	}
	if err := in.enc.Close(); err != nil {
		return nil, fmt.Errorf("transfer: ingest: encrypt: %w", err)
	}
	if err := in.buf.Flush(); err != nil {
		return nil, fmt.Errorf("transfer: ingest: write staging file: %w", err)
	}
	if err := in.f.Sync(); err != nil {
		return nil, fmt.Errorf("transfer: ingest: sync staging file: %w", err)
	}
	svid, err := in.sealer.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("transfer: ingest: the gateway's SVID: %w", err)
	}
	m := api.Manifest{Sender: in.caller.String(), Recipients: []string{in.req.Recipient.String()},
		Matter: in.req.Matter, Labels: in.req.Labels, Regions: in.req.Regions, FileCount: 1,
		PlaintextSize: in.n, CiphertextSize: in.ctSize, CiphertextSHA256: hex.EncodeToString(in.h.Sum(nil)),
		Created: s.now().UTC().Truncate(1e9), SealedBy: svid.ID.String(), Content: api.ContentFile, Name: in.req.Name}
	sm, err := api.Sign(m, svid.PrivateKey, svid.Certificates)
	if err != nil {
		return nil, fmt.Errorf("transfer: ingest: seal manifest: %w", err)
	}
	raw, err := json.Marshal(sm)
	if err != nil {
		return nil, fmt.Errorf("transfer: ingest: encode manifest: %w", err)
	}
	// Decide again with the real sizes before anything is kept: the policy's
	// size limits apply over SFTP too. A refusal is audited; Commit removes
	// the staged ciphertext.
	final := policy.Input{Action: "send", Source: party(in.caller), Destinations: []policy.Party{party(in.req.Recipient)},
		Bundle: bundleOf(m, sm.Hash())}
	final.Bundle.Stage = StageFinal
	d, err := s.decideMatter(ctx, final)
	if err != nil {
		s.log.InfoContext(ctx, "ingest refused at its final size; nothing kept", "plaintext_size", in.n, "decision", d.ID)
		return nil, err
	}
	in.dec = d
	t := &store.Transfer{Sender: m.Sender, Recipients: m.Recipients, Matter: m.Matter, Labels: m.Labels,
		FileCount: 1, PlaintextSize: m.PlaintextSize, CiphertextSize: m.CiphertextSize,
		CiphertextSHA256: m.CiphertextSHA256, ManifestHash: sm.Hash(), Manifest: raw, DecisionID: d.ID,
		Obligations: obligationsOf(d, s.now())}
	name := in.f.Name()
	in.f.Close()
	if err := in.createReady(context.WithoutCancel(ctx), t, name); err != nil {
		return nil, fmt.Errorf("transfer: ingest: %w", err)
	}
	ev := transferEvent(audit.KindTransferCreated, m.Sender, t)
	ev.Action, ev.Decision = "send", auditDecision(in.dec, true)
	ev.Obligations = auditObligations(t.Obligations)
	ev.Detail = "sealed on ingest by " + m.SealedBy
	if _, err := s.logOnce(ctx, t.ID, audit.LookupCreated(t.ID), ev); err != nil {
		s.store.DeleteTransfer(context.WithoutCancel(ctx), t.ID)
		in.unclaim(context.WithoutCancel(ctx), t.ID)
		return nil, err
	}
	if err := s.auditUpload(ctx, t); err != nil {
		s.store.DeleteTransfer(context.WithoutCancel(ctx), t.ID)
		in.unclaim(context.WithoutCancel(ctx), t.ID)
		return nil, err
	}
	s.log.InfoContext(ctx, "ingest complete", "transfer", t.ID, "recipient", in.req.Recipient.String(),
		"plaintext_size", in.n, "ciphertext_size", in.ctSize, "sealed_by", m.SealedBy)
	return view(t, m.Sender)
}

// CleanIngest removes staged ciphertext of ingests that a crash or shutdown
// interrupted. Call it at start, before any ingest begins.
func (s *Service) CleanIngest() (int, error) { return s.store.CleanStaging() }

// Login decides whether caller may log in on the SFTP front (action
// "sftp_login"), and audits the decision either way. from is the client's
// address, for the audit entry.
func (s *Service) Login(ctx context.Context, caller spiffeid.ID, from string) error {
	if err := s.checkCaller(ctx, caller, "sftp_login"); err != nil {
		return err
	}
	in := policy.Input{Action: "sftp_login", Source: party(caller)}
	d, err := s.decide(ctx, in)
	if err != nil {
		return err
	}
	ev := inputEvent(audit.KindSFTPLogin, in)
	ev.Decision, ev.Detail = auditDecision(d, true), "from "+from
	if _, err := s.Audit(ctx, ev); err != nil {
		return err
	}
	return nil
}

// Refused audits a request that a front refused on its own, before any policy
// question (a path outside its tree, a link, a name with control characters):
// code and message say why.
func (s *Service) Refused(ctx context.Context, caller spiffeid.ID, action, code, message string) {
	s.auditRefusal(ctx, policy.Input{Action: action, Source: party(caller)},
		policy.Decision{Reasons: []policy.Reason{{Code: code, Message: message}}})
}
