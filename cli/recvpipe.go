package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
)

// The receive pipeline. Once the manifest's signature checks out, the
// ciphertext is read in order, from byte 0 (or from a checkpoint's chunk, see
// resume.go), in blocks, and each block goes at once to two sinks:
//
//   - the SHA-256 that must match the signed manifest,
//   - age's decryption, feeding the bundle's extraction into a hidden staging
//     directory inside the destination (each file hashed as it is written).
//
// Nothing leaves the staging directory until the whole ciphertext has arrived,
// its size and SHA-256 match the signed manifest, age has authenticated its last
// chunk and every file matches the bundle's manifest; on any failure the staging
// directory is removed, unless the download stopped after a checkpoint: then it
// stays for the next run to resume. If decryption or extraction fails part-way,
// the ciphertext is still read to its end and hashed, so that a ciphertext that
// is not the signed one is reported as such, as when everything was checked
// first.
//
// No copy of the ciphertext is kept. With parallel ranges the workers write
// into a reassembly file at their offsets and the pipeline follows the longest
// whole prefix of it; the file is removed when the command ends.

// receiveInto receives transfer id, described by the verified manifest m, into
// dest and returns the delivered paths, relative to dest.
func (r *receiver) receiveInto(ctx context.Context, id string, m api.Manifest, dest string) ([]string, error) {
	if m.Content == api.ContentFile {
		// Refuse a bad name before downloading anything.
		if err := api.ValidFileName(m.Name); err != nil {
			return nil, unsafef("%v", err)
		}
		if err := checkEntryName(m.Name); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	cacheDir := filepath.Join(r.cfg.CacheDir, "incoming")
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	// An earlier lex kept a copy of the ciphertext there: no longer used.
	os.Remove(filepath.Join(cacheDir, id+".age"))
	ckPath := checkpointPath(cacheDir, id)
	ck, rs := r.resumable(ckPath, id, m, dest)
	var staging string
	if ck != nil {
		staging = ck.Staging
	} else {
		var err error
		if staging, err = os.MkdirTemp(dest, stagingPrefix(id)); err != nil {
			return nil, fmt.Errorf("staging: %w", err)
		}
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(staging)
			os.Remove(ckPath)
			os.Remove(ckPath + ".tmp")
		}
	}()

	ex, sum, n, err := r.pipeline(ctx, id, m, staging, ckPath, ck, rs)
	if err != nil {
		// The download stopped: a checkpoint, if there is one, and the
		// staging directory it describes are what the next run resumes from.
		_, serr := os.Stat(ckPath)
		keep = serr == nil
		return nil, err
	}
	if n != m.CiphertextSize || sum != m.CiphertextSHA256 {
		return nil, r.mismatch(ctx, id, n, sum)
	}
	if ex.err != nil {
		return nil, ex.err
	}
	return deliver(dest, staging, ex.ex)
}

// mismatch reports a downloaded ciphertext of n bytes with SHA-256 sum that
// does not match the signed manifest to the gateway, which served it unhashed
// on lex's word that lex checks (api.HeaderIntegrity) and now checks its
// stored copy, and returns the error that says what it found.
func (r *receiver) mismatch(ctx context.Context, id string, n int64, sum string) error {
	v, err := r.c.ReportMismatch(ctx, id, n, sum)
	var ae *api.Error
	switch {
	case err == nil:
		return fmt.Errorf("%w (the gateway's stored copy is intact: %s)", errMismatch, v.Message)
	case errors.As(err, &ae) && ae.Code == api.CodeHashMismatch:
		return fmt.Errorf("%w; the gateway checked its stored copy and found it damaged: %s; ask the sender to send it again", errDamaged, ae.Message)
	default:
		return fmt.Errorf("%w (telling the gateway failed: %v)", errMismatch, err)
	}
}

// errDamaged is a mismatch the gateway confirmed on its stored copy.
var errDamaged = errors.New("the downloaded ciphertext does not match the signed manifest (size or SHA-256); it was discarded and nothing was delivered")

// resumable returns the checkpoint at path and the state it resumes, or nil
// when there is none or it cannot be trusted. Starting over, it removes the
// checkpoint and the staging directories an earlier run of this transfer
// left in dest (one killed before its first checkpoint leaves one too).
func (r *receiver) resumable(path, id string, m api.Manifest, dest string) (*checkpoint, *resumeState) {
	ck, rs, err := loadCheckpoint(path, id, m, dest)
	if err == nil {
		return ck, rs
	}
	if !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(r.e.stderr, "lex: not resuming from the checkpoint %s: %v; starting over\n", path, err)
		// Its staging directory, wherever it is.
		if data, rerr := os.ReadFile(path); rerr == nil {
			var old struct{ Staging string }
			if json.Unmarshal(data, &old) == nil && strings.HasPrefix(filepath.Base(old.Staging), stagingPrefix(id)) {
				os.RemoveAll(old.Staging)
			}
		}
	}
	if olds, gerr := filepath.Glob(filepath.Join(dest, stagingPrefix(id)+"*")); gerr == nil {
		for _, old := range olds {
			os.RemoveAll(old)
		}
	}
	os.Remove(path)
	return nil, nil
}

// stagingPrefix begins the name of the staging directories of transfer id.
func stagingPrefix(id string) string { return ".lex-staging-" + id + "-" }

// unpacked is what the decryption sink ended with.
type unpacked struct {
	ex  *extracted
	err error
}

// pipeline runs one receive of the ciphertext through the sinks, from byte 0
// or from checkpoint ck (and rs, the staging directory's state). It returns
// what the decryption made of it, the hex SHA-256 and the byte count of the
// whole ciphertext, or the error that stopped the download before its end.
func (r *receiver) pipeline(ctx context.Context, id string, m api.Manifest, staging, ckPath string, ck *checkpoint, rs *resumeState) (unpacked, string, int64, error) {
	size := m.CiphertextSize
	var off, plain int64
	h := sha256.New().(hashState)
	var header, final []byte
	if ck != nil {
		off, plain, header = ck.offset(), ck.Plain, ck.Header
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(ck.HashState); err != nil {
			return unpacked{}, "", 0, fmt.Errorf("checkpoint: %w", err)
		}
		var err error
		if final, err = r.fetchFinal(ctx, id, int64(len(header)), size); err != nil {
			return unpacked{}, "", 0, fmt.Errorf("download of %s (run the command again to resume): %w", id, err)
		}
		fmt.Fprintf(r.info, "resuming the receive of %s from its checkpoint at byte %d of %d\n", id, off, size)
	}
	streams := downloadStreams(size-off, r.streams, r.reply)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pump{ctx: ctx, pool: newBlockPool(pipelineBlocks), hash: make(chan *block, sinkDepth), dec: make(chan *block, sinkDepth), n: off}
	snaps := newSnapshots(header, off)
	hashed := hashCiphertext(p.hash, h, snaps)
	var ckr *checkpointer
	if m.Content != api.ContentFile {
		ckr = newCheckpointer(ckPath, checkpoint{ID: id, CiphertextSHA256: m.CiphertextSHA256, CiphertextSize: size,
			Dest: filepath.Dir(staging), Staging: staging}, snaps, plain)
	}
	br := &blockReader{in: p.dec}
	decrypted := make(chan unpacked, 1)
	go func() {
		var ex *extracted
		var err error
		if ck != nil {
			ex, err = resumeInto(br, ck, rs, final, staging, r.ids, m, ckr)
		} else {
			ex, err = decryptInto(br, staging, r.ids, m, ckr)
		}
		br.detach() // the rest of the ciphertext is only hashed
		decrypted <- unpacked{ex, err}
	}()

	var err error
	if streams > 1 {
		err = r.reassemble(ctx, p, id, off, size, streams)
	} else {
		bar := newProgress(r.e.stderr, "receiving", size, off)
		err = p.from(r.stream(ctx, id, off, size), bar)
		bar.done()
	}
	p.close()
	sum := <-hashed
	dec := <-decrypted
	if ckr.close() {
		r.e.verbosef("receive: checkpoint %s written", ckPath)
	}
	if ckr != nil && ckr.err != nil {
		fmt.Fprintf(r.e.stderr, "lex: warning: writing the checkpoint %s: %v; a receive cut from here would resume from an earlier one or start over\n", ckPath, ckr.err)
	}
	if err != nil {
		return unpacked{}, "", 0, fmt.Errorf("download of %s (run the command again to resume): %w", id, err)
	}
	return dec, sum, p.n, nil
}

// reassemble fetches off to size as parallel ranges into a reassembly file
// beside the cache and pumps its longest whole prefix as it grows. The file is
// removed when it returns.
func (r *receiver) reassemble(ctx context.Context, p *pump, id string, off, size int64, streams int) error {
	f, err := os.CreateTemp(filepath.Join(r.cfg.CacheDir, "incoming"), id+"-*.part")
	if err != nil {
		return fmt.Errorf("reassembly file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	return r.followRanges(ctx, p, f, id, off, size, streams)
}

// fetchFinal downloads age's last chunk of the ciphertext, which a resumed
// decryption authenticates first.
func (r *receiver) fetchFinal(ctx context.Context, id string, headerLen, size int64) ([]byte, error) {
	from, to := finalChunk(headerLen, size)
	body, err := r.c.DownloadRange(ctx, id, from, to)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	buf := make([]byte, to-from)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, fmt.Errorf("the last chunk of the ciphertext: %w", err)
	}
	return buf, nil
}

// decryptInto decrypts r and unpacks it into staging: the bundle, checked
// against its manifest and the signed counts, or the one raw file. A bundle's
// extraction takes checkpoints with ck (which may be nil).
func decryptInto(r io.Reader, staging string, ids []age.Identity, m api.Manifest, ck *checkpointer) (*extracted, error) {
	if m.Content == api.ContentFile {
		return decryptFile(r, staging, ids, m)
	}
	ex, err := decryptAndExtract(r, staging, ids, ck)
	if err != nil {
		return nil, err
	}
	return ex, checkCounts(ex, m)
}

// checkCounts compares the files of a bundle with the signed manifest's count
// and size.
func checkCounts(ex *extracted, m api.Manifest) error {
	var total int64
	for _, bf := range ex.files {
		total += bf.Size
	}
	if len(ex.files) != m.FileCount || total != m.PlaintextSize {
		return unsafef("bundle has %d files of %d bytes, the signed manifest says %d of %d",
			len(ex.files), total, m.FileCount, m.PlaintextSize)
	}
	return nil
}

// resumeInto is decryptInto from checkpoint ck: in is the ciphertext from the
// checkpoint's chunk on, final its last chunk, fetched apart.
func resumeInto(in io.Reader, ck *checkpoint, rs *resumeState, final []byte, staging string, ids []age.Identity, m api.Manifest, ckr *checkpointer) (*extracted, error) {
	src := &resumeSource{header: ck.Header, in: in, pos: ck.offset(), size: m.CiphertextSize, final: final}
	src.finalOff, _ = finalChunk(int64(len(ck.Header)), m.CiphertextSize)
	dra, plainSize, err := age.DecryptReaderAt(src, m.CiphertextSize, ids...)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	from := ck.Chunk * ageChunk
	plain := bufio.NewReaderSize(io.NewSectionReader(dra, from, plainSize-from), copyBufSize)
	if _, err := plain.Discard(int(ck.Plain - from)); err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	ex, err := resumeBundle(plain, staging, rs, ckr)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, plain); err != nil { // authenticate the last chunk
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	if err := src.finish(); err != nil {
		return nil, err
	}
	return ex, checkCounts(ex, m)
}

// pump reads the ciphertext in order into pooled blocks and hands each to the
// hash and the decryption.
type pump struct {
	ctx  context.Context
	pool *blockPool
	hash chan *block
	dec  chan *block
	n    int64 // the offset after the bytes pumped
}

// from pumps src to its end, counting it on bar (which may be nil).
func (p *pump) from(src io.Reader, bar *progress) error {
	for {
		var b *block
		select {
		case b = <-p.pool.free:
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
		n, err := io.ReadFull(src, b.buf[:cap(b.buf)])
		if n == 0 || (err != nil && err != io.ErrUnexpectedEOF && err != io.EOF) {
			b.buf = b.buf[:0]
			p.pool.free <- b
			if err == io.EOF {
				return nil
			}
			return err
		}
		b.buf = b.buf[:n]
		p.n += int64(n)
		bar.Write(b.buf)
		if err := p.emit(b); err != nil {
			return err
		}
		if err != nil {
			return nil // the source ended inside this block
		}
	}
}

// emit hands b to every sink.
func (p *pump) emit(b *block) error {
	sinks := []chan *block{p.hash, p.dec}
	b.refs.Store(int32(len(sinks)))
	for i, s := range sinks {
		select {
		case s <- b:
		case <-p.ctx.Done():
			for range sinks[i:] {
				b.release()
			}
			return p.ctx.Err()
		}
	}
	return nil
}

// close closes the sinks; they finish with what they were given.
func (p *pump) close() {
	close(p.hash)
	close(p.dec)
}

// stream is the ciphertext from off to size in one request, retried from where
// it broke when the connection fails.
func (r *receiver) stream(ctx context.Context, id string, off, size int64) io.Reader {
	r.e.verbosef("download: one stream over %s, from byte %d of %d", r.c.BulkTransport(), off, size)
	return &netSource{ctx: ctx, r: r, id: id, pos: off, size: size, start: time.Now(), from: off}
}

// netSource reads the ciphertext from the gateway from pos to size, opening a
// new request from where the last one broke, up to uploadAttempts times.
type netSource struct {
	ctx       context.Context
	r         *receiver
	id        string
	pos, size int64
	body      io.ReadCloser
	failures  int
	start     time.Time
	from      int64
	addr      string // the replica the open body comes from
}

func (s *netSource) Read(p []byte) (int, error) {
	for {
		if s.pos == s.size {
			s.closeBody()
			s.r.e.verbosef("downloaded %d bytes in %v (%.0f MB/s over %s)", s.size-s.from, time.Since(s.start).Round(time.Millisecond),
				mbps(s.size-s.from, time.Since(s.start)), s.r.c.BulkTransport())
			return 0, io.EOF
		}
		err := s.open()
		if err == nil {
			var n int
			n, err = s.body.Read(p[:min(int64(len(p)), s.size-s.pos)])
			s.pos += int64(n)
			if n > 0 {
				return n, nil
			}
			if err == io.EOF {
				err = fmt.Errorf("the gateway ended the download at byte %d of %d", s.pos, s.size)
			}
		}
		s.closeBody()
		if !s.retry(err) {
			if s.ctx.Err() != nil {
				return 0, s.ctx.Err()
			}
			// Never io.EOF or io.ErrUnexpectedEOF: the pump would take the
			// ciphertext for whole.
			return 0, fmt.Errorf("download: %w", err)
		}
	}
}

// open starts a request from pos unless one is open.
func (s *netSource) open() error {
	if s.body != nil {
		return nil
	}
	addr := s.r.c.ep.Load().addr
	body, partial, err := s.r.c.Download(s.ctx, s.id, s.pos)
	if err != nil {
		return err
	}
	s.addr = addr
	if !partial && s.pos > 0 {
		// The whole ciphertext came: skip what the pipeline already has.
		if _, err := io.CopyN(io.Discard, body, s.pos); err != nil {
			body.Close()
			return err
		}
	}
	s.body = body
	return nil
}

func (s *netSource) closeBody() {
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
}

// retry reports whether err may pass with another request, after a pause.
func (s *netSource) retry(err error) bool {
	var ae *api.Error
	if s.ctx.Err() != nil || s.failures >= uploadAttempts || errors.As(err, &ae) || handshakeError(err) != nil {
		return false
	}
	if addr := s.addr; addr != "" {
		s.addr = "" // once per body
		if s.r.c.failover(s.ctx, &replicaError{addr: addr, err: err}) {
			// The replica the body came from is gone: on at once to the next.
			return true
		}
	}
	s.failures++
	select {
	case <-time.After(time.Duration(s.failures) * 500 * time.Millisecond):
		return true
	case <-s.ctx.Done():
		return false
	}
}
