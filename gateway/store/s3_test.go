package store

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Helpers for the driver suite's assertions on what a store holds of an
// upload: files in the spool directory, or objects and parts in the bucket.

// heldBytes is how many bytes of upload id the ciphertext backend holds: the
// .part file's size (-1 without one) on the spool; the pieces' and recorded
// parts' bytes on S3.
func heldBytes(t *testing.T, s *Store, dir, id string) int64 {
	t.Helper()
	if s.s3 == nil {
		return fileSize(t, dir+"/spool/"+id+partExt)
	}
	var n int64
	keys, err := s.s3.listKeys(t.Context(), s.s3.piecesPrefix(id))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parsePieces(keys, s.s3.piecesPrefix(id)) {
		n += p.span.End - p.span.Start
	}
	m, ok, err := s.loadMultipart(t.Context(), id)
	if err != nil || !ok {
		return n
	}
	u, err := s.loadUpload(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := s.recordedParts(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for k := range parts {
		sp := m.part(k, u.size)
		n += sp.End - sp.Start
	}
	return n
}

// putObject stores b at key (after the store's prefix) in the store's bucket.
func putObject(t *testing.T, s *Store, key string, b []byte) {
	t.Helper()
	k := s.s3.prefix + key
	if _, err := s.s3.c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &s.s3.bucket, Key: &k,
		Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b)))}); err != nil {
		t.Fatal(err)
	}
}

// objectExists reports whether key (after the store's prefix) is in the bucket.
func objectExists(t *testing.T, s *Store, key string) bool {
	t.Helper()
	keys, err := s.s3.listKeys(t.Context(), s.s3.prefix+key)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k == s.s3.prefix+key {
			return true
		}
	}
	return false
}

// losePieces deletes the pieces of upload id from the bucket, as a bucket
// that lost data would.
func losePieces(t *testing.T, s *Store, id string) {
	t.Helper()
	keys, err := s.s3.listKeys(t.Context(), s.s3.piecesPrefix(id))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no pieces to lose")
	}
	if err := s.s3.deleteKeys(t.Context(), keys); err != nil {
		t.Fatal(err)
	}
}

// TestS3PartsAcrossReplicas: an upload of several 5 MiB parts, its ranges
// cut across part boundaries and sent through two replicas sharing the
// database and the bucket, is assembled into parts, completed and read back
// byte-exact by either replica; nothing is readable before the last byte,
// and no piece is left behind.
func TestS3PartsAcrossReplicas(t *testing.T) {
	pg := postgresCluster(t)
	dsn, err := pg.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s3cfg := s3Config(t, t.TempDir())
	s3cfg.PartSizeMiB = 5
	open := func(replica string) *Store {
		s, err := Open(t.Context(), Config{Dir: t.TempDir(), Driver: DriverPostgres, Postgres: PostgresConfig{DSN: dsn},
			Replica: replica, Ciphertext: CiphertextS3, S3: s3cfg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open("r1"), open("r2")
	const mib = 1 << 20
	content := randomBytes(t, 13*mib+123)
	tr := create(t, a, content)
	writeRange(t, a, tr.ID, content, 0, mib)
	if p := writeRange(t, b, tr.ID, content, 7*mib, int64(len(content))); p.Offset != mib {
		t.Fatalf("after a range across parts 2 and 3: %+v", p)
	}
	if _, err := a.Open(t.Context(), tr.ID); !errors.Is(err, ErrNotComplete) {
		t.Fatalf("Open before the last byte = %v, want ErrNotComplete", err)
	}
	if objectExists(t, a, "objects/"+tr.ID) {
		t.Fatal("the object exists before the upload is complete")
	}
	// An append from the offset stops at the range and joins it: complete.
	off, err := a.WriteAt(t.Context(), tr.ID, mib, bytes.NewReader(content[mib:]), t0)
	if err != nil || off != int64(len(content)) {
		t.Fatalf("WriteAt = %d, %v; want %d", off, err, len(content))
	}
	assertContent(t, b, tr.ID, content)
	assertContent(t, a, tr.ID, content)
	if keys, err := a.s3.listKeys(t.Context(), a.s3.piecesPrefix(tr.ID)); err != nil || len(keys) != 0 {
		t.Errorf("pieces left after completion: %v, %v", keys, err)
	}
	if err := b.DeleteTransfer(t.Context(), tr.ID); err != nil {
		t.Fatal(err)
	}
	if objectExists(t, a, "objects/"+tr.ID) {
		t.Error("the object outlived DeleteTransfer")
	}
}

// TestS3Config: an S3 config that is incomplete or unsafe is refused at Open
// with ErrInvalid and a message naming the key, before anything is opened.
func TestS3Config(t *testing.T) {
	dir := t.TempDir()
	secret := dir + "/secret"
	if err := os.WriteFile(secret, []byte("s3cr3t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := S3Config{Endpoint: "https://s3.example:7070", Bucket: "lexgate", AccessKeyID: "AK", SecretKeyEnv: "LEXGATE_TEST_S3_SECRET"}
	for _, tt := range []struct {
		name, key string
		edit      func(*Config)
	}{
		{"no endpoint", "s3.endpoint", func(c *Config) { c.S3.Endpoint = "" }},
		{"endpoint not a URL", "s3.endpoint", func(c *Config) { c.S3.Endpoint = "s3.example:7070" }},
		{"plain http to a remote host", "https", func(c *Config) { c.S3.Endpoint = "http://s3.example:7070" }},
		{"no bucket", "s3.bucket", func(c *Config) { c.S3.Bucket = "" }},
		{"bad bucket", "s3.bucket", func(c *Config) { c.S3.Bucket = "Lex_Gate" }},
		{"no access key", "s3.access_key_id", func(c *Config) { c.S3.AccessKeyID = "" }},
		{"no secret", "secret_key_file", func(c *Config) { c.S3.SecretKeyEnv = "" }},
		{"two secrets", "secret_key_file", func(c *Config) { c.S3.SecretKeyFile = secret }},
		{"small parts", "s3.part_size_mib", func(c *Config) { c.S3.PartSizeMiB = 4 }},
		{"negative part buffers", "s3.part_buffers", func(c *Config) { c.S3.PartBuffers = -1 }},
		{"world-readable secret", "chmod 600", func(c *Config) { c.S3.SecretKeyEnv, c.S3.SecretKeyFile = "", secret }},
		{"unset secret variable", "LEXGATE_TEST_S3_SECRET", func(*Config) {}},
		{"s3 without ciphertext s3", "ciphertext: s3", func(c *Config) { c.Ciphertext = "" }},
		{"unknown ciphertext", "spool or s3", func(c *Config) { c.Ciphertext = "gcs" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Dir: dir, Ciphertext: CiphertextS3, S3: ok}
			tt.edit(&cfg)
			s, err := Open(t.Context(), cfg)
			if s != nil {
				s.Close()
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("Open = %v; want ErrInvalid naming %q", err, tt.key)
			}
		})
	}
}

// TestS3ErrorsRetryable: a server that cannot be reached is ErrUnavailable
// (the fronts answer 503, retry later); Open fails on it rather than starting
// without its ciphertext.
func TestS3ErrorsRetryable(t *testing.T) {
	t.Setenv("LEXGATE_TEST_S3_SECRET", "x")
	cfg := Config{Dir: t.TempDir(), Ciphertext: CiphertextS3, S3: S3Config{Endpoint: "http://127.0.0.1:1",
		Bucket: "lexgate", AccessKeyID: "AK", SecretKeyEnv: "LEXGATE_TEST_S3_SECRET"}}
	if _, err := Open(t.Context(), cfg); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Open with the object store unreachable = %v, want ErrUnavailable", err)
	}
}

// TestS3MissingBucket: a replica whose bucket does not exist refuses to
// start, saying so.
func TestS3MissingBucket(t *testing.T) {
	cfg := s3Config(t, t.TempDir())
	cfg.Bucket = "no-such-bucket-here"
	_, err := Open(t.Context(), Config{Dir: t.TempDir(), Ciphertext: CiphertextS3, S3: cfg})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open with a missing bucket = %v, want an error saying it does not exist", err)
	}
}

// FuzzParsePieces: piece keys read back from a bucket never panic the
// parser, and every key the store writes reads back as its span.
func FuzzParsePieces(f *testing.F) {
	d := &s3Store{prefix: "p/"}
	f.Add("p/pieces/ab/00000000000000000000-00000000000000001000", int64(0), int64(1000))
	f.Add("p/pieces/ab/-1-2", int64(5<<20), int64(8<<20))
	f.Add("p/pieces/ab/x", int64(1), int64(2))
	f.Fuzz(func(t *testing.T, key string, lo, hi int64) {
		for _, p := range parsePieces([]string{key}, d.piecesPrefix("ab")) {
			if p.span.Start >= p.span.End {
				t.Fatalf("%q parsed as the empty span %v", key, p.span)
			}
		}
		if lo < 0 || hi <= lo {
			return
		}
		sp := Span{lo, hi}
		got := parsePieces([]string{d.pieceKey("ab", sp)}, d.piecesPrefix("ab"))
		if len(got) != 1 || got[0].span != sp {
			t.Fatalf("pieceKey(%v) parsed as %v", sp, got)
		}
	})
}

// TestBlobReaderFastPath: a spool blob is read past the page cache where the
// file system allows (the embedded default's fast path), any other blob
// through its own ReadAt.
func TestBlobReaderFastPath(t *testing.T) {
	s := openStore(t, t.TempDir())
	content := randomBytes(t, 1<<20)
	tr := create(t, s, content)
	if _, err := s.WriteAt(t.Context(), tr.ID, 0, bytes.NewReader(content), t0); err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(t.Context(), tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fb, ok := b.(*FileBlob)
	if !ok || fb.Size() != int64(len(content)) {
		t.Fatalf("Open on the spool = %T (size %d), want a *FileBlob of %d bytes", b, b.Size(), len(content))
	}
	r := NewBlobReader(b)
	defer r.Close()
	if r.f != fb.File() {
		t.Error("NewBlobReader does not read the spool file itself")
	}
	buf := AlignedBuffer(DirectAlign)
	if n, err := r.ReadAt(buf, 0); err != nil || !bytes.Equal(buf[:n], content[:n]) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	other := NewBlobReader(struct{ Blob }{b}) // not a spool file
	defer other.Close()
	if other.f != nil || other.b == nil {
		t.Error("NewBlobReader of another blob does not read through the blob")
	}
}
