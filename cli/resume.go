package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
)

// Resuming a receive without a copy of the ciphertext. The pipeline keeps no
// cache of what it downloaded: within one command a broken connection is
// simply asked again from the byte the pipeline has consumed, and for a later
// command (after lex was killed or gave up) the pipeline writes a small
// checkpoint from time to time, beside the cache directory:
//
//   - where age's decryption can start again: an age chunk, and the SHA-256
//     state of the ciphertext before it (crypto/sha256's BinaryMarshaler);
//   - the age header and nonce (ciphertext, not a secret), which age's
//     [age.DecryptReaderAt] needs to start decrypting at that chunk;
//   - where the bundle's tar reader was: between two entries, or inside a
//     large file being written (its name, size and the bytes already in its
//     staging file), with the files and folders already staged;
//   - the staging directory they are in.
//
// A checkpoint is taken only where all of that is on disk: the small files
// handed to the workers are written first, and a large file's bytes up to
// the checkpoint are written before it is recorded. A later run checks that
// the checkpoint describes the same signed ciphertext and destination, hashes
// every staged file again (what it holds is compared with what the
// checkpoint says, and the partial file's hash starts over from its bytes on
// disk), fetches the ciphertext's last chunk (age authenticates the plaintext
// size with it) and then only the rest of the ciphertext from the
// checkpoint's chunk on. Any doubt (a checkpoint that does not parse or
// describes something else, a staged file missing or different) and the
// receive starts from byte 0 in a fresh staging directory. The checks at the
// end are unchanged: nothing is delivered until the whole ciphertext's
// SHA-256, continued from the saved state, matches the signed manifest and
// every file matches the bundle's manifest.

// Age's STREAM: a chunk of ciphertext is ageChunk bytes of plaintext and a
// tag; the nonce follows the header.
const (
	ageEncChunk = ageChunk + ageTag
	ageNonce    = 16
)

// checkpointEvery is the number of age chunks between checkpoints (64 MiB of
// plaintext), and checkpointWindow how many chunks after each one the
// pipeline may take it at (where the tar reader is at a point it can resume
// from). Variables for tests.
var (
	checkpointEvery  int64 = 1024
	checkpointWindow int64 = 32
)

// checkpointWritten, when set (by tests), is called after each checkpoint is
// written.
var checkpointWritten func(path string)

// checkpointVersion is the version of the checkpoint file's format.
const checkpointVersion = 1

// checkpoint is the state a later run resumes a receive from.
type checkpoint struct {
	Version          int    `json:"version"`
	ID               string `json:"id"`
	CiphertextSHA256 string `json:"ciphertext_sha256"`
	CiphertextSize   int64  `json:"ciphertext_size"`
	Dest             string `json:"dest"`
	Staging          string `json:"staging"`
	// Header is the ciphertext up to its first chunk: age's header and nonce.
	Header []byte `json:"header"`
	// Chunk is the age chunk the decryption starts again at.
	Chunk int64 `json:"chunk"`
	// HashState is the SHA-256 state of the ciphertext before Chunk.
	HashState []byte `json:"hash_state"`
	// Plain is the tar reader's position in the plaintext, in Chunk.
	Plain int64 `json:"plain"`
	// Files and Dirs are the entries staged whole, in archive order.
	Files []BundleFile `json:"files"`
	Dirs  []string     `json:"dirs"`
	// Partial is the large file being written at Plain, if any.
	Partial *partialEntry `json:"partial,omitempty"`
}

// partialEntry is a large file written in part when a checkpoint was taken.
type partialEntry struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Perm    uint32 `json:"perm"`
	Written int64  `json:"written"`
}

// offset is the ciphertext offset the resumed download starts at.
func (c *checkpoint) offset() int64 {
	return int64(len(c.Header)) + c.Chunk*ageEncChunk
}

// checkpointPath is where the checkpoint of transfer id is kept.
func checkpointPath(cacheDir, id string) string {
	return filepath.Join(cacheDir, id+".resume")
}

// loadCheckpoint reads the checkpoint at path and checks it against the
// signed manifest m, the destination and the staging directory it names. It
// returns the checkpoint, what its staged files hold (hashed again from disk)
// and the partial file's hash state; or an error saying why it cannot be
// resumed from.
func loadCheckpoint(path, id string, m api.Manifest, dest string) (*checkpoint, *resumeState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var ck checkpoint
	if err := json.Unmarshal(data, &ck); err != nil {
		return nil, nil, fmt.Errorf("unreadable: %w", err)
	}
	switch {
	case ck.Version != checkpointVersion:
		return nil, nil, fmt.Errorf("version %d, want %d", ck.Version, checkpointVersion)
	case ck.ID != id || ck.CiphertextSHA256 != m.CiphertextSHA256 || ck.CiphertextSize != m.CiphertextSize:
		return nil, nil, errors.New("it describes another ciphertext than the signed manifest")
	case m.Content == api.ContentFile:
		return nil, nil, errors.New("single-file transfers are not resumed from a checkpoint")
	case ck.Dest != dest:
		return nil, nil, fmt.Errorf("it was taken for %s, not %s", ck.Dest, dest)
	case filepath.Dir(ck.Staging) != dest || !strings.HasPrefix(filepath.Base(ck.Staging), stagingPrefix(id)):
		return nil, nil, fmt.Errorf("staging directory %q is not one of lex's in %s", ck.Staging, dest)
	case ck.Chunk < 1 || ck.Plain < ck.Chunk*ageChunk || ck.Plain >= (ck.Chunk+1)*ageChunk || ck.offset() >= ck.CiphertextSize:
		return nil, nil, errors.New("its position is out of range")
	}
	if err := checkStagedNames(&ck); err != nil {
		return nil, nil, err
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(ck.Header))
	if err != nil || len(hdr)+ageNonce != len(ck.Header) {
		return nil, nil, fmt.Errorf("its age header does not parse (%v)", err)
	}
	if err := sha256.New().(encoding.BinaryUnmarshaler).UnmarshalBinary(ck.HashState); err != nil {
		return nil, nil, fmt.Errorf("its hash state: %w", err)
	}
	rs, err := restage(&ck)
	if err != nil {
		return nil, nil, err
	}
	return &ck, rs, nil
}

// checkStagedNames applies the bundle's name rules to the entries ck lists.
func checkStagedNames(ck *checkpoint) error {
	names := slices.Clone(ck.Dirs)
	for _, f := range ck.Files {
		names = append(names, f.Path)
	}
	if ck.Partial != nil {
		names = append(names, ck.Partial.Name)
	}
	for _, n := range names {
		if err := checkEntryName(n); err != nil {
			return fmt.Errorf("it lists %w", err)
		}
	}
	return nil
}

// resumeState is the extraction's state at a checkpoint, read back from the
// staging directory.
type resumeState struct {
	pos     int64
	files   []BundleFile
	dirs    []string
	partial *partialEntry
	// partialHash holds the partial file's first Written bytes.
	partialHash hashState
}

// hashState is a SHA-256 that can be saved and restored.
type hashState interface {
	io.Writer
	Sum([]byte) []byte
	encoding.BinaryMarshaler
}

// restage checks the staging directory of ck: every staged file is hashed
// again and must match the checkpoint; the partial file must hold at least
// its written bytes, and is hashed up to there. Files staged after the
// checkpoint are removed, so the resumed extraction can create them again.
func restage(ck *checkpoint) (*resumeState, error) {
	root, err := os.OpenRoot(ck.Staging)
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	defer root.Close()
	known := map[string]bool{}
	for _, bf := range ck.Files {
		n, sum, err := rootFileSHA256(root, bf.Path)
		if err != nil || n != bf.Size || sum != bf.SHA256 {
			return nil, fmt.Errorf("staged file %s changed since the checkpoint (%v)", bf.Path, err)
		}
		known[bf.Path] = true
	}
	rs := &resumeState{pos: ck.Plain, files: ck.Files, dirs: ck.Dirs, partial: ck.Partial}
	if p := ck.Partial; p != nil {
		if p.Written < 0 || p.Written > p.Size || p.Size < asyncHashMin {
			return nil, fmt.Errorf("partial file %s: %d of %d bytes written", p.Name, p.Written, p.Size)
		}
		h := sha256.New().(hashState)
		f, err := root.Open(p.Name)
		if err == nil {
			var n int64
			n, err = io.CopyBuffer(h, io.LimitReader(f, p.Written), make([]byte, copyBufSize))
			f.Close()
			if err == nil && n != p.Written {
				err = fmt.Errorf("it holds %d of the %d bytes written", n, p.Written)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("partial file %s: %w", p.Name, err)
		}
		rs.partialHash = h
		known[p.Name] = true
	}
	if err := removeUnknown(root, ".", known); err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	return rs, nil
}

// removeUnknown removes the regular files under dir of root that are not in
// known: files staged after the checkpoint.
func removeUnknown(root *os.Root, dir string, known map[string]bool) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if dir != "." {
			name = dir + "/" + name
		}
		switch {
		case e.IsDir():
			if err := removeUnknown(root, name, known); err != nil {
				return err
			}
		case !known[name]:
			if err := root.Remove(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// rootFileSHA256 hashes file name in root, as fileSHA256 does a path.
func rootFileSHA256(root *os.Root, name string) (int64, string, error) {
	f, err := root.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, copyBufSize))
	return n, fmt.Sprintf("%x", h.Sum(nil)), err
}

// writeCheckpoint writes ck to path, whole or not at all.
func writeCheckpoint(path string, ck *checkpoint) error {
	data, err := json.Marshal(ck)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// snapshots are the SHA-256 states of the ciphertext at the chunks a
// checkpoint may be taken at, kept by the pipeline's hash as it goes.
type snapshots struct {
	mu     sync.Mutex
	cond   *sync.Cond
	header []byte // age header and nonce; nil until known, or when unknown
	known  bool   // header is settled
	states map[int64][]byte
	pos    int64 // ciphertext bytes hashed
	done   bool
}

func newSnapshots(header []byte, pos int64) *snapshots {
	s := &snapshots{header: header, known: header != nil, states: map[int64][]byte{}, pos: pos}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// wanted reports whether a checkpoint may be taken at chunk c.
func wantedChunk(c int64) bool {
	return c >= checkpointEvery && c%checkpointEvery < checkpointWindow
}

// hashCiphertext hashes the blocks of in, in order, continuing h, and sends
// the hex SHA-256 when in is closed. At every chunk a checkpoint may be taken
// at, it records the hash's state in s.
func hashCiphertext(in <-chan *block, h hashState, s *snapshots) <-chan string {
	out := make(chan string, 1)
	go func() {
		defer func() {
			s.mu.Lock()
			s.done = true
			s.cond.Broadcast()
			s.mu.Unlock()
		}()
		for b := range in {
			s.hash(h, b.buf)
			b.release()
		}
		out <- fmt.Sprintf("%x", h.Sum(nil))
	}()
	return out
}

// hash writes buf, the ciphertext at s.pos, into h, saving its state at each
// wanted chunk boundary on the way.
func (s *snapshots) hash(h hashState, buf []byte) {
	s.mu.Lock()
	pos, known, header := s.pos, s.known, s.header
	s.mu.Unlock()
	if !known {
		// The first block: the header's length says where the chunks are.
		header = nil
		if hdr, err := age.ExtractHeader(bytes.NewReader(buf)); err == nil && len(hdr)+ageNonce <= len(buf) {
			header = append([]byte(nil), buf[:len(hdr)+ageNonce]...)
		}
		s.mu.Lock()
		s.header, s.known = header, true
		s.mu.Unlock()
	}
	if header != nil {
		hl := int64(len(header))
		first := max((pos-hl)/ageEncChunk+1, 1)
		for c := first; hl+c*ageEncChunk <= pos+int64(len(buf)); c++ {
			if !wantedChunk(c) {
				continue
			}
			at := hl + c*ageEncChunk - pos
			h.Write(buf[:at])
			buf, pos = buf[at:], pos+at
			state, err := h.MarshalBinary()
			s.mu.Lock()
			if err == nil {
				s.states[c] = state
			}
			for old := range s.states {
				if old < c-2*checkpointEvery {
					delete(s.states, old)
				}
			}
			s.pos = pos
			s.cond.Broadcast()
			s.mu.Unlock()
		}
	}
	h.Write(buf)
	s.mu.Lock()
	s.pos = pos + int64(len(buf))
	s.cond.Broadcast()
	s.mu.Unlock()
}

// wait returns the header and the hash state at chunk c once the hash has got
// there; ok is false if it never will.
func (s *snapshots) wait(c int64) (header, state []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.known && s.header == nil {
			return nil, nil, false
		}
		if s.known && s.pos >= int64(len(s.header))+c*ageEncChunk {
			state, ok = s.states[c]
			return s.header, state, ok
		}
		if s.done {
			return nil, nil, false
		}
		s.cond.Wait()
	}
}

// checkpointer takes the extraction's checkpoints, at most one per
// checkpointEvery chunks, and writes them on a goroutine of its own once the
// hash has reached their chunk.
type checkpointer struct {
	next  int64 // the first window a checkpoint may still be taken in
	base  checkpoint
	path  string
	snaps *snapshots
	queue chan checkpoint
	done  chan struct{}
	wrote bool // a checkpoint was written (read after close)
	err   error
}

func newCheckpointer(path string, base checkpoint, snaps *snapshots, from int64) *checkpointer {
	c := &checkpointer{next: from/ageChunk/checkpointEvery + 1, base: base, path: path, snaps: snaps,
		queue: make(chan checkpoint, 1), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ck := range c.queue {
			header, state, ok := snaps.wait(ck.Chunk)
			if !ok {
				continue
			}
			ck.Header, ck.HashState = header, state
			if err := writeCheckpoint(c.path, &ck); err != nil {
				c.err = err
				continue
			}
			c.wrote = true
			if checkpointWritten != nil {
				checkpointWritten(c.path)
			}
		}
	}()
	return c
}

// due reports whether a checkpoint may be taken at plaintext position pos.
func (c *checkpointer) due(pos int64) bool {
	if c == nil {
		return false
	}
	chunk := pos / ageChunk
	return wantedChunk(chunk) && chunk/checkpointEvery >= c.next
}

// take records a checkpoint at plaintext position pos (due said yes), with
// the entries staged whole and the large file written in part, if any. It
// never waits: if the previous checkpoint is still being written, this one
// is dropped.
func (c *checkpointer) take(pos int64, files []*BundleFile, dirs []string, partial *partialEntry) {
	chunk := pos / ageChunk
	c.next = chunk/checkpointEvery + 1
	ck := c.base
	ck.Version, ck.Chunk, ck.Plain, ck.Partial = checkpointVersion, chunk, pos, partial
	ck.Files = make([]BundleFile, len(files))
	for i, f := range files {
		ck.Files[i] = *f
	}
	ck.Dirs = append([]string(nil), dirs...)
	select {
	case c.queue <- ck:
	default:
	}
}

// close waits for the checkpoint being written and reports whether one was
// written in all.
func (c *checkpointer) close() bool {
	if c == nil {
		return false
	}
	close(c.queue)
	<-c.done
	return c.wrote
}

// resumeSource is the ciphertext as age's DecryptReaderAt reads it when a
// receive resumes: the header from the checkpoint, the last chunk fetched on
// its own, and the rest as the pipeline hands it on, in order from the
// checkpoint's chunk. The last chunk, which DecryptReaderAt authenticates
// first and may decrypt from its own copy, must equal the one that arrives
// in order and is hashed.
type resumeSource struct {
	header    []byte
	in        io.Reader
	pos, size int64
	finalOff  int64
	final     []byte // the last chunk, fetched apart
	tail      []byte // the last chunk as it arrived in order
}

func (s *resumeSource) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case off < int64(len(s.header)):
		n := copy(p, s.header[off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	case off == s.pos:
		n, err := io.ReadFull(s.in, p)
		s.keep(p[:n])
		return n, err
	case off == s.finalOff && len(p) <= len(s.final):
		return copy(p, s.final), nil
	}
	return 0, fmt.Errorf("resumed decryption read byte %d, the download is at %d", off, s.pos)
}

// keep counts p, the next bytes in order, and keeps those of the last chunk.
func (s *resumeSource) keep(p []byte) {
	if end := s.pos + int64(len(p)); end > s.finalOff {
		from := max(s.finalOff-s.pos, 0)
		s.tail = append(s.tail, p[from:]...)
	}
	s.pos += int64(len(p))
}

// finish reads the ciphertext to its end and checks that its last chunk is
// the one fetched apart.
func (s *resumeSource) finish() error {
	buf := make([]byte, 64<<10)
	for s.pos < s.size {
		n, err := s.in.Read(buf[:min(int64(len(buf)), s.size-s.pos)])
		s.keep(buf[:n])
		if err != nil && s.pos < s.size {
			return err
		}
	}
	if !bytes.Equal(s.tail, s.final) {
		return errors.New("the ciphertext's last chunk differs from the one fetched to start the resumed decryption")
	}
	return nil
}

// finalChunk is the ciphertext range of age's last chunk, given the header
// length and the ciphertext size.
func finalChunk(headerLen, size int64) (int64, int64) {
	payload := size - headerLen
	chunks := max((payload+ageEncChunk-1)/ageEncChunk, 1)
	return headerLen + (chunks-1)*ageEncChunk, size
}
