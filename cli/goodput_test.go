package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMeter feeds a meter tick by tick: a path is judged collapsed only when a
// whole window of busy ticks runs below 1/collapseRatio of its peak, and ticks
// where lex, not the network, held the transfer up do not count.
func TestMeter(t *testing.T) {
	const mb = 1 << 20
	type step struct {
		bytes    int64
		inflight int32
		idle     int32
	}
	fast := step{8 * mb, 1, 0}
	slow := step{16 << 10, 1, 0}
	starved := step{0, 1, 1} // the upload waits for the encryption
	quiet := step{0, 0, 0}   // nothing in flight
	rep := func(s step, n int) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	cat := func(parts ...[]step) (out []step) {
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  int // the tick (from 1) at which it is first collapsed; 0 never
	}{
		{"steady", rep(fast, 30), 0},
		{"collapse", cat(rep(fast, 4), rep(slow, 10)), 4 + goodputWindow},
		{"stall", cat(rep(fast, 4), rep(step{0, 1, 0}, 10)), 4 + goodputWindow},
		{"starved is not slow", cat(rep(fast, 4), rep(starved, 20), rep(fast, 4)), 0},
		{"quiet is not slow", cat(rep(fast, 4), rep(quiet, 20), rep(fast, 2)), 0},
		{"slow from the start", rep(slow, 30), 0},
		{"a dip shorter than the window", cat(rep(fast, 4), rep(slow, goodputWindow-2), rep(fast, 10)), 0},
		{"a short peak", cat(rep(fast, 1), rep(slow, goodputWindow)), 1 + goodputWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m meter
			got := 0
			for i, s := range tc.steps {
				m.bytes.Add(s.bytes)
				m.inflight.Store(s.inflight)
				m.idle.Store(s.idle)
				rate, full, busy := m.tick()
				if busy && m.collapsed(rate, full) && got == 0 {
					got = i + 1
				}
			}
			if got != tc.want {
				t.Errorf("collapsed at tick %d, want %d (peak %s)", got, tc.want, rateString(m.peak))
			}
		})
	}
}

// throttledServer reads request bodies at fastRate for fastFor, then at
// 32 KB/s: a path whose goodput collapses in the middle of an upload, for real
// (TCP backpressure from a server that stops keeping up).
func throttledServer(t *testing.T, fastRate float64, fastFor time.Duration) *httptest.Server {
	var once sync.Once
	var start time.Time
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { start = time.Now() })
		buf := make([]byte, 32<<10)
		var n int64
		for {
			select {
			case <-stop: // the test is over: do not drain the socket at 32 KB/s
				return
			default:
			}
			k, err := r.Body.Read(buf)
			n += int64(k)
			rate := fastRate
			if time.Since(start) > fastFor {
				rate = 32e3
			}
			time.Sleep(time.Duration(float64(k) / rate * float64(time.Second)))
			if err != nil {
				break
			}
		}
		fmt.Fprint(w, n)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first
	return srv
}

// TestAdaptiveRTCollapse: an upload over the path in use whose goodput
// collapses in flight (the server stops reading) is stopped with a
// *pathMoveError, and the next request goes over the other path, either way.
func TestAdaptiveRTCollapse(t *testing.T) {
	for _, start := range []int{pathTCP, pathQUIC} {
		t.Run(fmt.Sprintf("from path %d", start), func(t *testing.T) {
			t.Parallel()
			slow := throttledServer(t, 16e6, 1500*time.Millisecond)
			good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				fmt.Fprint(w, n)
			}))
			t.Cleanup(good.Close)
			a, said := newTestRT(t)
			// Both paths of this test are plain TCP to local servers: the
			// path the test starts on reaches the slow one, the other the
			// good one.
			a.active.Store(int32(start))
			a.paths[1-start].rt = rewriteRT{to: good.URL, rt: a.paths[1-start].rt}
			from, to := a.paths[start].name, a.paths[1-start].name
			hc := &http.Client{Transport: a}
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()

			req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, slow.URL, io.LimitReader(zeros{}, 1<<30))
			req.ContentLength = 1 << 30
			began := time.Now()
			_, err := hc.Do(req)
			var moved *pathMoveError
			if !errors.As(err, &moved) || moved.from != from || moved.to != to {
				t.Fatalf("the upload on a collapsed path ended with %v, want a move from %s to %s", err, from, to)
			}
			t.Logf("moved after %v: %v", time.Since(began).Round(time.Millisecond), err)
			if a.name() != to {
				t.Fatalf("after the collapse the bulk is on %s", a.name())
			}
			if msg := said(); !strings.Contains(msg, "bulk: "+from+" goodput fell to") || !strings.Contains(msg, "moving to "+to) {
				t.Errorf("-v said %q", msg)
			}
			req, _ = http.NewRequestWithContext(ctx, http.MethodPatch, slow.URL, io.LimitReader(zeros{}, 8<<20))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("the resumed request on the new path: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != fmt.Sprint(8<<20) {
				t.Errorf("the new path's server got %s bytes", body)
			}
		})
	}
}

// newTestRT is an adaptiveRT over two plain HTTP transports, closed with the
// test, and a function returning what it has logged.
func newTestRT(t *testing.T) (*adaptiveRT, func() string) {
	var mu sync.Mutex
	var log strings.Builder
	a := newAdaptiveRT(closeIdle{&http.Transport{}}, closeIdle{&http.Transport{}}, func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&log, format+"\n", args...)
	})
	t.Cleanup(func() { a.Close() })
	return a, func() string {
		mu.Lock()
		defer mu.Unlock()
		return log.String()
	}
}

// rewriteRT sends every request to another base URL.
type rewriteRT struct {
	to string
	rt roundTripper
}

func (r rewriteRT) RoundTrip(req *http.Request) (*http.Response, error) {
	u := *req.URL
	u.Host = strings.TrimPrefix(r.to, "http://")
	req = req.Clone(req.Context())
	req.URL, req.Host = &u, u.Host
	return r.rt.RoundTrip(req)
}

func (r rewriteRT) Close() error { return r.rt.Close() }

func (r rewriteRT) CloseIdle() { r.rt.CloseIdle() }

// TestAdaptiveRTMovesBack: when the path the bulk moved to turns out slower
// than what the collapsed one still gave, the bulk goes back, and then stays
// (at most maxMoves moves a run).
func TestAdaptiveRTMovesBack(t *testing.T) {
	first := throttledServer(t, 16e6, 1500*time.Millisecond)
	worse := throttledServer(t, 32e3, 0)
	a, said := newTestRT(t)
	a.paths[pathQUIC].rt = rewriteRT{to: worse.URL, rt: a.paths[pathQUIC].rt}
	hc := &http.Client{Transport: a}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	upload := func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, first.URL, io.LimitReader(zeros{}, 1<<30))
		req.ContentLength = 1 << 30
		_, err := hc.Do(req)
		return err
	}
	var moved *pathMoveError
	if err := upload(); !errors.As(err, &moved) || moved.to != TransportQUIC {
		t.Fatalf("first upload: %v", err)
	}
	// Which rule sends it back depends on how much the kernel buffered at
	// the start (a burst that sets a high peak makes it a collapse);
	// TestMoveReason pins each rule. Either way the bulk must go back.
	if err := upload(); !errors.As(err, &moved) || moved.to != TransportTCP {
		t.Fatalf("upload on the worse path: %v, want a move back to tcp", err)
	}
	if a.name() != TransportTCP || a.moves != maxMoves {
		t.Fatalf("after moving back: on %s after %d moves", a.name(), a.moves)
	}
	t.Logf("-v:\n%s", said())
}

// TestMoveReason pins the two rules that move the bulk: a collapse against the
// path's own peak, and a path slower than the one it replaced.
func TestMoveReason(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rate       float64
		full       bool
		peak, left float64
		want       string // substring; "" means stay
	}{
		{"window not full", 1, false, 8e6, 4e6, ""},
		{"steady", 4e6, true, 5e6, 0, ""},
		{"collapse", 0.5e6, true, 8e6, 0, "goodput fell to 0.50 MB/s over the last 4s, from a peak of 8.00 MB/s"},
		{"collapse wins over below", 0.5e6, true, 8e6, 4e6, "from a peak of"},
		{"below what the other path gave", 2e6, true, 3e6, 4e6, "goodput is 2.00 MB/s over the last 4s, below the 4.00 MB/s tcp still gave"},
		{"above what the other path gave", 5e6, true, 6e6, 4e6, ""},
		{"no peak yet", 0, true, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := moveReason(tc.rate, tc.full, tc.peak, tc.left, "tcp")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("moveReason = %q, want %q", got, tc.want)
			}
		})
	}
}
