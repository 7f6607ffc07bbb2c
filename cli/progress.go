package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws a one-line progress bar on a terminal. It is an io.Writer that
// counts bytes, so it can sit in an io.MultiWriter or behind a TeeReader. A nil
// *progress counts nothing and draws nothing: that is what non-terminals get.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int64
	n     int64
	last  time.Time

	now   func() time.Time // time.Now, or a test's clock
	start time.Time        // when the bar began
	n0    int64            // n then: a resumed transfer's rate counts only what this run moved
	ended bool
}

// redrawEvery limits how often the bar is drawn.
const redrawEvery = 100 * time.Millisecond

// newProgress returns a progress bar on w if w is a terminal, else nil.
func newProgress(w io.Writer, label string, total, start int64) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return startProgress(w, label, total, start, time.Now)
}

// startProgress returns a progress bar on w, terminal or not, timed by now.
func startProgress(w io.Writer, label string, total, start int64, now func() time.Time) *progress {
	p := &progress{w: w, label: label, total: total, n: start, n0: start, now: now, start: now()}
	p.draw()
	return p
}

// Write counts len(b) bytes.
func (p *progress) Write(b []byte) (int, error) {
	if p == nil {
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(len(b))
	if p.now().Sub(p.last) >= redrawEvery {
		p.draw()
	}
	return len(b), nil
}

// set moves the bar to n (after a resume or a rewind).
func (p *progress) set(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = n
	p.draw()
}

// complete draws the bar full, with the average rate and the time taken, and
// ends its line, so what is printed next starts on a line of its own. It is
// for work that finished: see done.
func (p *progress) complete() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n = max(p.n, p.total)
	p.end()
}

// done draws the bar as it stands and ends its line; after complete it does
// nothing, so it can be deferred.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.end()
}

func (p *progress) end() {
	if p.ended {
		return
	}
	p.ended = true
	p.draw()
	fmt.Fprintln(p.w)
}

func (p *progress) draw() {
	p.last = p.now()
	elapsed := p.last.Sub(p.start)
	fmt.Fprintf(p.w, "\r%s%s", renderBar(p.label, p.n, p.total, 30), renderRate(p.n-p.n0, p.total-p.n, elapsed, p.ended))
}

// renderRate renders "  12.0 MiB/s  ETA 0:42" for moved bytes over elapsed
// with left still to go, or "  12.0 MiB/s  in 1:05" once ended; while
// running, nothing before there is a steady rate to speak of.
func renderRate(moved, left int64, elapsed time.Duration, ended bool) string {
	if moved <= 0 || elapsed <= 0 || (!ended && elapsed < 200*time.Millisecond) { // too early for a steady rate
		if ended {
			return "  in " + clock(elapsed)
		}
		return ""
	}
	rate := float64(moved) / elapsed.Seconds()
	s := fmt.Sprintf("  %s/s", humanSize(int64(rate)))
	if ended {
		return s + "  in " + clock(elapsed)
	}
	return s + "  ETA " + clock(time.Duration(float64(max(left, 0))/rate*float64(time.Second)))
}

// clock formats d as m:ss, or h:mm:ss from an hour on.
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// renderBar renders "label [=====>     ]  42% 1.2 MiB / 3.0 MiB".
func renderBar(label string, n, total int64, width int) string {
	frac := 1.0
	if total > 0 {
		frac = float64(n) / float64(total)
	}
	frac = min(max(frac, 0), 1)
	full := int(frac * float64(width))
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	return fmt.Sprintf("%-10s [%s] %3d%% %s / %s", label, bar, int(frac*100), humanSize(min(n, max(total, 0))), humanSize(total))
}

// humanSize formats a byte count with binary units.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
