package battery_test

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// putRange PATCHes ct[off:end] as one range of a parallel upload.
func putRange(c *gatewaytest.Client, id string, ct []byte, off, end int64) (int, []byte, http.Header) {
	return c.Do(http.MethodPatch, api.PathTransfer+id+"/content", bytes.NewReader(ct[off:end]), map[string]string{
		api.HeaderUploadOffset: strconv.FormatInt(off, 10), api.HeaderUploadRangeEnd: strconv.FormatInt(end, 10),
		"Content-Type": api.ContentTypeChunk})
}

// TestRangesParallelUpload: ranges of one upload sent out of order, at once,
// duplicated and overlapping, assemble to the identical ciphertext and pass the
// hash check; a range before the age header is in, one past the declared size
// and one longer than it says are refused, keeping nothing; a range with wrong
// bytes quarantines the transfer at completion, and nothing is delivered.
func TestRangesParallelUpload(t *testing.T) {
	env := gatewaytest.Start(t, gatewaytest.WithoutQUIC())
	defer memoryNow(t, env).back(t)
	alice := env.NewClient(gatewaytest.Alice, false).In(t)
	team := env.NewClient(gatewaytest.Team, false).In(t)
	key := team.Register()
	const mib = 1 << 20
	plain := make([]byte, 6*mib)
	for i := range plain {
		plain[i] = byte(i * 7)
	}
	ct := gatewaytest.Encrypt(t, plain, key.Recipient())
	size := int64(len(ct))
	st, xfer, _ := alice.Create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	id := xfer.ID

	if st, _, h := putRange(alice, id, ct, 2*mib, 3*mib); st != http.StatusConflict || h.Get(api.HeaderUploadOffset) != "0" {
		t.Fatalf("a range before the age header: %d, Upload-Offset %q; want 409 at 0", st, h.Get(api.HeaderUploadOffset))
	}
	if st, b, _ := putRange(alice, id, ct, 0, mib); st != http.StatusNoContent {
		t.Fatalf("the head: %d %s", st, b)
	}
	if st, b, _ := putRange(alice, id, append(bytes.Clone(ct), 0), 4*mib, size+1); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("a range past the declared size: %d %s, want 413", st, b)
	}
	long := append(bytes.Clone(ct[:3*mib]), 'x')
	st, b, _ := alice.Do(http.MethodPatch, api.PathTransfer+id+"/content", bytes.NewReader(long[2*mib:]), map[string]string{
		api.HeaderUploadOffset: strconv.Itoa(2 * mib), api.HeaderUploadRangeEnd: strconv.Itoa(3 * mib), "Content-Type": api.ContentTypeChunk})
	if st != http.StatusRequestEntityTooLarge {
		t.Fatalf("a body longer than its range: %d %s, want 413", st, b)
	}
	// The tail first, then the rest at once, one range sent twice.
	if st, _, h := putRange(alice, id, ct, 5*mib, size); st != http.StatusNoContent || h.Get(api.HeaderUploadRanges) != api.FormatSpans([]api.Span{{Start: 5 * mib, End: size}}) {
		t.Fatalf("the tail: %d, Upload-Ranges %q", st, h.Get(api.HeaderUploadRanges))
	}
	_, _, h := alice.Do(http.MethodHead, api.PathTransfer+id+"/content", nil, nil)
	if h.Get(api.HeaderUploadOffset) != strconv.Itoa(mib) || h.Get(api.HeaderUploadRanges) == "" {
		t.Fatalf("HEAD after head and tail: Upload-Offset %q, Upload-Ranges %q", h.Get(api.HeaderUploadOffset), h.Get(api.HeaderUploadRanges))
	}
	var wg sync.WaitGroup
	for _, sp := range []api.Span{{Start: 3 * mib, End: 5 * mib}, {Start: mib, End: 3 * mib}, {Start: 2 * mib, End: 4 * mib}, {Start: 3 * mib, End: 5 * mib}} {
		wg.Go(func() {
			if st, b, _ := putRange(alice, id, ct, sp.Start, sp.End); st != http.StatusNoContent {
				t.Errorf("range %v: %d %s", sp, st, b)
			}
		})
	}
	wg.Wait()
	if s := env.StoreStats(); s.Ready != 1 {
		t.Fatalf("store after every range: %+v, want the transfer ready", s)
	}
	st, got, _ := team.Do(http.MethodGet, api.PathTransfer+id+"/content", nil, nil)
	if st != http.StatusOK || !bytes.Equal(got, ct) {
		t.Fatalf("download: %d, %d bytes, identical %v", st, len(got), bytes.Equal(got, ct))
	}

	// Wrong bytes in one range.
	st, bad, _ := alice.Create([]string{gatewaytest.Team}, []string{"privileged"}, ct, nil)
	if st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	flipped := bytes.Clone(ct)
	flipped[4*mib+17] ^= 1
	putRange(alice, bad.ID, ct, 0, mib)
	putRange(alice, bad.ID, flipped, 3*mib, size)
	st, b, _ = putRange(alice, bad.ID, ct, mib, 3*mib)
	if st != http.StatusUnprocessableEntity || !strings.Contains(string(b), api.CodeHashMismatch) {
		t.Fatalf("completing with a wrong range: %d %s, want 422 %s", st, b, api.CodeHashMismatch)
	}
	if s := env.StoreStats(); s.Quarantined != 1 || s.Ready != 1 {
		t.Errorf("store: %+v, want the bad transfer quarantined", s)
	}
	if st, _, _ := team.Do(http.MethodGet, api.PathTransfer+bad.ID+"/content", nil, nil); st == http.StatusOK {
		t.Errorf("the quarantined transfer was delivered")
	}
}
