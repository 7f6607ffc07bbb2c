package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAdaptiveRTDialFailure: when TCP cannot connect (a real refused connection: a port
// nobody listens on), a bodiless request moves to the other transport at once,
// one with a body fails (its caller resumes by offset) and every later request
// goes over the other transport.
func TestAdaptiveRTDialFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	refused := closeIdle{&http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, closed)
	}}}
	other := closeIdle{&http.Transport{}}
	var log strings.Builder
	f := newAdaptiveRT(refused, other, func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) })
	if f.name() != TransportTCP {
		t.Fatalf("starts on %s", f.name())
	}
	hc := &http.Client{Transport: f}

	req, _ := http.NewRequest(http.MethodPatch, srv.URL, io.LimitReader(strings.NewReader("ciphertext"), 10))
	if _, err := hc.Do(req); err == nil {
		t.Fatal("a request with a body was sent again after its transport failed")
	}
	if f.name() != TransportQUIC || !strings.Contains(log.String(), "moving to quic") {
		t.Fatalf("after a refused connection: on %s, log %q", f.name(), log.String())
	}
	for _, method := range []string{http.MethodGet, http.MethodPatch} {
		req, _ := http.NewRequest(method, srv.URL, strings.NewReader("ciphertext"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s after the move: %v", method, err)
		}
		resp.Body.Close()
	}
	if n := strings.Count(log.String(), "moving"); n != 1 {
		t.Errorf("logged the move %d times:\n%s", n, log.String())
	}
	f.Close()
}

func TestRangeSize(t *testing.T) {
	for _, tc := range []struct {
		left    int64
		streams int
	}{{268505211, 4}, {32 << 20, 4}, {1 << 30, 4}, {100<<20 + 1, 3}, {9 << 20, 8}} {
		step := rangeSize(tc.left, tc.streams)
		n := (tc.left + step - 1) / step
		last := tc.left - (n-1)*step
		if step > maxRange || last <= 0 || last < step-n {
			t.Errorf("%d bytes, %d streams: ranges of %d, %d of them, the last %d bytes", tc.left, tc.streams, step, n, last)
		}
	}
}

func TestDownloadStreams(t *testing.T) {
	const far, near = 150 * time.Millisecond, 2 * time.Millisecond
	for _, tc := range []struct {
		left  int64
		want  int
		reply time.Duration
		out   int
	}{
		{256 << 20, 0, far, defaultStreams},
		{256 << 20, 0, near, 1},
		{8 << 20, 0, far, 1},
		{8 << 20, 3, near, 3},
		{256 << 20, 1, far, 1},
	} {
		if got := downloadStreams(tc.left, tc.want, tc.reply); got != tc.out {
			t.Errorf("downloadStreams(%d, %d, %v) = %d, want %d", tc.left, tc.want, tc.reply, got, tc.out)
		}
	}
}
