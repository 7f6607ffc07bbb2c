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
	"github.com/lexgate/lexgate/gateway/directio"
)

// The receive pipeline. Once the manifest's signature checks out, the
// ciphertext is read in order, from byte 0, in blocks: first the prefix a cut
// receive left in the cache, then what the gateway sends. Each block goes at
// once to three sinks:
//
//   - the SHA-256 that must match the signed manifest,
//   - age's decryption, feeding the bundle's extraction into a hidden staging
//     directory inside the destination (each file hashed as it is written),
//   - the cache file a later run resumes from (blocks from the network only).
//
// Nothing leaves the staging directory until the whole ciphertext has arrived,
// its size and SHA-256 match the signed manifest, age has authenticated its last
// chunk and every file matches the bundle's manifest; on any failure the staging
// directory is removed. If decryption or extraction fails part-way, the
// ciphertext is still read to its end and hashed, so that a ciphertext that is
// not the signed one is reported as such, as when everything was checked first.
//
// With parallel ranges the workers write into the cache file at their offsets
// and the pipeline follows the longest whole prefix of it.

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
	spool := filepath.Join(cacheDir, id+".age")
	f, err := os.OpenFile(spool, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	defer f.Close()
	staging, err := os.MkdirTemp(dest, ".lex-staging-")
	if err != nil {
		return nil, fmt.Errorf("staging: %w", err)
	}
	defer os.RemoveAll(staging)

	ex, sum, n, err := r.pipeline(ctx, id, m, f, staging)
	if err != nil {
		return nil, err
	}
	if n != m.CiphertextSize || sum != m.CiphertextSHA256 {
		f.Close()
		os.Remove(spool)
		return nil, errMismatch
	}
	os.Remove(spool) // the ciphertext is the signed one: nothing more to resume
	if ex.err != nil {
		return nil, ex.err
	}
	return deliver(dest, staging, ex.ex)
}

// unpacked is what the decryption sink ended with.
type unpacked struct {
	ex  *extracted
	err error
}

// pipeline runs one receive of the ciphertext through the sinks. It returns what
// the decryption made of it, the hex SHA-256 and the byte count of the whole
// ciphertext, or the error that stopped the download before its end, with the
// cache cut back to a whole prefix.
func (r *receiver) pipeline(ctx context.Context, id string, m api.Manifest, f *os.File, staging string) (unpacked, string, int64, error) {
	size := m.CiphertextSize
	fi, err := f.Stat()
	if err != nil {
		return unpacked{}, "", 0, fmt.Errorf("cache: %w", err)
	}
	off := fi.Size()
	streams := downloadStreams(size-off, r.streams, r.reply)
	if off > size {
		off = 0
	}
	if streams <= 1 {
		// One stream writes the cache directly to the disk: aligned offsets.
		off &^= directio.Align - 1
	}
	if off != fi.Size() {
		if err := f.Truncate(off); err != nil {
			return unpacked{}, "", 0, fmt.Errorf("cache: %w", err)
		}
	}
	// The cached prefix is read through a descriptor of its own: the cache
	// writer may switch its descriptor to O_DIRECT.
	prefix, err := os.Open(f.Name())
	if err != nil {
		return unpacked{}, "", 0, fmt.Errorf("cache: %w", err)
	}
	defer prefix.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pump{ctx: ctx, pool: newBlockPool(pipelineBlocks), hash: make(chan *block, sinkDepth), dec: make(chan *block, sinkDepth)}
	hashed := hashBlocks(p.hash)
	br := &blockReader{in: p.dec}
	decrypted := make(chan unpacked, 1)
	go func() {
		ex, err := decryptInto(br, staging, r.ids, m)
		br.detach() // the rest of the ciphertext is only hashed
		decrypted <- unpacked{ex, err}
	}()

	err = p.from(io.NewSectionReader(prefix, 0, off), nil)
	var spooled <-chan spoolResult
	if err == nil && off < size {
		if streams > 1 {
			err = r.followRanges(ctx, p, f, id, off, size, streams)
		} else {
			p.spool = make(chan *block, sinkDepth)
			if _, err = f.Seek(off, io.SeekStart); err == nil {
				spooled = spoolFrom(f, off, p.spool)
				bar := newProgress(r.e.stderr, "receiving", size, off)
				err = p.from(r.stream(ctx, id, off, size), bar)
				bar.done()
			}
		}
	}
	p.close()
	sum := <-hashed
	dec := <-decrypted
	if spooled != nil {
		sp := <-spooled
		whole := sp.whole
		if sp.err != nil {
			fmt.Fprintf(r.e.stderr, "lex: warning: writing the download cache %s: %v; a receive cut from here would start over\n", f.Name(), sp.err)
		}
		if err != nil {
			if terr := f.Truncate(whole); terr != nil {
				err = errors.Join(err, terr)
			}
		}
	}
	if err != nil {
		return unpacked{}, "", 0, fmt.Errorf("download of %s (run the command again to resume): %w", id, err)
	}
	return dec, sum, p.n, nil
}

// decryptInto decrypts r and unpacks it into staging: the bundle, checked
// against its manifest and the signed counts, or the one raw file.
func decryptInto(r io.Reader, staging string, ids []age.Identity, m api.Manifest) (*extracted, error) {
	if m.Content == api.ContentFile {
		return decryptFile(r, staging, ids, m)
	}
	ex, err := decryptAndExtract(r, staging, ids)
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
	return ex, nil
}

// pump reads the ciphertext in order into pooled blocks and hands each to the
// hash and the decryption, and those from the network to the cache writer.
type pump struct {
	ctx   context.Context
	pool  *blockPool
	hash  chan *block
	dec   chan *block
	spool chan *block // nil while no block goes to the cache
	n     int64       // bytes pumped
}

// from pumps src to its end, counting it on bar (which may be nil). Blocks go
// to the cache writer too when p.spool is set.
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
	sinks := []chan *block{p.hash, p.dec, p.spool}
	if p.spool == nil {
		sinks = sinks[:2]
	}
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
	if p.spool != nil {
		close(p.spool)
	}
}

// spoolResult is where the cache writer got to: the end of the whole prefix
// written, and the write error that stopped it, if any.
type spoolResult struct {
	whole int64
	err   error
}

// spoolFrom writes the blocks of in to f from offset off (f's position),
// directly to the disk where it can, and sends where it got to when in is
// closed. After a write error it stops writing but keeps releasing blocks:
// the cache only serves a later resume. There is no fsync: a resume hashes
// the cache again with everything else.
func spoolFrom(f *os.File, off int64, in <-chan *block) <-chan spoolResult {
	out := make(chan spoolResult, 1)
	go func() {
		w := directio.NewWriter(f, off)
		res := spoolResult{whole: off}
		for b := range in {
			if res.err == nil {
				n, err := w.Write(b.buf)
				res.whole += int64(n)
				res.err = err
			}
			b.release()
		}
		out <- res
	}()
	return out
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
			return 0, err
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
