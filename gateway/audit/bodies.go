package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Body is a private entry's body and salt as kept beside the log and served
// to its parties: with the leaf at Index it opens the entry (Leaf.Open).
type Body struct {
	Index uint64 `json:"index"`
	Salt  []byte `json:"salt"` // base64 in JSON
	Body  string `json:"body"` // the event's canonical JSON
}

// bodyStore keeps private entries' bodies in files named by their
// commitment, written (and synced) before their leaf is appended, so that no
// leaf is ever without its body. A body whose leaf never made it (a crash
// between the two) is an orphan nobody can be shown.
type bodyStore struct {
	dir string
	db  *sql.DB // a shared log's database: bodies in its lexgate_bodies table, seen by every replica
}

// bodyFile is a body's file: its salt and body.
type bodyFile struct {
	Salt []byte `json:"salt"`
	Body string `json:"body"`
}

func (s bodyStore) path(c []byte) string {
	h := hex.EncodeToString(c)
	return filepath.Join(s.dir, h[:2], h+".json")
}

func (s bodyStore) put(ctx context.Context, c, salt, body []byte) error {
	if s.db != nil {
		return s.putDB(ctx, c, salt, body)
	}
	p := s.path(c)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("audit: bodies: %w", err)
	}
	b, err := json.Marshal(bodyFile{Salt: salt, Body: string(body)})
	if err != nil {
		return fmt.Errorf("audit: bodies: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("audit: bodies: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("audit: write body: %w", err)
	}
	return nil
}

// ErrNoBody is wrapped by the error of a private entry whose body is missing.
var ErrNoBody = errors.New("audit: the body of a private entry is missing")

func (s bodyStore) get(c []byte) (salt, body []byte, err error) {
	if s.db != nil {
		return s.getDB(c)
	}
	b, err := os.ReadFile(s.path(c))
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
	salt, body, err := bodyStore{dir: filepath.Join(dir, "bodies")}.get(lf.Commitment)
	if err != nil {
		return Event{}, err
	}
	return lf.Open(salt, body)
}
