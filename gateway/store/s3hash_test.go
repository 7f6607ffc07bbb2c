package store

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// s3Log is what a real HTTP proxy in front of versitygw saw: one line per
// request, "METHOD /bucket/key?query".
type s3Log struct {
	mu   sync.Mutex
	reqs []string
	sha  map[string]string // x-amz-content-sha256 of each request line
}

// objectGets counts the GETs of transfer id's object (reads, whole or ranged).
func (l *s3Log) objectGets(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		path, _, _ := strings.Cut(r, "?")
		if strings.HasPrefix(path, "GET ") && strings.HasSuffix(path, "/objects/"+id) {
			n++
		}
	}
	return n
}

// countingProxy starts a reverse proxy to endpoint that logs every request.
// The Host header passes unchanged, so SigV4 signatures still match.
func countingProxy(t *testing.T, endpoint string) (string, *s3Log) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	l := &s3Log{sha: map[string]string{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
		l.mu.Lock()
		l.reqs = append(l.reqs, line)
		l.sha[line] = r.Header.Get("X-Amz-Content-Sha256")
		l.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, l
}

// s3Replicas returns an opener of replicas sharing one PostgreSQL database
// and one bucket (5 MiB parts), reached through a counting proxy.
func s3Replicas(t *testing.T) (func(replica string) *Store, *s3Log) {
	t.Helper()
	dsn, err := postgresCluster(t).NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := s3Config(t, t.TempDir())
	cfg.PartSizeMiB = 5
	var l *s3Log
	cfg.Endpoint, l = countingProxy(t, cfg.Endpoint)
	return func(replica string) *Store {
		s, err := Open(t.Context(), Config{Dir: t.TempDir(), Driver: DriverPostgres, Postgres: PostgresConfig{DSN: dsn},
			Replica: replica, Ciphertext: CiphertextS3, S3: cfg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, l
}

// writeAt appends content[off:end] with WriteAt and fails the test on error.
func writeAt(t *testing.T, s *Store, id string, content []byte, off, end int64) int64 {
	t.Helper()
	got, err := s.WriteAt(t.Context(), id, off, bytes.NewReader(content[off:end]), t0)
	if err != nil {
		t.Fatalf("WriteAt %d-%d: %v", off, end, err)
	}
	return got
}

func assertReady(t *testing.T, s *Store, id string) {
	t.Helper()
	tr, err := s.Transfer(t.Context(), id)
	if err != nil || tr.State != StateReady {
		t.Fatalf("transfer after the last byte: %+v, %v; want ready", tr, err)
	}
}

const mib = 1 << 20

// TestS3RunningHash: an upload sent in order — whole parts, and parts
// assembled from the pieces of writes that end inside a part, on one replica
// or continued by another from the state in PostgreSQL — turns ready without
// a single read of its object; one whose last part came as a range, sent
// outside the transfer's lock, is read back. Either way the object is
// byte-exact.
func TestS3RunningHash(t *testing.T) {
	for _, tt := range []struct {
		name     string
		readBack bool
		upload   func(t *testing.T, a, b *Store, id string, content []byte)
	}{
		{"in order, one replica", false, func(t *testing.T, a, _ *Store, id string, c []byte) {
			// A whole part, a part from two pieces, then the rest.
			for _, end := range []int64{5 * mib, 7 * mib, 10 * mib, int64(len(c))} {
				writeAt(t, a, id, c, writeOffset(t, a, id), end)
			}
		}},
		{"in order, chunks across parts", false, func(t *testing.T, a, _ *Store, id string, c []byte) {
			// The second write completes the part the first began, then
			// sends a whole one: the head is read from its piece so that
			// the part goes whole and the hash goes on.
			writeAt(t, a, id, c, 0, 7*mib)
			writeAt(t, a, id, c, 7*mib, int64(len(c)))
			if keys, err := a.s3.listKeys(t.Context(), a.s3.piecesPrefix(id)); err != nil || len(keys) != 0 {
				t.Errorf("pieces left: %v, %v", keys, err)
			}
		}},
		{"in order, continued by another replica", false, func(t *testing.T, a, b *Store, id string, c []byte) {
			writeAt(t, a, id, c, 0, 7*mib)
			writeAt(t, b, id, c, 7*mib, 11*mib)
			writeAt(t, a, id, c, 11*mib, int64(len(c)))
		}},
		{"last part as a range", true, func(t *testing.T, a, b *Store, id string, c []byte) {
			writeAt(t, a, id, c, 0, mib)
			writeRange(t, b, id, c, 10*mib, int64(len(c)))
			writeAt(t, a, id, c, mib, int64(len(c)))
		}},
		{"parallel ranges out of order", true, func(t *testing.T, a, b *Store, id string, c []byte) {
			writeAt(t, a, id, c, 0, mib)
			writeRange(t, b, id, c, 5*mib, int64(len(c)))
			writeRange(t, a, id, c, mib, 5*mib)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			open, log := s3Replicas(t)
			a, b := open("r1"), open("r2")
			content := randomBytes(t, 13*mib+123)
			tr := create(t, a, content)
			tt.upload(t, a, b, tr.ID, content)
			assertReady(t, b, tr.ID)
			if got := log.objectGets(tr.ID); (got > 0) != tt.readBack {
				t.Errorf("%d reads of the object before it turned ready; want read back: %v", got, tt.readBack)
			}
			assertContent(t, a, tr.ID, content)
		})
	}
}

func writeOffset(t *testing.T, s *Store, id string) int64 {
	t.Helper()
	tr, err := s.Transfer(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Offset
}

// TestS3RunningHashCorruption: bytes changed in the bucket behind the
// store's back before completion never turn ready: a part replaced in the
// multipart upload makes the server refuse the recorded ETags and the object
// is read back and quarantined; a piece overwritten before its part is
// assembled goes into the running hash as read, which then does not match.
func TestS3RunningHashCorruption(t *testing.T) {
	for _, tt := range []struct {
		name    string
		corrupt func(t *testing.T, s *Store, id string)
	}{
		{"part replaced", func(t *testing.T, s *Store, id string) {
			m, ok, err := s.loadMultipart(t.Context(), id)
			if err != nil || !ok {
				t.Fatalf("no multipart upload: %v", err)
			}
			key := s.s3.objectKey(id)
			if _, err := s.s3.c.UploadPart(t.Context(), &s3.UploadPartInput{Bucket: &s.s3.bucket, Key: &key, UploadId: &m.uploadID,
				PartNumber: aws.Int32(1), Body: bytes.NewReader(randomBytes(t, 5*mib)), ContentLength: aws.Int64(5 * mib)}); err != nil {
				t.Fatal(err)
			}
		}},
		{"piece overwritten", func(t *testing.T, s *Store, id string) {
			k := s.s3.pieceKey(id, Span{5 * mib, 7 * mib})
			if _, err := s.s3.c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &s.s3.bucket, Key: &k,
				Body: bytes.NewReader(randomBytes(t, 2*mib)), ContentLength: aws.Int64(2 * mib)}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			open, _ := s3Replicas(t)
			s := open("r1")
			content := randomBytes(t, 13*mib+123)
			tr := create(t, s, content)
			writeAt(t, s, tr.ID, content, 0, 7*mib) // part 1 whole, a piece of part 2
			tt.corrupt(t, s, tr.ID)
			_, err := s.WriteAt(t.Context(), tr.ID, 7*mib, bytes.NewReader(content[7*mib:]), t0)
			if !errors.Is(err, ErrHashMismatch) {
				t.Fatalf("last write after the corruption = %v, want ErrHashMismatch", err)
			}
			if got, err := s.Transfer(t.Context(), tr.ID); err != nil || got.State != StateQuarantined {
				t.Fatalf("transfer: %+v, %v; want quarantined", got, err)
			}
			if objectExists(t, s, "objects/"+tr.ID) {
				t.Error("the corrupt object is still in the bucket")
			}
		})
	}
}

// TestS3SignsPartsOnce: a part is signed with the SHA-256 the store computed
// for it (the SDK does not hash it again), and the server, which checks the
// signed hash against the body, accepts it.
func TestS3SignsPartsOnce(t *testing.T) {
	open, log := s3Replicas(t)
	s := open("r1")
	content := randomBytes(t, 5*mib)
	tr := create(t, s, content)
	m, err := s.ensureUpload(t.Context(), &upload{id: tr.ID, size: int64(len(content))})
	if err != nil {
		t.Fatal(err)
	}
	var preset bool
	check := func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			_, preset = st.Finalize.Get("lexgatePayloadHash")
			return nil
		})
	}
	key := s.s3.objectKey(tr.ID)
	if _, err := s.s3.c.UploadPart(withPayloadHash(t.Context(), hexSHA(content)), &s3.UploadPartInput{Bucket: &s.s3.bucket, Key: &key,
		UploadId: &m.uploadID, PartNumber: aws.Int32(1), Body: bytes.NewReader(content), ContentLength: aws.Int64(5 * mib)}, check); err != nil {
		t.Fatal(err)
	}
	if !preset {
		t.Fatalf("the payload hash middleware is not before %q in UploadPart's stack: did the SDK rename it?", computePayloadHashID)
	}
	log.mu.Lock()
	for line, sha := range log.sha {
		if strings.HasPrefix(line, "PUT ") && strings.Contains(line, "partNumber=1") && sha != hexSHA(content) {
			t.Errorf("%s signed with payload hash %q, want the part's SHA-256", line, sha)
		}
	}
	log.mu.Unlock()
	// A wrong hash is refused: the signature cannot let other bytes in. (A
	// small body: the server answers before reading it.)
	if _, err := s.s3.c.UploadPart(withPayloadHash(t.Context(), hexSHA(nil)), &s3.UploadPartInput{Bucket: &s.s3.bucket, Key: &key,
		UploadId: &m.uploadID, PartNumber: aws.Int32(2), Body: bytes.NewReader(content[:1024]), ContentLength: aws.Int64(1024)}); err == nil {
		t.Error("a part signed with another payload's hash was accepted")
	}
}

// TestPartBufsBound: the buffers lent at once never exceed the budget
// (PartBuffers parts); small ones take only their size from it; a write that
// waits gives up with its context, and gets its buffer as soon as another
// is put back.
func TestPartBufsBound(t *testing.T) {
	const part = 2 * pooledBuf
	p := newPartBufs(2, part)
	a, err := p.get(t.Context(), part)
	if err != nil {
		t.Fatal(err)
	}
	small := make([]*[]byte, 4)
	for i := range small { // four quarter-parts fill the other part's room
		if small[i], err = p.get(t.Context(), part/4); err != nil || len(*small[i]) != part/4 {
			t.Fatalf("small buffer %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := p.get(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a buffer beyond the budget = %v, want to wait until the context ends", err)
	}
	got := make(chan *[]byte)
	go func() {
		bp, _ := p.get(t.Context(), part)
		got <- bp
	}()
	p.put(a)
	if bp := <-got; bp == nil || len(*bp) != part {
		t.Fatalf("buffer after one came back: %v", bp)
	} else {
		p.put(bp)
	}
	for _, bp := range small {
		p.put(bp)
	}
	// A part larger than the whole budget (parts doubled) still gets through.
	big, err := p.get(t.Context(), 3*part)
	if err != nil {
		t.Fatal(err)
	}
	p.put(big)
}

// TestS3OnePartBuffer: with a single part buffer, concurrent uploads — in
// order with pieces to assemble, and in parallel ranges — all complete: no
// write holds a buffer while waiting for another.
func TestS3OnePartBuffer(t *testing.T) {
	dsn, err := postgresCluster(t).NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := s3Config(t, t.TempDir())
	cfg.PartSizeMiB, cfg.PartBuffers = 5, 1
	s, err := Open(t.Context(), Config{Dir: t.TempDir(), Driver: DriverPostgres, Postgres: PostgresConfig{DSN: dsn},
		Replica: "r1", Ciphertext: CiphertextS3, S3: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var wg sync.WaitGroup
	contents := map[string][]byte{}
	for i := range 4 {
		content := randomBytes(t, 13*mib+123)
		tr := create(t, s, content)
		contents[tr.ID] = content
		wg.Go(func() {
			size := int64(len(content))
			if i%2 == 0 {
				for off := int64(0); off < size; off += 3 * mib {
					if _, err := s.WriteAt(t.Context(), tr.ID, off, bytes.NewReader(content[off:min(off+3*mib, size)]), t0); err != nil {
						t.Errorf("WriteAt %d: %v", off, err)
						return
					}
				}
			} else {
				for _, sp := range []Span{{0, mib}, {7 * mib, size}, {mib, 7 * mib}} {
					if _, err := s.WriteRange(t.Context(), tr.ID, sp.Start, sp.End, bytes.NewReader(content[sp.Start:sp.End]), t0); err != nil {
						t.Errorf("WriteRange %v: %v", sp, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for id, content := range contents {
		assertContent(t, s, id, content)
	}
}
