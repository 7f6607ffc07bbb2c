package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// FuzzDownloadRange sends arbitrary Range headers to a real gateway for a real
// transfer's download. Whatever the header, the reply is the whole ciphertext
// (200), exactly the bytes its Content-Range names (206, one range or
// multipart/byteranges), or a 416 that names the size and carries none of the
// ciphertext: never a byte outside the transfer, never a range that does not
// match its bytes.
func FuzzDownloadRange(f *testing.F) {
	// Every fuzzed request that starts at byte 0 counts as a download (issue
	// 14): the review team's organisation gets a limit no fuzz run reaches.
	policies := gatewaytest.PolicyDir(f, func(file string, doc map[string]any) {
		if file == "organisations.json" {
			doc["organisations"].(map[string]any)["manila-lpo.example"].(map[string]any)["max_downloads"] = 1 << 40
		}
	})
	env := gatewaytest.Start(f, gatewaytest.WithoutQUIC(), gatewaytest.WithPolicyDir(policies))
	alice := env.NewClient(gatewaytest.Alice, false)
	team := env.NewClient(gatewaytest.Team, false)
	key := team.Register()
	ct := gatewaytest.Encrypt(f, bytes.Repeat([]byte("privileged memo "), 64), key.Recipient())
	st, xfer, e := alice.Create([]string{gatewaytest.Team}, nil, ct, nil)
	if st != http.StatusCreated {
		f.Fatalf("create: %d %+v", st, e)
	}
	if st, b, _ := alice.Upload(xfer.ID, 0, ct); st != http.StatusNoContent {
		f.Fatalf("upload: %d %s", st, b)
	}
	url := "https://" + env.Addr + api.PathTransfer + xfer.ID + "/content"
	f.Fuzz(func(t *testing.T, rng string) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Range", rng)
		resp, err := team.HTTP.Do(req)
		if err != nil {
			if sendable(rng) {
				t.Fatalf("Range %q: %v", rng, err)
			}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("Range %q: reading the reply: %v", rng, err)
		}
		if err := checkRangeReply(resp, body, ct); err != nil {
			t.Fatalf("Range %q: %d: %v", rng, resp.StatusCode, err)
		}
	})
}

// sendable reports whether Go's HTTP client sends v as a header value.
func sendable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func checkRangeReply(resp *http.Response, body, ct []byte) error {
	switch resp.StatusCode {
	case http.StatusOK:
		if !bytes.Equal(body, ct) {
			return fmt.Errorf("200 with %d bytes, not the %d of the ciphertext", len(body), len(ct))
		}
		return nil
	case http.StatusRequestedRangeNotSatisfiable:
		if cr := resp.Header.Get("Content-Range"); cr != "bytes */"+strconv.Itoa(len(ct)) {
			return fmt.Errorf("416 with Content-Range %q", cr)
		}
		if len(body) > 100 || bytes.Contains(ct, body) && len(body) > 8 {
			return fmt.Errorf("416 with a body of %d bytes", len(body))
		}
		return nil
	case http.StatusPartialContent:
	default:
		return fmt.Errorf("unexpected status %s", resp.Status)
	}
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "multipart/byteranges" {
		return checkPart(resp.Header.Get("Content-Range"), body, ct)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	n := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("multipart reply: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return fmt.Errorf("multipart reply: %v", err)
		}
		if err := checkPart(p.Header.Get("Content-Range"), b, ct); err != nil {
			return fmt.Errorf("part %d: %v", n, err)
		}
		n++
	}
	if n < 2 {
		return fmt.Errorf("multipart/byteranges with %d parts", n)
	}
	return nil
}

// checkPart checks that body is exactly the bytes of ct that the Content-Range
// value cr ("bytes first-last/size") names.
func checkPart(cr string, body, ct []byte) error {
	first, last, size, err := parseContentRange(cr)
	if err != nil {
		return err
	}
	if size != int64(len(ct)) || last >= size {
		return fmt.Errorf("Content-Range %q for a ciphertext of %d bytes", cr, len(ct))
	}
	if !bytes.Equal(body, ct[first:last+1]) {
		return fmt.Errorf("Content-Range %q but %d other bytes", cr, len(body))
	}
	return nil
}

// parseContentRange reads "bytes first-last/size" written canonically, as the
// round trip through fmt checks.
func parseContentRange(cr string) (first, last, size int64, err error) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("Content-Range %q is not in bytes", cr)
	}
	span, total, _ := strings.Cut(rest, "/")
	a, b, _ := strings.Cut(span, "-")
	var errs [3]error
	first, errs[0] = api.ParseOffset(a)
	last, errs[1] = api.ParseOffset(b)
	size, errs[2] = api.ParseOffset(total)
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || first > last ||
		fmt.Sprintf("bytes %d-%d/%d", first, last, size) != cr {
		return 0, 0, 0, fmt.Errorf("Content-Range %q is not bytes first-last/size", cr)
	}
	return first, last, size, nil
}
