package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressRateAndEnd: the bar shows the rate and the time left while it
// runs, and when the work completes it is drawn full, with the rate and the
// time taken, and its line is ended, so the result printed next stands on a
// line of its own.
func TestProgressRateAndEnd(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(1e9, 0)
	clk := func() time.Time { return now }
	p := startProgress(&out, "sending", 100<<20, 0, clk)
	now = now.Add(2 * time.Second)
	p.Write(make([]byte, 20<<20)) // 20 MiB in 2 s: 10 MiB/s, 80 MiB left: 8 s
	if got := lastDraw(out.String()); !strings.Contains(got, " 20% 20.0 MiB / 100.0 MiB  10.0 MiB/s  ETA 0:08") {
		t.Errorf("while running: %q", got)
	}
	now = now.Add(8 * time.Second)
	p.Write(make([]byte, 80<<20-1)) // one byte short, as when the tally lags the work
	p.complete()
	p.done() // deferred by callers: nothing more
	s := out.String()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("the bar's line is not ended exactly once: %q", s)
	}
	if got := lastDraw(strings.TrimSuffix(s, "\n")); !strings.Contains(got, "100% 100.0 MiB / 100.0 MiB  10.0 MiB/s  in 0:10") {
		t.Errorf("at the end: %q", got)
	}

	// A resumed transfer's rate counts only what this run moved.
	out.Reset()
	now = time.Unix(2e9, 0)
	p = startProgress(&out, "uploading", 100<<20, 90<<20, clk)
	now = now.Add(time.Second)
	p.Write(make([]byte, 5<<20))
	if got := lastDraw(out.String()); !strings.Contains(got, "5.0 MiB/s  ETA 0:01") {
		t.Errorf("resumed: %q", got)
	}
	p.done() // failed: drawn as it stands
	if got := lastDraw(strings.TrimSuffix(out.String(), "\n")); !strings.Contains(got, " 95% ") {
		t.Errorf("a bar that did not complete claims %q", got)
	}
}

// lastDraw is the last redraw of a bar ("\r" starts each).
func lastDraw(s string) string { return s[strings.LastIndex(s, "\r")+1:] }

func TestClock(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0:00", 59 * time.Second: "0:59", 61 * time.Second: "1:01", 3725 * time.Second: "1:02:05"} {
		if got := clock(d); got != want {
			t.Errorf("clock(%v) = %q, want %q", d, got, want)
		}
	}
}
