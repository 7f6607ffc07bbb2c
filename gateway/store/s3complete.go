package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
)

// Completing an upload on the S3 backend: CompleteMultipartUpload, the
// read-back SHA-256 check, and the one commit that publishes the object;
// and objects made whole at once (SFTP ingest's staged files).

// s3Finish completes the multipart upload of u, every byte of which is
// recorded, checks the object's SHA-256 against u.wantHash — the running
// hash when it covers the object, else by reading the object back — and
// makes the transfer ready (with seal, if not nil) or quarantined. The
// caller holds the transfer's lock.
func (s *Store) s3Finish(ctx context.Context, u *upload, m multipart, now time.Time, seal *Seal) error {
	d := s.s3
	key := d.objectKey(u.id)
	pinned, err := s.complete(ctx, u, m)
	if err != nil {
		return err
	}
	crashpoint.Hit("store.finish.published")
	var got string
	var n int64
	if pinned {
		got, n = m.hash.sum(), m.hash.n
	} else if got, n, err = d.hashObject(ctx, key); err != nil {
		return err
	}
	if n != u.size || got != u.wantHash {
		if err := s.update(ctx, u, `SET state = 'quarantined', received = ?, hash_state = NULL`, u.size); err != nil {
			return err
		}
		if err := d.remove(ctx, u.id); err != nil {
			return err
		}
		return fmt.Errorf("%w: transfer %s: got %s, want %s; transfer quarantined", ErrHashMismatch, u.id, got, u.wantHash)
	}
	crashpoint.Hit("store.finish.verified")
	set := `SET state = 'ready', received = ?, hash_state = NULL, completed = ?`
	args := []any{u.size, now.UnixNano()}
	if seal != nil {
		set += `, ciphertext_sha256 = ?, manifest_hash = ?, manifest = ?`
		args = append(args, seal.CiphertextSHA256, seal.ManifestHash, nonNilBytes(seal.Manifest))
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE transfers `+set+` WHERE id = ? AND state = 'uploading' AND received = ?`,
			append(args, u.id, u.received)...)
		if err != nil {
			return fmt.Errorf("store: transfer %s: record upload: %w", u.id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: transfer %s changed during upload", u.id)
		}
		for _, q := range []string{`DELETE FROM s3_parts WHERE transfer_id = ?`, `DELETE FROM s3_uploads WHERE transfer_id = ?`} {
			if _, err := tx.ExecContext(ctx, q, u.id); err != nil {
				return fmt.Errorf("store: transfer %s: record upload: %w", u.id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Pieces of writes never recorded (a crash, a cut body) go too; any left
	// by a failure here, Open removes.
	if pieces, err := d.listKeys(ctx, d.piecesPrefix(u.id)); err == nil {
		d.deleteKeys(ctx, pieces)
	}
	return nil
}

// complete runs CompleteMultipartUpload. When m's running hash covers the
// upload it names the parts' recorded ETags, and reports pinned: the object
// is made of the bytes the hash covers. Otherwise, or if the server refuses
// those ETags (a part in the bucket is not the one hashed), it names the
// parts the bucket lists, and the object must be read back to be checked. An
// upload already completed (a crash before the metadata said so) is found by
// its object, and is read back too.
func (s *Store) complete(ctx context.Context, u *upload, m multipart) (pinned bool, err error) {
	if m.hash.h != nil && m.hash.n == u.size {
		if ok, err := s.completePinned(ctx, u, m); ok || err != nil {
			return ok, err
		}
	}
	return false, s.completeListed(ctx, u, m)
}

// completePinned completes u's upload with the ETags recorded with its
// parts. It reports false, and no error, when some part has none or the
// server refuses them: completeListed then takes over.
func (s *Store) completePinned(ctx context.Context, u *upload, m multipart) (bool, error) {
	d := s.s3
	want := (u.size + m.partSize - 1) / m.partSize
	if want == 0 {
		return false, nil
	}
	recorded, err := s.recordedParts(ctx, u.id)
	if err != nil {
		return false, err
	}
	parts := make([]s3types.CompletedPart, want)
	for k := range want {
		etag := recorded[k]
		if etag == "" {
			return false, nil
		}
		parts[k] = s3types.CompletedPart{PartNumber: aws.Int32(int32(k + 1)), ETag: aws.String(etag)}
	}
	key := d.objectKey(u.id)
	_, err = d.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &d.bucket, Key: &key,
		UploadId: &m.uploadID, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	var st interface{ HTTPStatusCode() int }
	switch {
	case err == nil:
		return true, nil
	case notFound(err):
		return false, nil // completed before a crash, or lost: completeListed finds out
	case errors.As(err, &st) && st.HTTPStatusCode() == http.StatusBadRequest:
		slog.WarnContext(ctx, "store: s3: a part in the bucket is not the one sent; reading the object back to check it",
			slog.String("transfer", u.id), slog.Any("err", err))
		return false, nil
	}
	return false, d.err("complete "+u.id, err)
}

// completeListed runs CompleteMultipartUpload with the parts the bucket lists.
func (s *Store) completeListed(ctx context.Context, u *upload, m multipart) error {
	d := s.s3
	key := d.objectKey(u.id)
	var parts []s3types.CompletedPart
	p := s3.NewListPartsPaginator(d.c, &s3.ListPartsInput{Bucket: &d.bucket, Key: &key, UploadId: &m.uploadID})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if notFound(err) {
			if _, herr := d.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key}); herr == nil {
				return nil // completed before a crash
			}
			_, err := s.s3Restart(ctx, u, fmt.Errorf("store: transfer %s: %w", u.id, errLostPiece))
			return err
		}
		if err != nil {
			return d.err("list parts of "+u.id, err)
		}
		for _, pt := range page.Parts {
			parts = append(parts, s3types.CompletedPart{PartNumber: pt.PartNumber, ETag: pt.ETag})
		}
	}
	slices.SortFunc(parts, func(a, b s3types.CompletedPart) int {
		return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber))
	})
	want := (u.size + m.partSize - 1) / m.partSize
	if u.size == 0 {
		want = 0
	}
	for i, pt := range parts {
		if int64(aws.ToInt32(pt.PartNumber)) != int64(i+1) {
			parts = parts[:i]
			break
		}
	}
	if int64(len(parts)) != want {
		_, err := s.s3Restart(ctx, u, fmt.Errorf("store: transfer %s: %d of %d parts in the bucket: %w", u.id, len(parts), want, errLostPiece))
		return err
	}
	if want == 0 { // an empty ciphertext: S3 completes no upload without parts
		d.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: &m.uploadID})
		_, err := d.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &d.bucket, Key: &key, Body: bytes.NewReader(nil)})
		if err != nil {
			return d.err("complete "+u.id, err)
		}
		return nil
	}
	_, err := d.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &d.bucket, Key: &key,
		UploadId: &m.uploadID, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		return d.err("complete "+u.id, err)
	}
	return nil
}

// hashObject reads key whole and returns its SHA-256 (hex) and size.
func (d *s3Store) hashObject(ctx context.Context, key string) (string, int64, error) {
	out, err := d.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: &key})
	if err != nil {
		return "", 0, d.err("read back "+key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	n, err := io.CopyBuffer(h, out.Body, *bp)
	if err != nil {
		return "", n, d.err("read back "+key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// s3Seal is Seal's work on the S3 backend, for an upload u with every byte
// recorded. The caller holds the transfer's lock.
func (s *Store) s3Seal(ctx context.Context, u *upload, seal Seal, now time.Time) error {
	m, ok, err := s.loadMultipart(ctx, u.id)
	if err != nil {
		return err
	}
	if !ok {
		if m, err = s.ensureUpload(ctx, u); err != nil { // an empty ciphertext
			return err
		}
	}
	if err := s.assemble(ctx, u, &m, nil); err != nil {
		if errors.Is(err, errLostPiece) {
			_, err = s.s3Restart(ctx, u, err)
			return fmt.Errorf("%w: %w", ErrSealIncomplete, err)
		}
		return err
	}
	u.wantHash = seal.CiphertextSHA256
	err = s.s3Finish(ctx, u, m, now, &seal)
	var oe *OffsetError
	if errors.As(err, &oe) {
		return fmt.Errorf("%w: %w", ErrSealIncomplete, err)
	}
	return err
}

// s3PutStaged sends the staged file at path to the bucket as transfer id's
// object (a multipart upload of its parts), for CreateReady.
func (s *Store) s3PutStaged(ctx context.Context, id, path string) error {
	d := s.s3
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store: transfer %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: transfer %s: %w", id, err)
	}
	u := &upload{id: id, size: fi.Size()}
	key := d.objectKey(id)
	out, err := d.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &key})
	if err != nil {
		return d.err("start upload of "+id, err)
	}
	m := multipart{uploadID: aws.ToString(out.UploadId), partSize: d.partSizeFor(u.size)}
	var parts []s3types.CompletedPart
	bp, err := d.bufs.get(ctx, min(m.partSize, max(u.size, 1)))
	if err != nil {
		return err
	}
	defer d.bufs.put(bp)
	buf := *bp
	for k := int64(0); k*m.partSize < u.size; k++ {
		sp := m.part(k, u.size)
		b := buf[:sp.End-sp.Start]
		if _, err := f.ReadAt(b, sp.Start); err != nil {
			return fmt.Errorf("store: transfer %s: read staged file: %w", id, err)
		}
		num := int32(k + 1)
		po, err := d.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &d.bucket, Key: &key, UploadId: &m.uploadID,
			PartNumber: &num, Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b)))})
		if err != nil {
			return d.err(fmt.Sprintf("part %d of %s", num, id), err)
		}
		parts = append(parts, s3types.CompletedPart{PartNumber: &num, ETag: po.ETag})
	}
	if len(parts) == 0 {
		d.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: &m.uploadID})
		if _, err := d.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &d.bucket, Key: &key, Body: bytes.NewReader(nil)}); err != nil {
			return d.err("store "+id, err)
		}
		return nil
	}
	_, err = d.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &d.bucket, Key: &key,
		UploadId: &m.uploadID, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		return d.err("complete "+id, err)
	}
	return nil
}
