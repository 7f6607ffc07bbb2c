package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
)

// A send streams: lex opens the transfer with a signed manifest whose ciphertext
// hash is still pending (the exact ciphertext size is known from the input sizes
// before anything is encrypted), the policy decides on it, and the ciphertext is
// uploaded as age produces it, while it is also hashed and written to the spool.
// When the last byte is up, lex signs the final manifest with the hash and seals
// the transfer. Encryption and upload overlap instead of running one after the
// other. If the upload breaks, the encryption carries on into the spool and the
// upload resumes from the gateway's offset, reading the spool.

// encryption is a bundle being encrypted into a fanout.
type encryption struct {
	fo   *fanout
	aw   io.WriteCloser
	size int64 // the exact ciphertext size, announced before encrypting
}

// startEncryption writes the age header for recips into a new fanout with the
// given number of sinks and computes the ciphertext's size. Nothing reaches the
// sinks before run.
func startEncryption(ctx context.Context, in *bundleInputs, recips []age.Recipient, sinks int) (*encryption, error) {
	plain, err := bundleSize(in)
	if err != nil {
		return nil, err
	}
	fo := newFanout(ctx, sinks)
	aw, err := age.Encrypt(fo, recips...)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	// age.Encrypt has written the header and the payload nonce.
	return &encryption{fo: fo, aw: aw, size: fo.n + agePayloadSize(plain)}, nil
}

// run encrypts the bundle of in into the sinks and closes them, whatever happens.
// The ciphertext must come out at the size announced.
func (e *encryption) run(ctx context.Context, in *bundleInputs, p *progress) error {
	_, err := writeBundle(ctx, io.MultiWriter(e.aw, p), in)
	if err == nil {
		if err = e.aw.Close(); err != nil {
			err = fmt.Errorf("encrypt: %w", err)
		}
	}
	if cerr := e.fo.close(); err == nil && cerr != nil {
		err = fmt.Errorf("encrypt: %w", cerr)
	}
	if err == nil && e.fo.n != e.size {
		err = fmt.Errorf("the bundle encrypted to %d bytes, not the %d announced: did an input change while it was read?", e.fo.n, e.size)
	}
	return err
}

// encryptToSpool encrypts the bundle of in to recips into a new file at spool
// (mode 0600), returning the ciphertext's size and hex SHA-256.
func encryptToSpool(ctx context.Context, spool string, in *bundleInputs, recips []age.Recipient, p *progress) (int64, string, error) {
	e, err := startEncryption(ctx, in, recips, 2)
	if err != nil {
		return 0, "", err
	}
	f, err := os.OpenFile(spool, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, "", fmt.Errorf("spool: %w", err)
	}
	sum, spooled := hashBlocks(e.fo.sinks[0]), spoolBlocks(f, e.fo.sinks[1])
	err = e.run(ctx, in, p)
	h, serr := <-sum, <-spooled
	if err == nil && serr != nil {
		err = fmt.Errorf("spool: %w", serr)
	}
	return e.size, h, err
}

// stream runs a fresh send: it opens the streamed transfer, then encrypts,
// hashes, spools and uploads at once, and seals the transfer. It returns the
// state (with the final manifest) and the sealed transfer.
func (s *sender) stream(ctx context.Context, dir, key string, in *bundleInputs, draft api.Manifest) (*sendState, *api.Transfer, error) {
	recips, err := s.fetchRecipients(ctx)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e, err := startEncryption(ctx, in, recips, 3)
	if err != nil {
		return nil, nil, err
	}
	draft.CiphertextSize, draft.CiphertextSHA256, draft.Created = e.size, "", time.Time{}
	svid, err := currentSVID(s.c.ids)
	if err != nil {
		return nil, nil, err
	}
	intent, err := api.Sign(draft, svid.PrivateKey, svid.Certificates)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the manifest: %w", err)
	}
	st := &sendState{Key: key, Intent: intent, Spool: filepath.Join(dir, key+".age")}
	f, err := os.OpenFile(st.Spool, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	if err := st.save(dir); err != nil {
		f.Close()
		os.Remove(st.Spool)
		return nil, nil, err
	}
	t, err := s.submit(ctx, dir, st)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if t.State != api.StateUploading || t.Offset != 0 {
		f.Close()
		st.remove(dir)
		return nil, nil, fmt.Errorf("the gateway answered a new transfer with %s at byte %d; run the command again", t.State, t.Offset)
	}

	streams, why := 1, fmt.Sprintf("%s to send, less than %s", humanSize(e.size), humanSize(parallelMin))
	if e.size >= parallelMin || s.o.streams > 1 { // a small request tells how far the gateway is
		asked := time.Now()
		if _, _, err := s.c.UploadProgress(ctx, t.ID); err == nil {
			streams, why = s.uploadStreams(e.size, time.Since(asked))
		}
	}
	s.e.verbosef("upload: %d stream(s) (%s)", streams, why)
	start := time.Now()
	sum := hashBlocks(e.fo.sinks[0])
	body := &blockReader{in: e.fo.sinks[1]}
	uploaded := make(chan error, 1)
	var spooled <-chan error
	if streams > 1 { // ranges leave from the spool as soon as it holds them
		body.detach()
		watch := newSpoolWatch()
		spooled = watch.follow(spoolBlocks(f, watch.relay(e.fo.sinks[2])), e.size)
		go func() { uploaded <- s.uploadRanges(ctx, t.ID, st.Spool, watch, e.size, 0, nil, streams, false) }()
	} else {
		spooled = spoolBlocks(f, e.fo.sinks[2])
		go func() {
			err := s.uploadStream(ctx, t.ID, e.size, body)
			if err != nil {
				body.detach()
			}
			uploaded <- err
		}()
	}
	bar := newProgress(s.e.stderr, "sending", in.bytes, 0)
	err = e.run(ctx, in, bar)
	if err == nil {
		bar.complete()
	} else {
		bar.done()
	}
	h, serr := <-sum, <-spooled
	if err != nil {
		cancel()
		<-uploaded
		s.abandon(ctx, t.ID)
		st.remove(dir)
		return nil, nil, err
	}
	s.e.verbosef("encrypted %d bytes in %v (%.0f MB/s), uploading as it went", e.size, time.Since(start).Round(time.Millisecond), mbps(e.size, time.Since(start)))
	m, _ := intent.Decode()
	m.CiphertextSHA256 = h
	if svid, err = currentSVID(s.c.ids); err == nil { // rotated since, perhaps: same ID
		st.Final, err = api.Sign(m, svid.PrivateKey, svid.Certificates)
	}
	if err != nil {
		cancel()
		<-uploaded
		s.abandon(ctx, t.ID)
		st.remove(dir)
		return nil, nil, fmt.Errorf("signing the final manifest: %w", err)
	}
	if serr == nil {
		serr = st.save(dir)
	}
	if err := <-uploaded; err != nil {
		if serr != nil || ctx.Err() != nil {
			return nil, nil, fmt.Errorf("upload of %s: %w", t.ID, err)
		}
		s.e.verbosef("the streamed upload stopped (%v); resuming from the spool", err)
		if !s.c.failover(ctx, err) { // a replica gone: on to the next at once
			s.c.resetConns() // a gateway that went away took the control connection with it
		}
		if err := s.upload(ctx, t.ID, st.Spool, e.size); err != nil {
			return nil, nil, s.uploadFailed(dir, st, err)
		}
	}
	s.e.verbosef("uploaded in %v (%.0f MB/s over %s, %s)", time.Since(start).Round(time.Millisecond), mbps(e.size, time.Since(start)), s.c.BulkTransport(), streamsPhrase(streams))
	t, err = s.seal(ctx, dir, st, t.ID)
	return st, t, err
}

// abandon cancels transfer id at the gateway, if there is one and it is still
// uploading, so that a send given up leaves nothing behind there. It is best
// effort: whatever fails is only reported with -v.
func (s *sender) abandon(ctx context.Context, id string) {
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.c.CancelTransfer(ctx, id); err != nil {
		s.e.verbosef("could not cancel the abandoned transfer %s: %v", id, err)
		return
	}
	s.e.verbosef("cancelled the abandoned transfer %s at the gateway", id)
}

// uploadStream uploads size bytes from body in chunks from offset 0. Any
// failure returns: the caller resumes from the spool.
func (s *sender) uploadStream(ctx context.Context, id string, size int64, body io.Reader) error {
	var off int64
	for off < size {
		n := min(s.o.chunk, size-off)
		next, err := s.c.UploadChunk(ctx, id, off, s.counted(io.LimitReader(body, n)), n)
		if err != nil {
			return err
		}
		if next != off+n {
			return fmt.Errorf("the gateway holds %d bytes after a chunk ending at %d", next, off+n)
		}
		off = next
	}
	return nil
}

// uploadFailed cleans up after an upload that cannot go on: a transfer the
// gateway quarantined or refused as too large cannot be resumed, so its state
// goes and the next run starts afresh.
func (s *sender) uploadFailed(dir string, st *sendState, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && (ae.Code == api.CodeHashMismatch || ae.Code == api.CodeTooLarge) {
		st.remove(dir)
	}
	return err
}

// seal completes transfer id with the state's final manifest.
func (s *sender) seal(ctx context.Context, dir string, st *sendState, id string) (*api.Transfer, error) {
	t, err := s.c.SealTransfer(ctx, id, st.Final)
	if err != nil {
		return nil, s.uploadFailed(dir, st, fmt.Errorf("sealing %s: %w", id, err))
	}
	if t.State != api.StateReady && t.State != api.StateAcknowledged {
		return nil, fmt.Errorf("sealing %s: the gateway reports it %s", id, t.State)
	}
	return t, nil
}

// resume continues an interrupted send from its state. It returns a nil
// transfer when the send must start afresh (the state is then removed).
func (s *sender) resume(ctx context.Context, dir string, st *sendState) (*api.Transfer, error) {
	afresh := func(why string) (*api.Transfer, error) {
		fmt.Fprintf(s.e.stderr, "%s; encrypting afresh\n", why)
		s.abandon(ctx, st.TransferID)
		st.remove(dir)
		return nil, nil
	}
	if st.Final == nil {
		return afresh("an interrupted send had not finished encrypting")
	}
	final, err := st.Final.Decode()
	if err != nil || !spoolIntact(st.Spool, final) {
		return afresh("the spool of an interrupted send is damaged")
	}
	fmt.Fprintf(s.e.stderr, "resuming an interrupted send (state %s)\n", statePath(dir, st.Key))
	var t *api.Transfer
	if st.TransferID != "" {
		t, err = s.c.Transfer(ctx, st.TransferID)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeNotFound {
			return afresh("the gateway no longer has the interrupted transfer")
		}
	} else {
		t, err = s.submit(ctx, dir, st)
	}
	if err != nil {
		return nil, err
	}
	switch t.State {
	case api.StateReady, api.StateAcknowledged:
		if t.ManifestHash == st.Final.Hash() {
			return t, nil // sealed before the interruption
		}
		return afresh(fmt.Sprintf("transfer %s was completed with another manifest", t.ID))
	case api.StateUploading:
	default:
		return afresh(fmt.Sprintf("transfer %s is %s at the gateway", t.ID, t.State))
	}
	if err := s.upload(ctx, t.ID, st.Spool, final.CiphertextSize); err != nil {
		return nil, s.uploadFailed(dir, st, err)
	}
	return s.seal(ctx, dir, st, t.ID)
}

// spoolIntact reports whether the spool holds exactly the ciphertext the final
// manifest describes (it is written without fsync, so a crash may have cut it).
func spoolIntact(spool string, final api.Manifest) bool {
	n, sum, err := fileSHA256(spool)
	return err == nil && n == final.CiphertextSize && sum == final.CiphertextSHA256
}
