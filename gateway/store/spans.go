package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
)

// Span is the half-open byte range [Start, End) of a transfer's ciphertext.
type Span struct {
	Start, End int64
}

// Progress is how much of an upload the store holds durably.
type Progress struct {
	// Offset is the contiguous prefix: bytes [0, Offset) are durable and
	// hashed. It is where an in-order upload resumes.
	Offset int64
	// Ranges are the durable ranges of a parallel upload beyond Offset:
	// sorted, disjoint, and touching neither Offset nor each other.
	Ranges []Span
	// Done is set when this write completed the upload: the transfer is
	// ready (or, with ErrHashMismatch, quarantined).
	Done bool
}

// claimSet records, per transfer, the spans that parallel range writes are
// writing now, outside the transfer's lock. A span is claimed by one write
// only, so no two writes (and no in-order append) write the same bytes at
// once, and nothing is written below the prefix, whose bytes are hashed
// already.
type claimSet struct {
	mu sync.Mutex
	m  map[string][]Span
}

func (c *claimSet) add(id string, spans []Span) {
	if len(spans) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string][]Span)
	}
	c.m[id] = append(c.m[id], spans...)
}

func (c *claimSet) remove(id string, spans []Span) {
	if len(spans) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	left := slices.DeleteFunc(c.m[id], func(s Span) bool { return slices.Contains(spans, s) })
	if len(left) == 0 {
		delete(c.m, id)
	} else {
		c.m[id] = left
	}
}

func (c *claimSet) get(id string) []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.m[id])
}

// holes returns the parts of want that none of the spans in cover covers, in
// order.
func holes(want Span, cover ...[]Span) []Span {
	var all []Span
	for _, c := range cover {
		all = append(all, c...)
	}
	slices.SortFunc(all, func(a, b Span) int { return cmpInt(a.Start, b.Start) })
	var out []Span
	at := want.Start
	for _, c := range all {
		if c.End <= at || c.Start >= want.End {
			continue
		}
		if c.Start > at {
			out = append(out, Span{at, c.Start})
		}
		at = max(at, c.End)
	}
	if at < want.End {
		out = append(out, Span{at, want.End})
	}
	return out
}

// merge returns the union of a and b as sorted spans, joining those that
// overlap or touch.
func merge(a, b []Span) []Span {
	all := append(slices.Clone(a), b...)
	slices.SortFunc(all, func(x, y Span) int { return cmpInt(x.Start, y.Start) })
	var out []Span
	for _, s := range all {
		if n := len(out); n > 0 && s.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, s.End)
			continue
		}
		out = append(out, s)
	}
	return out
}

// absorb moves the spans that reach prefix into it and returns the new
// prefix and the spans still beyond it.
func absorb(prefix int64, spans []Span) (int64, []Span) {
	var rest []Span
	for _, s := range merge(nil, spans) {
		switch {
		case s.End <= prefix:
		case s.Start <= prefix:
			prefix = s.End
		default:
			rest = append(rest, s)
		}
	}
	return prefix, rest
}

// intersect returns the parts of spans inside w.
func intersect(spans []Span, w Span) []Span {
	var out []Span
	for _, s := range spans {
		if a, b := max(s.Start, w.Start), min(s.End, w.End); a < b {
			out = append(out, Span{a, b})
		}
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadRanges returns the durable ranges of transfer id beyond prefix.
func (s *Store) loadRanges(ctx context.Context, id string, prefix int64) ([]Span, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT lo, hi FROM upload_ranges WHERE transfer_id = ? AND hi > ? ORDER BY lo`, id, prefix)
	if err != nil {
		return nil, fmt.Errorf("store: transfer %s: ranges: %w", id, err)
	}
	defer rows.Close()
	var out []Span
	for rows.Next() {
		var sp Span
		if err := rows.Scan(&sp.Start, &sp.End); err != nil {
			return nil, fmt.Errorf("store: transfer %s: ranges: %w", id, err)
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: transfer %s: ranges: %w", id, err)
	}
	_, rest := absorb(prefix, out) // rows left below a prefix that grew past them
	return rest, nil
}

// replaceRanges makes spans the transfer's recorded ranges, inside tx.
func replaceRanges(ctx context.Context, tx *sql.Tx, id string, spans []Span) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM upload_ranges WHERE transfer_id = ?`, id); err != nil {
		return fmt.Errorf("store: transfer %s: record ranges: %w", id, err)
	}
	for _, sp := range spans {
		if _, err := tx.ExecContext(ctx, `INSERT INTO upload_ranges (transfer_id, lo, hi) VALUES (?, ?, ?)`, id, sp.Start, sp.End); err != nil {
			return fmt.Errorf("store: transfer %s: record ranges: %w", id, err)
		}
	}
	return nil
}

// UploadProgress returns how much of transfer id the store holds durably: the
// contiguous prefix and, for a parallel upload, the ranges beyond it. A ready
// transfer's prefix is its size.
func (s *Store) UploadProgress(ctx context.Context, id string) (Progress, error) {
	if !validID(id) {
		return Progress{}, fmt.Errorf("%w: transfer %q", ErrNotFound, id)
	}
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{Offset: u.received}
	if u.state == StateUploading {
		if p.Ranges, err = s.loadRanges(ctx, id, u.received); err != nil {
			return Progress{}, err
		}
	}
	return p, nil
}
