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
}

// redrawEvery limits how often the bar is drawn.
const redrawEvery = 100 * time.Millisecond

// newProgress returns a progress bar on w if w is a terminal, else nil.
func newProgress(w io.Writer, label string, total, start int64) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := &progress{w: w, label: label, total: total, n: start}
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
	if time.Since(p.last) >= redrawEvery {
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

// done draws the final state and ends the line.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	fmt.Fprintln(p.w)
}

func (p *progress) draw() {
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%s", renderBar(p.label, p.n, p.total, 30))
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
	return fmt.Sprintf("%-10s [%s] %3d%% %s / %s", label, bar, int(frac*100), humanSize(n), humanSize(total))
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
