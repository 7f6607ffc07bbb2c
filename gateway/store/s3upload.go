package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
)

// s3Write is what one write sent to the bucket: the spans it made durable,
// the parts it sent whole, and the upload's running hash after them if they
// advanced it (h nil: they did not).
type s3Write struct {
	done  []Span
	parts []sentPart
	hash  runningHash
	// obsolete are pieces whose bytes went in a part: deleted once it is recorded.
	obsolete []string
}

// sentPart is a part (0-based) sent whole, and the ETag the server gave it.
type sentPart struct {
	k    int64
	etag string
}

// s3WriteAt is WriteAt's append on the S3 backend, for upload u at offset
// (its received bytes). WriteAt holds the transfer's lock throughout, as on
// the spool: appends run one at a time.
func (s *Store) s3WriteAt(ctx context.Context, u *upload, offset int64, r io.Reader, now time.Time) (int64, error) {
	id := u.id
	m, err := s.ensureUpload(ctx, u)
	if err != nil {
		return u.received, err
	}
	ranges, err := s.loadRanges(ctx, id, u.received)
	if err != nil {
		return u.received, err
	}
	// As on the spool, an append stops where ranges beyond the offset begin:
	// the rest of the body is read and dropped, and the ranges join.
	boundary := u.size
	for _, sp := range ranges {
		boundary = min(boundary, max(sp.Start, u.received))
	}
	// The append holds the lock: its parts may continue the running hash.
	w, werr := s.s3.send(ctx, id, m, u.size, Span{offset, u.size}, []Span{{offset, boundary}}, r, true)
	if errors.Is(werr, errShortBody) {
		werr = nil // an append ends where its body does
	}
	if errors.Is(werr, ErrTooLarge) {
		return u.received, fmt.Errorf("%w: transfer %s declared %d bytes", ErrTooLarge, id, u.size)
	}
	if len(w.done) == 0 && werr != nil {
		return u.received, wrapCopyErr(u, werr)
	}
	// The bytes are in the bucket: record them even if the client has gone.
	crashpoint.Hit("store.upload.synced")
	p, err := s.s3Record(context.WithoutCancel(ctx), u, m, w, now)
	if err != nil {
		return p.Offset, err
	}
	if werr != nil && p.Offset < u.size {
		return p.Offset, wrapCopyErr(u, werr)
	}
	return p.Offset, nil
}

// s3WriteRange is WriteRange on the S3 backend: the bytes go to the bucket
// outside the transfer's lock, which is held to check the range and to
// record it. Two writes of the same bytes send the same part or piece twice,
// which is harmless: both carry the sender's ciphertext.
func (s *Store) s3WriteRange(ctx context.Context, id string, offset, end int64, r io.Reader, now time.Time) (Progress, error) {
	m, size, todo, p, err := s.s3ClaimRange(ctx, id, offset, end)
	if todo == nil {
		return p, err
	}
	// Sent outside the lock, a range's parts never continue the running
	// hash: another write may send the same part meanwhile.
	w, werr := s.s3.send(ctx, id, m, size, Span{offset, end}, todo, r, false)
	if errors.Is(werr, ErrTooLarge) {
		return p, fmt.Errorf("store: transfer %s: range %d-%d: %w", id, offset, end, werr)
	}
	if len(w.done) == 0 && werr != nil {
		return s.s3RangeFailed(ctx, id, p, werr)
	}
	ctx = context.WithoutCancel(ctx)
	crashpoint.Hit("store.range.written")
	crashpoint.Hit("store.range.synced")
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return p, fmt.Errorf("store: write transfer %s: %w", id, err)
	}
	defer unlock()
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return p, err
	}
	switch u.state {
	case StateReady:
		return Progress{Offset: u.received}, nil
	case StateQuarantined:
		return Progress{Offset: u.received}, fmt.Errorf("%w: transfer %s is quarantined", ErrHashMismatch, id)
	}
	p, err = s.s3Record(ctx, u, m, w, now)
	if err == nil && werr != nil {
		err = fmt.Errorf("store: transfer %s: upload interrupted: %w", id, werr)
	}
	return p, err
}

// s3RangeFailed is the outcome of a range write none of whose bytes reached
// the bucket. The bytes were sent outside the transfer's lock, so another
// writer (on this replica or another) may have completed the upload
// meanwhile, which ends its multipart upload (NoSuchUpload): then the
// transfer is ready and this write has nothing left to do, as if it had
// come after. Otherwise the failure stands.
func (s *Store) s3RangeFailed(ctx context.Context, id string, p Progress, werr error) (Progress, error) {
	failed := fmt.Errorf("store: transfer %s: upload interrupted: %w", id, werr)
	if !notFound(werr) {
		return p, failed
	}
	ctx = context.WithoutCancel(ctx)
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return p, failed
	}
	defer unlock()
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return p, failed
	}
	switch u.state {
	case StateReady:
		return Progress{Offset: u.received}, nil
	case StateQuarantined:
		return Progress{Offset: u.received}, fmt.Errorf("%w: transfer %s is quarantined", ErrHashMismatch, id)
	}
	return p, failed
}

// s3ClaimRange checks a range write under the transfer's lock and returns
// the upload, the transfer's size and the spans of [offset, end) not yet
// durable. A nil todo means there is nothing to write: p and err say why.
func (s *Store) s3ClaimRange(ctx context.Context, id string, offset, end int64) (m multipart, size int64, todo []Span, p Progress, err error) {
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return m, 0, nil, p, fmt.Errorf("store: write transfer %s: %w", id, err)
	}
	defer unlock()
	u, err := s.loadUpload(ctx, id)
	if err != nil {
		return m, 0, nil, p, err
	}
	p = Progress{Offset: u.received}
	switch {
	case u.state == StateQuarantined:
		return m, 0, nil, p, fmt.Errorf("%w: transfer %s is quarantined", ErrHashMismatch, id)
	case end > u.size:
		return m, 0, nil, p, fmt.Errorf("%w: transfer %s: range %d-%d ends past its %d bytes", ErrTooLarge, id, offset, end, u.size)
	case u.state == StateReady:
		return m, 0, nil, p, nil
	case u.received == 0 && offset > 0:
		return m, 0, nil, p, &OffsetError{Expected: 0, Got: offset}
	}
	if p.Ranges, err = s.loadRanges(ctx, id, u.received); err != nil {
		return m, 0, nil, p, err
	}
	if m, err = s.ensureUpload(ctx, u); err != nil {
		return m, 0, nil, p, err
	}
	todo = holes(Span{max(offset, u.received), end}, p.Ranges)
	if todo == nil {
		todo = []Span{} // all durable: read and drop the body
	}
	return m, u.size, todo, p, nil
}

// send reads the bytes of span from r and sends those in todo to the bucket,
// cut at part boundaries: a whole part as that part, anything else as a
// piece. It stops at the first failure, returning what it sent. A body
// longer than span is ErrTooLarge; one that ends early keeps what came.
// With hashing, whole parts that continue m's running hash go into it (a
// copy: m's stays as recorded).
func (d *s3Store) send(ctx context.Context, id string, m multipart, size int64, span Span, todo []Span, r io.Reader, hashing bool) (s3Write, error) {
	var w s3Write
	var rh *runningHash
	if hashing {
		c := m.hash.clone()
		rh = &c
	}
	first := m.part(span.Start/m.partSize, size)
	n := min(m.partSize, span.End-span.Start)
	if rh != nil {
		n = min(m.partSize, span.End-first.Start) // room for the first part's head
	}
	bp, err := d.bufs.get(ctx, n)
	if err != nil {
		return w, err
	}
	defer d.bufs.put(bp)
	buf := *bp
	for at := span.Start; at < span.End; {
		if err := ctx.Err(); err != nil {
			return w, err
		}
		k := at / m.partSize
		part := m.part(k, size)
		seg := Span{at, min(part.End, span.End)}
		var head int64
		var used []string
		if at == span.Start && at > part.Start && seg.End == part.End && rh.continues(part.Start) && len(holes(seg, todo)) == 0 {
			head, used = d.readHead(ctx, id, Span{part.Start, at}, buf)
		}
		b := buf[head : head+seg.End-seg.Start]
		n, rerr := readFull(r, b)
		got := Span{at, at + int64(n)}
		if rerr == nil && got.End == span.End && hasMore(r) {
			return w, fmt.Errorf("%w: the body is longer than %d-%d", ErrTooLarge, span.Start, span.End)
		}
		if head > 0 && got.End == part.End {
			// The write completes a part whose head is in pieces: the part
			// goes whole, continuing the running hash, and the pieces go.
			etag, err := d.sendSpan(context.WithoutCancel(ctx), id, m, size, k, part, buf[:part.End-part.Start], rh)
			if err != nil {
				return w, err
			}
			w.done = append(w.done, seg)
			w.parts = append(w.parts, sentPart{k, etag})
			w.obsolete = used
			if rh.continues(part.End) {
				w.hash = rh.clone()
			}
			at = got.End
			continue
		}
		for _, h := range intersect(todo, got) {
			// Bytes received are kept even if the client has gone meanwhile.
			etag, err := d.sendSpan(context.WithoutCancel(ctx), id, m, size, k, h, b[h.Start-at:h.End-at], rh)
			if err != nil {
				return w, err
			}
			w.done = append(w.done, h)
			if h == m.part(k, size) {
				w.parts = append(w.parts, sentPart{k, etag})
				if rh.continues(h.End) {
					w.hash = rh.clone() // rh goes on with the next part
				}
			}
		}
		at = got.End
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return w, fmt.Errorf("the body ended at byte %d of %d-%d: %w", at, span.Start, span.End, errShortBody)
		case rerr != nil:
			return w, rerr
		}
	}
	return w, nil
}

// readHead reads the bytes of span, the head of a part before an append's
// offset (recorded, so in pieces), into the start of buf. It returns their
// length and the keys of the pieces inside span, or 0 if they cannot be read
// (the append then sends its bytes of the part as a piece, as it would
// otherwise).
func (d *s3Store) readHead(ctx context.Context, id string, span Span, buf []byte) (int64, []string) {
	keys, err := d.listKeys(ctx, d.piecesPrefix(id))
	if err != nil {
		return 0, nil
	}
	if _, used, err := d.readPieces(ctx, id, parsePieces(keys, d.piecesPrefix(id)), span, buf[:span.End-span.Start]); err == nil {
		return span.End - span.Start, used
	}
	return 0, nil
}

// readFull is io.ReadFull in blocks of copyBufSize, each block a crash point:
// bytes received, not yet in the bucket (as on the spool: written, not synced).
func readFull(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := io.ReadFull(r, b[n:min(n+copyBufSize, len(b))])
		n += k
		if k > 0 {
			crashpoint.Hit("store.upload.mid_chunk")
		}
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

// errShortBody: a write's body ended before its span did.
var errShortBody = fmt.Errorf("short body: %w", io.ErrUnexpectedEOF)

// sendSpan sends the bytes b of span h, inside part k: as the part when h is
// all of it (returning its ETag, and hashing it into rh if it continues rh),
// else as a piece.
func (d *s3Store) sendSpan(ctx context.Context, id string, m multipart, size, k int64, h Span, b []byte, rh *runningHash) (string, error) {
	key := d.objectKey(id)
	if h == m.part(k, size) {
		num := int32(k + 1)
		sum := hashPart(b, rh, h.Start)
		po, err := d.c.UploadPart(withPayloadHash(ctx, sum), &s3.UploadPartInput{Bucket: &d.bucket, Key: &key, UploadId: &m.uploadID,
			PartNumber: &num, Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b)))})
		if err != nil {
			if rh != nil {
				rh.h = nil // it holds bytes the bucket may not
			}
			return "", d.err(fmt.Sprintf("part %d of %s", num, id), err)
		}
		return aws.ToString(po.ETag), nil
	}
	pk := d.pieceKey(id, h)
	_, err := d.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &d.bucket, Key: &pk, Body: bytes.NewReader(b),
		ContentLength: aws.Int64(int64(len(b)))})
	if err != nil {
		return "", d.err("piece of "+id, err)
	}
	return "", nil
}

// s3Record records what w sent for upload u, assembles every part the
// recorded bytes now cover, and completes the upload when it has every byte
// and a hash to check. The caller holds the transfer's lock.
func (s *Store) s3Record(ctx context.Context, u *upload, m multipart, w s3Write, now time.Time) (Progress, error) {
	have, err := s.loadRanges(ctx, u.id, u.received)
	if err != nil {
		return Progress{Offset: u.received}, err
	}
	prefix, rest := absorb(u.received, merge(have, w.done))
	var hashed bool
	err = s.write(ctx, func(tx *sql.Tx) error {
		hashed = false
		res, err := tx.ExecContext(ctx, `UPDATE transfers SET received = ? WHERE id = ? AND state = 'uploading' AND received = ?`,
			prefix, u.id, u.received)
		if err != nil {
			return fmt.Errorf("store: transfer %s: record upload: %w", u.id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: transfer %s changed during upload", u.id)
		}
		if err := replaceRanges(ctx, tx, u.id, rest); err != nil {
			return err
		}
		if err := insertParts(ctx, tx, u.id, w.parts); err != nil {
			return err
		}
		hashed, err = recordHash(ctx, tx, u.id, m, w)
		return err
	})
	if err != nil {
		return Progress{Offset: u.received}, err
	}
	u.received = prefix
	if hashed {
		m.hash = w.hash
	}
	s.s3.deleteKeys(ctx, w.obsolete) // any left, completion deletes
	if err := s.assemble(ctx, u, &m, rest); err != nil {
		if errors.Is(err, errLostPiece) {
			_, err = s.s3Restart(ctx, u, err)
			return Progress{}, err
		}
		return Progress{Offset: u.received, Ranges: rest}, err
	}
	if prefix == u.size && u.wantHash != "" {
		err := s.s3Finish(ctx, u, m, now, nil)
		if err != nil && !errors.Is(err, ErrHashMismatch) {
			return Progress{Offset: u.received, Ranges: rest}, err
		}
		return Progress{Offset: prefix, Done: true}, err
	}
	return Progress{Offset: prefix, Ranges: rest}, nil
}

// insertParts records parts sent whole. A part recorded already keeps its
// ETag: the running hash may cover the bytes it names.
func insertParts(ctx context.Context, tx *sql.Tx, id string, parts []sentPart) error {
	for _, p := range parts {
		_, err := tx.ExecContext(ctx, `INSERT INTO s3_parts (transfer_id, part, etag) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			id, p.k, nullString(p.etag))
		if err != nil {
			return fmt.Errorf("store: transfer %s: record part %d: %w", id, p.k+1, err)
		}
	}
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// recordHash records w's running hash for transfer id in tx, after w's parts,
// if w advanced m's and every part it hashed is recorded with the ETag it
// was hashed with (a part recorded first by another write names other
// bytes: the hash stops there). It reports whether it recorded it.
func recordHash(ctx context.Context, tx *sql.Tx, id string, m multipart, w s3Write) (bool, error) {
	if w.hash.h == nil || m.hash.h == nil || w.hash.n <= m.hash.n {
		return false, nil
	}
	for _, p := range w.parts {
		if start := p.k * m.partSize; start < m.hash.n || start >= w.hash.n {
			continue
		}
		var etag sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT etag FROM s3_parts WHERE transfer_id = ? AND part = ?`, id, p.k).Scan(&etag)
		if err != nil {
			return false, fmt.Errorf("store: transfer %s: part %d: %w", id, p.k+1, err)
		}
		if etag.String != p.etag || p.etag == "" {
			return false, nil
		}
	}
	hs, err := w.hash.state()
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE s3_uploads SET hash_state = ?, hashed = ? WHERE transfer_id = ? AND hashed = ? AND upload_id = ?`,
		hs, w.hash.n, id, m.hash.n, m.uploadID)
	if err != nil {
		return false, fmt.Errorf("store: transfer %s: record hash: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// errLostPiece: recorded bytes are in no piece in the bucket.
var errLostPiece = errors.New("recorded bytes missing from the bucket")

// assemble sends as parts those the recorded bytes ([0, u.received) and
// ranges) cover and no whole write sent, from their pieces, then deletes the
// pieces. The caller holds the transfer's lock.
// Parts that continue m's running hash go into it, and m's hash is then
// the one recorded.
func (s *Store) assemble(ctx context.Context, u *upload, m *multipart, ranges []Span) error {
	sent, err := s.recordedParts(ctx, u.id)
	if err != nil {
		return err
	}
	durable := merge([]Span{{0, u.received}}, ranges)
	var todo []int64
	for k := int64(0); k*m.partSize < u.size; k++ {
		if _, ok := sent[k]; !ok && len(holes(m.part(k, u.size), durable)) == 0 {
			todo = append(todo, k)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	d := s.s3
	keys, err := d.listKeys(ctx, d.piecesPrefix(u.id))
	if err != nil {
		return err
	}
	pieces := parsePieces(keys, d.piecesPrefix(u.id))
	// Bytes recorded wait in pieces meanwhile; the next write or seal
	// assembles them if no buffer comes free in time.
	bctx, cancel := context.WithTimeout(ctx, time.Minute)
	bp, err := d.bufs.get(bctx, m.partSize)
	cancel()
	if err != nil {
		return err
	}
	defer d.bufs.put(bp)
	for _, k := range todo {
		part := m.part(k, u.size)
		b, used, err := d.readPieces(ctx, u.id, pieces, part, (*bp)[:part.End-part.Start])
		if err != nil {
			return err
		}
		rh := m.hash.clone()
		etag, err := d.sendSpan(ctx, u.id, *m, u.size, k, part, b, &rh)
		if err != nil {
			return err
		}
		w := s3Write{parts: []sentPart{{k, etag}}}
		if rh.continues(part.End) {
			w.hash = rh
		}
		var hashed bool
		err = s.write(ctx, func(tx *sql.Tx) error {
			if err := insertParts(ctx, tx, u.id, w.parts); err != nil {
				return err
			}
			var err error
			hashed, err = recordHash(ctx, tx, u.id, *m, w)
			return err
		})
		if err != nil {
			return err
		}
		if hashed {
			m.hash = w.hash
		}
		if err := d.deleteKeys(ctx, used); err != nil {
			return err
		}
	}
	return nil
}

type piece struct {
	key  string
	span Span
}

// parsePieces reads the spans from the piece keys under prefix.
func parsePieces(keys []string, prefix string) []piece {
	var out []piece
	for _, k := range keys {
		a, b, ok := strings.Cut(strings.TrimPrefix(k, prefix), "-")
		lo, err1 := strconv.ParseInt(a, 10, 64)
		hi, err2 := strconv.ParseInt(b, 10, 64)
		if ok && err1 == nil && err2 == nil && lo < hi {
			out = append(out, piece{k, Span{lo, hi}})
		}
	}
	return out
}

// readPieces reads the bytes of part from the pieces into b, and returns them
// with the keys of the pieces inside the part.
func (d *s3Store) readPieces(ctx context.Context, id string, pieces []piece, part Span, b []byte) ([]byte, []string, error) {
	var used []string
	for _, p := range pieces {
		if p.span.Start >= part.Start && p.span.End <= part.End {
			used = append(used, p.key)
		}
	}
	for at := part.Start; at < part.End; {
		best := -1
		for i, p := range pieces {
			if p.span.Start <= at && p.span.End > at && (best < 0 || p.span.End > pieces[best].span.End) {
				best = i
			}
		}
		if best < 0 {
			return nil, nil, fmt.Errorf("store: transfer %s: byte %d: %w", id, at, errLostPiece)
		}
		p := pieces[best]
		to := min(p.span.End, part.End)
		if _, err := d.readRange(ctx, p.key, at-p.span.Start, b[at-part.Start:to-part.Start]); err != nil {
			if notFound(errors.Unwrap(err)) {
				return nil, nil, fmt.Errorf("store: transfer %s: piece %s: %w", id, p.key, errLostPiece)
			}
			return nil, nil, err
		}
		at = to
	}
	return b, used, nil
}

// s3Restart sends an upload whose recorded bytes the bucket lost back to
// offset 0, as restart does on the spool. It returns an *OffsetError.
func (s *Store) s3Restart(ctx context.Context, u *upload, cause error) (int64, error) {
	if err := s.s3.remove(ctx, u.id); err != nil {
		return u.received, fmt.Errorf("%w; removing its bytes: %w", cause, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{`UPDATE transfers SET received = 0 WHERE id = ?`, `DELETE FROM s3_parts WHERE transfer_id = ?`,
			`DELETE FROM s3_uploads WHERE transfer_id = ?`} {
			if _, err := tx.ExecContext(ctx, q, u.id); err != nil {
				return fmt.Errorf("store: transfer %s: restart: %w", u.id, err)
			}
		}
		return replaceRanges(ctx, tx, u.id, nil)
	})
	if err != nil {
		return u.received, err
	}
	return 0, &OffsetError{Expected: 0, Got: u.received}
}
