// Package agestream decrypts an age file as a stream, the way [age.Decrypt]
// does, into the caller's buffers.
//
// age's own reader allocates a 64 KiB buffer for every chunk it opens and
// copies each chunk twice on the way to the caller (into its buffer, then into
// the caller's): for a large transfer that is a gigabyte of garbage and two
// copies per gigabyte received. This package keeps age for everything that
// concerns keys (the header is parsed, its MAC checked and the file key
// unwrapped by [age.ExtractHeader] and [age.DecryptHeader]) and opens the
// payload itself, following the age format (age-encryption.org/v1, "Payload"):
// a 16-byte nonce, the payload key HKDF-SHA-256(file key, nonce, "payload"),
// then chunks of 64 KiB of plaintext sealed with ChaCha20-Poly1305 under an
// 11-byte big-endian chunk counter and a final byte that is 1 on the last
// chunk only. A read of 64 KiB or more is decrypted straight into the
// caller's buffer; smaller reads are served from one preallocated chunk.
//
// Its answers are those of [age.Decrypt] for every input, valid or not
// (TestMatchesAge, FuzzMatchesAge): the same plaintext, an error where age
// errs (a truncated, tampered, reordered or extended payload), and a
// [*age.NoIdentityMatchError] when no identity fits.
package agestream

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// ChunkSize is the plaintext of every chunk but the last.
const ChunkSize = 64 << 10

const (
	overhead     = chacha20poly1305.Overhead
	encChunkSize = ChunkSize + overhead
	nonceSize    = 16 // the payload's nonce, after the header
)

// Reader is the plaintext of an age file.
type Reader struct {
	src   io.Reader
	aead  cipher.AEAD
	nonce [chacha20poly1305.NonceSize]byte
	first bool // no chunk opened yet

	in     []byte // one sealed chunk, read from src
	out    []byte // one opened chunk, for reads smaller than a chunk
	unread []byte // what is left of out
	err    error  // returned once unread is empty: io.EOF after the last chunk
}

// NewReader reads the header of the age file src and unwraps its file key with
// identities, then returns a Reader of its plaintext. When no identity fits, the
// error is an [*age.NoIdentityMatchError], as [age.Decrypt]'s.
func NewReader(src io.Reader, identities ...age.Identity) (*Reader, error) {
	rec := &recorder{r: src}
	hdr, err := age.ExtractHeader(rec)
	if err != nil {
		return nil, err
	}
	// ExtractHeader serialises the header it parsed; age's format has one
	// encoding of a header, so it must be the bytes read, which are followed by
	// the payload (some of it already read past the header).
	if !bytes.HasPrefix(rec.buf, hdr) {
		return nil, errors.New("failed to read header: not in age's canonical encoding")
	}
	fileKey, err := age.DecryptHeader(hdr, identities...)
	if err != nil {
		return nil, err
	}
	payload := io.MultiReader(bytes.NewReader(rec.buf[len(hdr):]), src)
	nonce := make([]byte, nonceSize)
	if _, err := io.ReadFull(payload, nonce); err != nil {
		return nil, fmt.Errorf("failed to read nonce: %w", err)
	}
	key, err := hkdf.Key(sha256.New, fileKey, nonce, "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("payload key: %w", err)
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	return &Reader{src: payload, aead: aead, first: true,
		in: make([]byte, encChunkSize), out: make([]byte, 0, ChunkSize)}, nil
}

// Read reads plaintext into p. Whole chunks are opened straight into p while it
// has room for one; a smaller p is served from a chunk opened aside. Every byte
// returned has been authenticated; the error after the last chunk is io.EOF
// only if nothing follows it.
func (r *Reader) Read(p []byte) (int, error) {
	if len(r.unread) > 0 {
		n := copy(p, r.unread)
		r.unread = r.unread[n:]
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) < ChunkSize {
		out, err := r.open(r.out[:0])
		if err != nil {
			r.err = err
			return 0, err
		}
		n := copy(p, out)
		r.unread = out[n:]
		return n, nil
	}
	n := 0
	for len(p)-n >= ChunkSize && r.err == nil {
		out, err := r.open(p[n:n])
		if err != nil {
			r.err = err
			break
		}
		n += len(out)
	}
	if n > 0 {
		return n, nil
	}
	return 0, r.err
}

// open reads the next sealed chunk from src and opens it into dst (which has
// room for a chunk and does not overlap r.in), returning the plaintext. After
// the last chunk it sets r.err to io.EOF, or to an error if anything follows.
func (r *Reader) open(dst []byte) ([]byte, error) {
	in := r.in
	n, err := io.ReadFull(r.src, in)
	last := false
	switch {
	case err == io.EOF:
		// A payload cannot end without a chunk marked last: it was cut.
		return nil, io.ErrUnexpectedEOF
	case err == io.ErrUnexpectedEOF:
		// The last chunk may be short; it may be empty only as the only one.
		if !r.first && n == overhead {
			return nil, errors.New("last chunk is empty, try age v1.0.0, and please consider reporting this")
		}
		in, last = in[:n], true
		r.nonce[len(r.nonce)-1] = 1
	case err != nil:
		return nil, err
	}
	out, err := r.aead.Open(dst, r.nonce[:], in, nil)
	if err != nil && !last {
		// A full-length chunk may be the last one.
		last = true
		r.nonce[len(r.nonce)-1] = 1
		out, err = r.aead.Open(dst, r.nonce[:], in, nil)
	}
	if err != nil {
		return nil, errors.New("failed to decrypt and authenticate payload chunk, file may be corrupted or tampered with")
	}
	r.first = false
	if last {
		r.err = r.end()
	} else {
		incCounter(&r.nonce)
	}
	return out, nil
}

// end is the error after the last chunk: io.EOF if the payload ends there.
func (r *Reader) end() error {
	var b [1]byte
	switch _, err := io.ReadFull(r.src, b[:]); {
	case err == nil:
		return errors.New("trailing data after end of encrypted file")
	case err != io.EOF:
		return fmt.Errorf("non-EOF error reading after end of encrypted file: %w", err)
	}
	return io.EOF
}

// incCounter adds one to the chunk counter, the nonce's first 11 bytes.
func incCounter(nonce *[chacha20poly1305.NonceSize]byte) {
	for i := len(nonce) - 2; i >= 0; i-- {
		nonce[i]++
		if nonce[i] != 0 {
			return
		}
	}
	panic("agestream: chunk counter wrapped around") // 2^88 chunks: unreachable
}

// recorder keeps every byte read through it: age's header parser reads ahead,
// and what it read past the header is the start of the payload.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (c *recorder) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.buf = append(c.buf, p[:n]...)
	return n, err
}
