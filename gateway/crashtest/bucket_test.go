package crashtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lexgate/lexgate/gateway/store"
)

// The S3 side of the invariant, read from the bucket itself rather than
// through the gateway: an object under objects/ is what a download reads, so
// one that exists must be the whole ciphertext of its transfer (never a half
// object, whatever a kill interrupted), and a ready transfer must have it.

// bucketObject is an object under the store's objects/ prefix.
type bucketObject struct {
	size int64
	hash string // SHA-256 of the content, hex
}

// bucketObjects lists the objects of the world's bucket by transfer id and
// hashes each, reading it whole. It returns nil on a world without S3.
func (w *world) bucketObjects(t testing.TB) map[string]bucketObject {
	t.Helper()
	if w.storeCfg == nil || w.storeCfg.Ciphertext != store.CiphertextS3 {
		return nil
	}
	cfg := w.storeCfg.S3
	secret, err := os.ReadFile(cfg.SecretKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: strings.TrimSpace(string(secret))}
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(cfg.Endpoint), UsePathStyle: true,
		Credentials:                aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prefix := cfg.Prefix + "objects/"
	objs := map[string]bucketObject{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &cfg.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list bucket %s: %v", cfg.Bucket, err)
		}
		for _, o := range page.Contents {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &cfg.Bucket, Key: o.Key})
			if err != nil {
				t.Fatalf("read %s: %v", aws.ToString(o.Key), err)
			}
			h := sha256.New()
			n, err := io.Copy(h, out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatalf("read %s: %v", aws.ToString(o.Key), err)
			}
			objs[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = bucketObject{size: n, hash: hex.EncodeToString(h.Sum(nil))}
		}
	}
	return objs
}

// checkObjects checks, on the S3 backend, that every object in the bucket is
// the whole ciphertext of one of ups, byte for byte (by its SHA-256): a kill
// at any moment leaves no partial or foreign object where downloads read.
func (w *world) checkObjects(t testing.TB, ups []*upload) {
	t.Helper()
	objs := w.bucketObjects(t)
	if objs == nil {
		return
	}
	byID := map[string]*upload{}
	for _, u := range ups {
		byID[u.id] = u
	}
	for id, o := range objs {
		u, ok := byID[id]
		if !ok {
			t.Errorf("the bucket holds object %s, of no transfer the test created", id)
			continue
		}
		sum := sha256.Sum256(u.ct)
		if o.size != int64(len(u.ct)) || o.hash != hex.EncodeToString(sum[:]) {
			t.Errorf("the bucket holds object %s of %d bytes (SHA-256 %s), not the %d bytes uploaded: a partial object", id, o.size, o.hash, len(u.ct))
		}
	}
	t.Logf("the bucket holds %d objects, each a whole upload", len(objs))
}

// checkStoreObjects checks objs, the bucket's objects of a stopped gateway,
// against st's metadata: every ready transfer has its object, of its size and
// SHA-256, and no transfer that is not ready has one.
func checkStoreObjects(t testing.TB, st *store.Store, objs map[string]bucketObject) {
	t.Helper()
	ctx := context.Background()
	ts, err := st.TransfersIn(ctx, store.StateReady, "", 10000)
	if err != nil {
		t.Fatal(err)
	}
	ready := map[string]bool{}
	for _, tr := range ts {
		ready[tr.ID] = true
		o, ok := objs[tr.ID]
		switch {
		case !ok:
			t.Errorf("transfer %s is ready, but the bucket holds no object of it", tr.ID)
		case o.size != tr.CiphertextSize || o.hash != tr.CiphertextSHA256:
			t.Errorf("transfer %s is ready with %d bytes of SHA-256 %s, but its object has %d bytes of SHA-256 %s",
				tr.ID, tr.CiphertextSize, tr.CiphertextSHA256, o.size, o.hash)
		}
	}
	for id := range objs {
		if ready[id] {
			continue
		}
		tr, err := st.Transfer(ctx, id)
		state := "gone"
		if err == nil {
			state = string(tr.State)
		}
		t.Errorf("the bucket holds an object of transfer %s, which is %s, not ready", id, state)
	}
}
