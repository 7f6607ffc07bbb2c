package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

// The S3 ciphertext backend (Config.Ciphertext "s3"). The metadata stays in
// the metadata driver (PostgreSQL for replicas); the bytes go to a bucket
// every replica reaches, under these keys (after the configured prefix):
//
//	objects/<id>                 a sealed ciphertext, the only key ever read for
//	                             delivery; it exists once CompleteMultipartUpload
//	                             ran, and is published when the transfer turns ready
//	pieces/<id>/<start>-<end>    bytes of an upload that do not fill a whole part
//
// An upload is one multipart upload of objects/<id> (table s3_uploads: its id
// and part size, fixed when it starts). Part k (from 1) holds the bytes
// [(k−1)·P, k·P) of the ciphertext, P the part size (8 MiB unless configured,
// doubled until the transfer fits in 10,000 parts). Any write — an in-order
// chunk or a parallel range — is cut at part boundaries: a whole part is sent
// as that part (UploadPart), any other piece as a small object of its own
// (PutObject). Both are durable when the server answers; only then are the
// bytes recorded as ranges (upload_ranges) and the contiguous offset, exactly
// as on the spool. When recorded bytes cover a part that was not sent whole,
// the replica holding the transfer's lock assembles it from its pieces (ranged
// GETs), sends it as the part, records it (s3_parts) and deletes the pieces.
// So a write of any size and alignment lands in the bucket before it is
// acknowledged, and an upload resumes on any replica from the database's
// offset, ranges and parts and the bucket's pieces.
//
// Nothing is readable before it is complete: parts of a multipart upload are
// not objects, and CompleteMultipartUpload runs only when the last byte is in
// (or at Seal, for a streamed transfer). The object's SHA-256 is then
// compared with the manifest's before the transfer turns ready; on a
// mismatch the object is deleted and the transfer quarantined. An upload
// sent in order is hashed while it is sent, as on the spool (see s3hash.go);
// any other is read back once to be hashed.

// ErrUnavailable means the object store could not be reached or failed (a
// network error, a 5xx answer): nothing of the failed step was recorded, and
// the same request can be retried once the store is back.
var ErrUnavailable = errors.New("store: object storage unavailable, retry later")

// maxParts is S3's limit of parts in one multipart upload.
const maxParts = 10000

type s3Store struct {
	c        *s3.Client
	bucket   string
	prefix   string
	partSize int64
	bufs     *partBufs
}

func openS3(cfg S3Config) (*s3Store, error) {
	secret, err := cfg.secretKey()
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	creds := aws.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: secret, Source: "lexgate config"}
	c := s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(cfg.Endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		// Checksums only where S3 requires them: S3-compatible servers vary
		// in the trailing checksums they accept, and the SHA-256 of every
		// payload is signed (x-amz-content-sha256) anyway.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		// A part's SHA-256 is computed once, for the running hash and the
		// signature both.
		APIOptions: []func(*middleware.Stack) error{presetPayloadHash},
	})
	ps := int64(cfg.PartSizeMiB) << 20
	if ps == 0 {
		ps = defaultPartSize
	}
	nb := cfg.PartBuffers
	if nb == 0 {
		nb = defaultPartBuffers
	}
	return &s3Store{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix, partSize: ps, bufs: newPartBufs(nb, ps)}, nil
}

// check makes sure the bucket is there and the credentials work.
func (d *s3Store) check(ctx context.Context) error {
	_, err := d.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &d.bucket})
	var st interface{ HTTPStatusCode() int }
	switch {
	case err == nil:
		return nil
	case errors.As(err, &st) && st.HTTPStatusCode() == http.StatusNotFound:
		return fmt.Errorf("store: s3: bucket %s does not exist: create it, or fix s3.bucket", d.bucket)
	case errors.As(err, &st) && st.HTTPStatusCode() == http.StatusForbidden:
		return fmt.Errorf("store: s3: bucket %s: access denied: check s3.access_key_id and the secret key", d.bucket)
	}
	return d.err("bucket "+d.bucket, err)
}

func (d *s3Store) objectKey(id string) string { return d.prefix + "objects/" + id }
func (d *s3Store) piecesPrefix(id string) string {
	return d.prefix + "pieces/" + id + "/"
}
func (d *s3Store) pieceKey(id string, sp Span) string {
	return fmt.Sprintf("%s%020d-%020d", d.piecesPrefix(id), sp.Start, sp.End)
}

// partSizeFor is the part size of a new upload of size bytes.
func (d *s3Store) partSizeFor(size int64) int64 {
	p := d.partSize
	for (size+p-1)/p > maxParts {
		p *= 2
	}
	return p
}

// err wraps an error of the object store: ErrUnavailable for what a retry
// may cure (network errors, throttling, 5xx), ctx's error as such.
func (d *s3Store) err(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("store: s3: %s: %w", what, err)
	}
	var st interface{ HTTPStatusCode() int }
	if errors.As(err, &st) {
		if c := st.HTTPStatusCode(); c >= 400 && c < 500 && c != http.StatusTooManyRequests && c != http.StatusRequestTimeout {
			return fmt.Errorf("store: s3: %s: %w", what, err)
		}
	}
	return fmt.Errorf("%w: s3: %s: %w", ErrUnavailable, what, err)
}

func notFound(err error) bool {
	var nk *s3types.NoSuchKey
	var nu *s3types.NoSuchUpload
	var nf *s3types.NotFound
	if errors.As(err, &nk) || errors.As(err, &nu) || errors.As(err, &nf) {
		return true
	}
	var st interface{ HTTPStatusCode() int }
	return errors.As(err, &st) && st.HTTPStatusCode() == http.StatusNotFound
}

// listKeys returns the keys under prefix.
func (d *s3Store) listKeys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(d.c, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, d.err("list "+prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// count adds the objects and pieces in the bucket, and their bytes, to st
// (parts of uploads in progress are not objects: S3 lists none).
func (d *s3Store) count(ctx context.Context, st *Stats) error {
	for _, prefix := range []string{d.prefix + "objects/", d.prefix + "pieces/"} {
		p := s3.NewListObjectsV2Paginator(d.c, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return d.err("stats", err)
			}
			for _, o := range page.Contents {
				st.SpoolFiles++
				st.SpoolBytes += aws.ToInt64(o.Size)
			}
		}
	}
	return nil
}

// deleteKeys deletes keys, one request each (a missing key is no error).
func (d *s3Store) deleteKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if _, err := d.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.bucket, Key: &k}); err != nil && !notFound(err) {
			return d.err("delete "+k, err)
		}
	}
	return nil
}

// remove deletes everything of transfer id from the bucket: its object, its
// pieces and any multipart upload of it (found by listing, so that one whose
// id never reached the database goes too).
func (d *s3Store) remove(ctx context.Context, id string) error {
	key := d.objectKey(id)
	ups, err := d.c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &d.bucket, Prefix: &key})
	if err != nil {
		return d.err("list uploads of "+id, err)
	}
	for _, u := range ups.Uploads {
		if aws.ToString(u.Key) != key {
			continue
		}
		_, err := d.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: u.UploadId})
		if err != nil && !notFound(err) {
			return d.err("abort upload of "+id, err)
		}
	}
	pieces, err := d.listKeys(ctx, d.piecesPrefix(id))
	if err != nil {
		return err
	}
	return d.deleteKeys(ctx, append(pieces, key))
}

// s3Blob is a sealed object read by ranged GETs.
type s3Blob struct {
	d      *s3Store
	key    string
	size   int64
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// open returns the sealed object of ready transfer id.
func (d *s3Store) open(ctx context.Context, id string) (Blob, error) {
	key := d.objectKey(id)
	h, err := d.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &key})
	if notFound(err) {
		return nil, fmt.Errorf("%w: transfer %s ciphertext", ErrNotFound, id) // deleted meanwhile
	}
	if err != nil {
		return nil, d.err("open "+id, err)
	}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &s3Blob{d: d, key: key, size: aws.ToInt64(h.ContentLength), ctx: bctx, cancel: cancel}, nil
}

// ReadAt reads len(p) bytes at off with one ranged GET; fewer at the end,
// with io.EOF.
func (b *s3Blob) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("store: s3: negative offset")
	}
	if off >= b.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := min(off+int64(len(p)), b.size)
	n, err := b.d.readRange(b.ctx, b.key, off, p[:end-off])
	if err == nil && end-off < int64(len(p)) {
		err = io.EOF
	}
	return n, err
}

// Size is the object's size.
func (b *s3Blob) Size() int64 { return b.size }

// Close ends reads in flight.
func (b *s3Blob) Close() error {
	b.once.Do(b.cancel)
	return nil
}

// readRange fills p with the bytes of key from off.
func (d *s3Store) readRange(ctx context.Context, key string, off int64, p []byte) (int, error) {
	rng := "bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+int64(len(p))-1, 10)
	out, err := d.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: &key, Range: &rng})
	if err != nil {
		return 0, d.err("read "+key, err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p)
	if err != nil {
		return n, d.err("read "+key, err)
	}
	return n, nil
}

// multipart is the multipart upload of a transfer, with its running hash as
// last recorded.
type multipart struct {
	uploadID string
	partSize int64
	hash     runningHash
}

// part returns the span of part k (0-based) of an upload of size bytes.
func (m multipart) part(k, size int64) Span {
	return Span{k * m.partSize, min((k+1)*m.partSize, size)}
}

// ensureUpload returns the multipart upload of transfer u, starting it if
// there is none. The caller holds the transfer's lock.
func (s *Store) ensureUpload(ctx context.Context, u *upload) (multipart, error) {
	m, ok, err := s.loadMultipart(ctx, u.id)
	if err != nil || ok {
		return m, err
	}
	d := s.s3
	key := d.objectKey(u.id)
	out, err := d.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &key})
	if err != nil {
		return m, d.err("start upload of "+u.id, err)
	}
	m = multipart{uploadID: aws.ToString(out.UploadId), partSize: d.partSizeFor(u.size), hash: newRunningHash()}
	hs, err := m.hash.state()
	if err != nil {
		return m, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO s3_uploads (transfer_id, upload_id, part_size, hash_state, hashed) VALUES (?, ?, ?, ?, 0)`,
			u.id, m.uploadID, m.partSize, hs)
		if err != nil {
			return fmt.Errorf("store: transfer %s: record upload: %w", u.id, err)
		}
		return nil
	})
	if err != nil {
		d.c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &d.bucket, Key: &key, UploadId: out.UploadId})
		return m, err
	}
	return m, nil
}

func (s *Store) loadMultipart(ctx context.Context, id string) (multipart, bool, error) {
	var m multipart
	var hs []byte
	var hashed int64
	err := s.db.QueryRowContext(ctx, `SELECT upload_id, part_size, hash_state, hashed FROM s3_uploads WHERE transfer_id = ?`, id).
		Scan(&m.uploadID, &m.partSize, &hs, &hashed)
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("store: transfer %s: upload: %w", id, err)
	}
	m.hash = loadRunningHash(hs, hashed)
	return m, true, nil
}

// recordedParts returns the parts (0-based) of transfer id that hold
// recorded bytes, each with the ETag it was sent with ("" if unknown).
func (s *Store) recordedParts(ctx context.Context, id string) (map[int64]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT part, etag FROM s3_parts WHERE transfer_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("store: transfer %s: parts: %w", id, err)
	}
	defer rows.Close()
	parts := map[int64]string{}
	for rows.Next() {
		var k int64
		var etag sql.NullString
		if err := rows.Scan(&k, &etag); err != nil {
			return nil, fmt.Errorf("store: transfer %s: parts: %w", id, err)
		}
		parts[k] = etag.String
	}
	return parts, rows.Err()
}

// recoverS3 removes what the bucket holds of transfers that are gone or
// quarantined (a crash between the metadata's commit and the deletion), and
// multipart uploads that no upload in progress records. It runs at Open,
// holding each transfer's lock: another replica may be between the steps of
// an upload.
func (s *Store) recoverS3(ctx context.Context) error {
	d := s.s3
	ids := map[string]bool{} // true: the id has pieces
	for _, p := range []string{d.prefix + "objects/", d.prefix + "pieces/"} {
		keys, err := d.listKeys(ctx, p)
		if err != nil {
			return err
		}
		for _, k := range keys {
			id, _, _ := strings.Cut(strings.TrimPrefix(k, p), "/")
			if validID(id) {
				ids[id] = ids[id] || strings.HasSuffix(p, "pieces/")
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		// Most objects are of ready transfers with nothing to put right:
		// only the others take the transfer's lock.
		state, err := s.state(ctx, id)
		if err != nil {
			return fmt.Errorf("store: recover bucket: %w", err)
		}
		if state == StateUploading || (state == StateReady && !ids[id]) {
			continue
		}
		if err := s.recoverObject(ctx, id); err != nil {
			return fmt.Errorf("store: recover bucket: %w", err)
		}
	}
	return nil
}

func (s *Store) recoverObject(ctx context.Context, id string) error {
	unlock, err := s.lockTransfers(ctx, id)
	if err != nil {
		return err
	}
	defer unlock()
	state, err := s.state(ctx, id)
	if err != nil {
		return err
	}
	switch state {
	case StateUploading:
		return nil // resumes
	case StateReady:
		pieces, err := s.s3.listKeys(ctx, s.s3.piecesPrefix(id))
		if err != nil {
			return err
		}
		return s.s3.deleteKeys(ctx, pieces)
	}
	return s.s3.remove(ctx, id)
}

// removeCiphertext deletes transfer id's ciphertext wherever it is kept.
func (s *Store) removeCiphertext(ctx context.Context, id string) error {
	if s.s3 != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return s.s3.remove(ctx, id)
	}
	return s.removeSpool(id)
}
