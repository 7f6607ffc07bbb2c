package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Body is a private entry's body and salt as kept beside the log and served
// to its parties: with the leaf at Index it opens the entry (Leaf.Open).
type Body struct {
	Index uint64 `json:"index"`
	Salt  []byte `json:"salt"` // base64 in JSON
	Body  string `json:"body"` // the event's canonical JSON
}

// bodyStore keeps private entries' bodies beside the log, each written and
// synced before its leaf is appended, so that no leaf is ever without its
// body. A body whose leaf never made it (a crash or a failure between the
// two) is an orphan nobody can be shown.
//
// On a shared log the bodies are rows of the lexgate_bodies table, seen by
// every replica (driver.go). Otherwise they are lines appended to segment
// files in dir (bodies/seg-*.jsonl), one JSON record per body, written by
// batches of concurrent appends with one fsync each (bodybatch.go); the
// store indexes the segments when the log opens. A line cut short by a
// crash was never synced, so no leaf commits to it: it is ignored. Logs
// written before segments existed kept one file per body
// (bodies/<2 hex>/<commitment hex>.json): those are still read.
type bodyStore struct {
	dir    string
	db     *sql.DB // a shared log's database
	logger *slog.Logger
	batch  *bodyBatcher // nil for a store that only reads (OpenLocal)

	mu   sync.Mutex
	at   map[[32]byte]bodyLoc // where each body of the segments is
	segs []string             // the segments' paths, by bodyLoc.seg

	// The segment this process appends to: touched only by the batcher's
	// goroutine. nil until the first batch, and after a failed one.
	seg     *os.File
	segSize int64
}

// bodyLoc is where a body's record is: a segment (its index in
// bodyStore.segs), the record's offset and length.
type bodyLoc struct {
	off int64
	n   int32
	seg uint32
}

// bodyRecord is one line of a segment.
type bodyRecord struct {
	Commitment string `json:"commitment"` // hex
	Salt       []byte `json:"salt"`
	Body       string `json:"body"`
}

// bodyFile is a body's file in the layout before segments: its salt and body.
type bodyFile struct {
	Salt []byte `json:"salt"`
	Body string `json:"body"`
}

// segmentMax is the size past which a new segment is started.
const segmentMax = 64 << 20

// openBodies opens the bodies of the log in dir (or in db), indexing its
// segments; with a batcher (ctx, timeout) when the log is written to.
func openBodies(ctx context.Context, dir string, db *sql.DB, logger *slog.Logger, timeout time.Duration, write bool) (*bodyStore, error) {
	s := &bodyStore{dir: dir, db: db, logger: logger, at: map[[32]byte]bodyLoc{}}
	if db == nil {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	if write {
		w := s.appendSegment
		if db != nil {
			w = s.putDB
		}
		s.batch = newBodyBatcher(ctx, timeout, w)
	}
	return s, nil
}

// close stops the batcher, once the batch under way is written, and closes
// the segment.
func (s *bodyStore) close() {
	if s.batch != nil {
		s.batch.close()
	}
	if s.seg != nil {
		s.seg.Close()
		s.seg = nil
	}
}

func (s *bodyStore) legacyPath(c []byte) string {
	h := hex.EncodeToString(c)
	return filepath.Join(s.dir, h[:2], h+".json")
}

// put returns once the body is durable, sharing the sync with the bodies
// of concurrent appends.
func (s *bodyStore) put(ctx context.Context, c, salt, body []byte) error {
	return s.batch.put(ctx, c, salt, body)
}

// appendSegment appends a batch of bodies to the segment and syncs it. On
// any failure the batch's records are cut off again where possible and the
// segment is left for a new one: after a failed write or fsync, what the
// file holds is not known.
func (s *bodyStore) appendSegment(_ context.Context, batch []*bodyReq) error {
	var buf bytes.Buffer
	offs := make([]int, len(batch)+1)
	for i, r := range batch {
		offs[i] = buf.Len()
		b, err := json.Marshal(bodyRecord{Commitment: hex.EncodeToString(r.c), Salt: r.salt, Body: string(r.body)})
		if err != nil {
			return fmt.Errorf("audit: bodies: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	offs[len(batch)] = buf.Len()
	if s.seg == nil || s.segSize >= segmentMax {
		if err := s.newSegment(); err != nil {
			return fmt.Errorf("audit: write private entries' bodies in %s: %w", s.dir, err)
		}
	}
	base := s.segSize
	_, err := s.seg.Write(buf.Bytes())
	if err == nil {
		err = s.seg.Sync()
	}
	if err != nil {
		s.seg.Truncate(base)
		s.seg.Close()
		s.seg = nil
		return fmt.Errorf("audit: write private entries' bodies in %s (is its disk full?): %w", s.dir, err)
	}
	s.segSize += int64(buf.Len())
	s.mu.Lock()
	seg := uint32(len(s.segs) - 1) // newSegment added it last
	for i, r := range batch {
		s.at[[32]byte(r.c)] = bodyLoc{seg: seg, off: base + int64(offs[i]), n: int32(offs[i+1] - offs[i] - 1)}
	}
	s.mu.Unlock()
	return nil
}

// newSegment starts a new segment file, its name synced into dir.
func (s *bodyStore) newSegment() error {
	if s.seg != nil {
		s.seg.Close()
		s.seg = nil
	}
	if _, err := os.Stat(s.dir); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(s.dir, 0o700); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(s.dir)); err != nil {
			return err
		}
	}
	f, err := os.CreateTemp(s.dir, "seg-*.jsonl")
	if err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	s.seg, s.segSize = f, 0
	s.mu.Lock()
	s.segs = append(s.segs, f.Name())
	s.mu.Unlock()
	return nil
}

// syncDir makes the names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// load indexes every segment in dir. A last line without its newline was
// cut short by a crash before its sync; a line that does not parse is
// logged and left out (its entry cannot be shown).
func (s *bodyStore) load() error {
	segs, err := filepath.Glob(filepath.Join(s.dir, "seg-*.jsonl"))
	if err != nil {
		return fmt.Errorf("audit: bodies: %w", err)
	}
	for _, p := range segs {
		if err := s.loadSegment(p); err != nil {
			return fmt.Errorf("audit: bodies: %w", err)
		}
	}
	return nil
}

func (s *bodyStore) loadSegment(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	seg := uint32(len(s.segs))
	s.segs = append(s.segs, p)
	br := bufio.NewReader(f)
	var off int64
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // nothing, or a torn last line
		}
		if err != nil {
			return err
		}
		rec, derr := decodeRecord(line[:len(line)-1])
		c, herr := hex.DecodeString(rec.Commitment)
		if derr != nil || herr != nil || len(c) != 32 {
			if s.logger != nil {
				s.logger.Error("audit: an unreadable line in a bodies segment: its entry cannot be shown", "segment", p, "offset", off)
			}
		} else if _, dup := s.at[[32]byte(c)]; !dup {
			s.at[[32]byte(c)] = bodyLoc{seg: seg, off: off, n: int32(len(line) - 1)}
		}
		off += int64(len(line))
	}
}

func decodeRecord(b []byte) (bodyRecord, error) {
	var r bodyRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&r)
	return r, err
}

// ErrNoBody is wrapped by the error of a private entry whose body is missing.
var ErrNoBody = errors.New("audit: the body of a private entry is missing")

func (s *bodyStore) get(c []byte) (salt, body []byte, err error) {
	if len(c) != sha256.Size {
		return nil, nil, fmt.Errorf("%w: %x is not a commitment", ErrNoBody, c)
	}
	if s.db != nil {
		return s.getDB(c)
	}
	s.mu.Lock()
	loc, ok := s.at[[32]byte(c)]
	var seg string
	if ok {
		seg = s.segs[loc.seg]
	}
	s.mu.Unlock()
	if !ok {
		return s.getLegacy(c)
	}
	f, err := os.Open(seg)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read body: %w", err)
	}
	defer f.Close()
	b := make([]byte, loc.n)
	if _, err := f.ReadAt(b, loc.off); err != nil {
		return nil, nil, fmt.Errorf("audit: read body %x: %w", c, err)
	}
	rec, err := decodeRecord(b)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: body %x: %w", c, err)
	}
	if rec.Commitment != hex.EncodeToString(c) {
		return nil, nil, fmt.Errorf("%w: %x: its record in %s names another commitment", ErrNoBody, c, seg)
	}
	return rec.Salt, []byte(rec.Body), nil
}

// getLegacy reads a body from its own file, as logs kept them before segments.
func (s *bodyStore) getLegacy(c []byte) (salt, body []byte, err error) {
	b, err := os.ReadFile(s.legacyPath(c))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %x", ErrNoBody, c)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read body: %w", err)
	}
	var f bodyFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("audit: body %x: %w", c, err)
	}
	return f.Salt, []byte(f.Body), nil
}

// Event returns entry index as an event: a public leaf's own, or a private
// one's from its body, checked against its commitment.
func (l *Log) Event(ctx context.Context, index uint64) (Event, error) {
	l.mu.Lock()
	c, private := l.commits[index]
	l.mu.Unlock()
	if private {
		salt, body, err := l.bodies.get(c[:])
		if err != nil {
			return Event{}, fmt.Errorf("audit: entry %d: %w", index, err)
		}
		return Leaf{Commitment: c[:]}.Open(salt, body)
	}
	size, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return Event{}, fmt.Errorf("audit: log size: %w", err)
	}
	b, err := readEntry(ctx, l.reader, index, size)
	if err != nil {
		return Event{}, err
	}
	lf, err := ParseLeaf(b)
	if err == nil && lf.Public == nil && lf.Commitment != nil {
		// A private entry this process has not indexed: on a shared log,
		// another replica appended it. Its body is in the shared store.
		salt, body, berr := l.bodies.get(lf.Commitment)
		if berr != nil {
			return Event{}, fmt.Errorf("audit: entry %d: %w", index, berr)
		}
		return lf.Open(salt, body)
	}
	if err != nil || lf.Public == nil {
		return Event{}, fmt.Errorf("audit: entry %d: not a public entry and no body is known", index)
	}
	return *lf.Public, nil
}

// Bodies calls fn, in index order, with the body of every private entry
// below size to which trustDomain is a party. Public entries are left out:
// anyone reads them from the tiles.
func (l *Log) Bodies(ctx context.Context, trustDomain string, size uint64, fn func(Body) error) error {
	if l.cfg.shared() {
		l.mu.Lock()
		behind := l.indexed < size
		l.mu.Unlock()
		if behind {
			// Other replicas appended entries this one has not indexed.
			if err := l.catchUp(ctx); err != nil {
				return err
			}
		}
	}
	l.mu.Lock()
	idx := slices.Clone(l.parties[trustDomain])
	l.mu.Unlock()
	slices.Sort(idx)
	for _, i := range idx {
		if i >= size {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		c, private := l.commits[i]
		l.mu.Unlock()
		if !private {
			continue
		}
		salt, body, err := l.bodies.get(c[:])
		if err != nil {
			return fmt.Errorf("audit: entry %d: %w", i, err)
		}
		if err := fn(Body{Index: i, Salt: salt, Body: string(body)}); err != nil {
			return err
		}
	}
	return nil
}

// remember indexes entry i: its lookup key, its parties and, if private,
// its commitment. The caller holds l.mu.
func (l *Log) remember(i uint64, ev Event, commitment []byte) {
	if k := ev.lookupKey(); k != "" {
		if old, ok := l.index[k]; !ok || i > old {
			l.index[k] = i
		}
	}
	if commitment == nil {
		return
	}
	if _, seen := l.commits[i]; seen {
		// Appended here and read again by catchUp: its parties are
		// listed already (twice, Bodies would send its body twice).
		return
	}
	var c [32]byte
	copy(c[:], commitment)
	l.commits[i] = c
	for _, td := range Parties(ev, l.cfg.Operator) {
		l.parties[td] = append(l.parties[td], i)
	}
}

// OpenLocal returns the event of leaf lf of the log in dir, reading a
// private entry's body from beside the log: for tools and tests on the
// gateway's host.
func OpenLocal(dir string, lf Leaf) (Event, error) {
	if lf.Public != nil {
		return *lf.Public, nil
	}
	s, err := openBodies(context.Background(), filepath.Join(dir, "bodies"), nil, nil, 0, false)
	if err != nil {
		return Event{}, err
	}
	salt, body, err := s.get(lf.Commitment)
	if err != nil {
		return Event{}, err
	}
	return lf.Open(salt, body)
}
