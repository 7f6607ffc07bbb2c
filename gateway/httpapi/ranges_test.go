package httpapi

import (
	"bytes"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRangeFor(t *testing.T) {
	for _, c := range []struct {
		in, keep string
		none     bool
	}{
		{"", "", false},
		{"bytes=0-9", "bytes=0-9", false},
		{"Bytes=0-9", "bytes=0-9", false},
		{"bytes=-0", "", true},
		{"bytes=-000", "", true},
		{"bytes= -0 , -0", "", true},
		{"bytes=-0,5-9", "bytes=5-9", false},
		{"bytes=-10", "bytes=-10", false},
		{"bytes=0-", "bytes=0-", false},
		{"items=0-9", "", false},
		{"0-9", "", false},
		{"bytes=5-4", "bytes=5-4", false}, // ServeContent refuses it (416, Content-Range added by rangeWriter)
	} {
		keep, none := rangeFor(c.in)
		if keep != c.keep || none != c.none {
			t.Errorf("rangeFor(%q) = %q, %v; want %q, %v", c.in, keep, none, c.keep, c.none)
		}
	}
}

// FuzzRangeFor: what rangeFor passes on is a bytes range set made of the
// request's own range specs minus the zero-length suffixes, and passing it again
// changes nothing; it calls a request unsatisfiable only when every spec of a
// bytes range set is a zero-length suffix; any other unit is ignored.
func FuzzRangeFor(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		keep, none := rangeFor(v)
		unit, set, hasUnit := strings.Cut(v, "=")
		isBytes := hasUnit && strings.EqualFold(strings.TrimSpace(unit), "bytes")
		switch {
		case !isBytes:
			if keep != "" || none {
				t.Fatalf("rangeFor(%q) = %q, %v for a unit that is not bytes", v, keep, none)
			}
			return
		case none:
			if keep != "" {
				t.Fatalf("rangeFor(%q) is unsatisfiable but passes on %q", v, keep)
			}
			for _, s := range strings.Split(set, ",") {
				if !zeroSuffix(strings.TrimSpace(s)) {
					t.Fatalf("rangeFor(%q) is unsatisfiable, but %q selects bytes", v, s)
				}
			}
			return
		}
		rest, ok := strings.CutPrefix(keep, "bytes=")
		if !ok {
			t.Fatalf("rangeFor(%q) passes on %q, not a bytes range set", v, keep)
		}
		orig := strings.Split(set, ",")
		for _, s := range strings.Split(rest, ",") {
			if zeroSuffix(strings.TrimSpace(s)) {
				t.Fatalf("rangeFor(%q) kept the zero-length suffix %q", v, s)
			}
			i := indexOf(orig, s)
			if i < 0 {
				t.Fatalf("rangeFor(%q) passes on %q, which the request did not ask for (or not in its order)", v, s)
			}
			orig = orig[i+1:]
		}
		if again, none := rangeFor(keep); again != keep || none {
			t.Fatalf("rangeFor is not idempotent: %q → %q → %q, %v", v, keep, again, none)
		}
	})
}

func indexOf(list []string, s string) int {
	for i, e := range list {
		if e == s {
			return i
		}
	}
	return -1
}

// FuzzDeliveryStart serves 4 KiB the way download does (deliveryStart for the
// core, then serveRange) for arbitrary Range and If-Range headers. When the core
// is told the delivery starts past byte 0 (so it skips re-hashing the stored
// ciphertext), no byte before that start may be sent.
func FuzzDeliveryStart(f *testing.F) {
	content := make([]byte, 4096)
	for i := range content {
		content[i] = byte(i * 7)
	}
	modtime := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, rng, ifRange string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/transfers/x/content", nil)
		r.Header.Set("Range", rng)
		if ifRange != "" {
			r.Header.Set("If-Range", ifRange)
		}
		start := deliveryStart(r)
		w := httptest.NewRecorder()
		w.Header().Set("ETag", `"abc"`)
		serveRange(w, r, int64(len(content)), modtime, bytes.NewReader(content))
		if start <= 0 {
			return
		}
		body := w.Body.Bytes()
		switch w.Code {
		case http.StatusPartialContent:
			if first := firstServed(t, w.Result(), body); first < start {
				t.Fatalf("Range %q If-Range %q: the core was told %d, byte %d was sent", rng, ifRange, start, first)
			}
		case http.StatusRequestedRangeNotSatisfiable, http.StatusNotModified, http.StatusPreconditionFailed:
		default:
			t.Fatalf("Range %q If-Range %q: the core was told %d, the reply is %d with %d bytes", rng, ifRange, start, w.Code, len(body))
		}
	})
}

// firstServed is the lowest offset a 206 reply carries (one range or several).
func firstServed(t *testing.T, resp *http.Response, body []byte) int64 {
	first := func(cr string) int64 {
		span, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes "), "-")
		n, err := strconv.ParseInt(span, 10, 64)
		if err != nil {
			t.Fatalf("206 with Content-Range %q", cr)
		}
		return n
	}
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "multipart/byteranges" {
		return first(resp.Header.Get("Content-Range"))
	}
	low := int64(math.MaxInt64)
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return low
		}
		low = min(low, first(p.Header.Get("Content-Range")))
	}
}
