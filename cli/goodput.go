package cli

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Goodput watching: under --transport auto the bulk path (TCP, or QUIC when TCP
// cannot connect) is judged by the goodput it actually delivers. Every
// goodputTick the watcher notes how many ciphertext bytes the path moved, but
// only when the network was what the transfer waited on: an upload whose body
// is waiting for the encryption, or a download nobody is reading, is not the
// path's fault and is not counted. When the rate over the last goodputWindow
// of such ticks falls below 1/collapseRatio of the best rate the path reached,
// the path has collapsed (a middlebox throttling one protocol, UDP or TCP
// suddenly dropping) and the bulk moves to the other path: the requests in
// flight are stopped and their callers resume them by offset there, so no
// byte the gateway already holds is sent again.

const (
	// goodputTick is how often the watcher samples the active path.
	goodputTick = 500 * time.Millisecond
	// goodputWindow is the number of busy ticks a rate is taken over (4 s).
	goodputWindow = 8
	// peakTicks is the fewest busy ticks a rate must span to count as a peak.
	peakTicks = 2
	// collapseRatio is how far below its peak a path's rate must fall, over a
	// whole window, before the bulk leaves it.
	collapseRatio = 8
	// maxMoves bounds the moves in one run, so two bad paths do not flap.
	maxMoves = 2
)

// meter counts what one bulk path moves and judges its goodput. The byte and
// request counts are updated by the requests; the window is the watcher's.
type meter struct {
	bytes    atomic.Int64 // ciphertext bytes moved, in all
	inflight atomic.Int32 // requests (with their response bodies) not finished
	idle     atomic.Int32 // of those, the ones waiting on lex, not on the network

	last   int64   // bytes at the previous tick
	window []int64 // bytes per busy tick, newest last
	peak   float64 // best rate over at least peakTicks busy ticks, bytes/s
}

// tick records one goodputTick: the bytes moved since the last one, if the
// path was busy on the network during it. It returns the rate over the
// window, whether the window is full, and whether the tick counted.
func (m *meter) tick() (rate float64, full, busy bool) {
	now := m.bytes.Load()
	moved := now - m.last
	m.last = now
	busy = m.inflight.Load() > m.idle.Load()
	if !busy && moved == 0 {
		return 0, false, false
	}
	m.window = append(m.window, moved)
	if len(m.window) > goodputWindow {
		m.window = m.window[1:]
	}
	var sum int64
	for _, b := range m.window {
		sum += b
	}
	rate = float64(sum) / (float64(len(m.window)) * goodputTick.Seconds())
	if len(m.window) >= peakTicks && rate > m.peak {
		m.peak = rate
	}
	return rate, len(m.window) == goodputWindow, true
}

// collapsed reports whether a full window's rate is below 1/collapseRatio of
// the peak.
func (m *meter) collapsed(rate float64, full bool) bool {
	return isCollapse(rate, full, m.peak)
}

// isCollapse reports whether a window rate is below 1/collapseRatio of peak.
func isCollapse(rate float64, full bool, peak float64) bool {
	return full && peak > 0 && rate < peak/collapseRatio
}

// restart forgets the window, keeping the byte count: after a move the path
// is judged afresh.
func (m *meter) restart() {
	m.last = m.bytes.Load()
	m.window = nil
}

// countedBody counts what passes through a request or response body for a
// meter. For a request body, time spent in Read is time the transfer waits on
// its producer (idle for the network); for a response body, time spent
// outside Read is time it waits on its consumer.
type countedBody struct {
	rc       io.ReadCloser
	m        *meter
	response bool
	once     sync.Once
	done     func()
}

func newCountedBody(rc io.ReadCloser, m *meter, response bool, done func()) *countedBody {
	if response {
		m.idle.Add(1) // between reads, the consumer has the body
	}
	return &countedBody{rc: rc, m: m, response: response, done: done}
}

func (b *countedBody) Read(p []byte) (int, error) {
	if b.response {
		b.m.idle.Add(-1)
		defer b.m.idle.Add(1)
	} else {
		b.m.idle.Add(1)
		defer b.m.idle.Add(-1)
	}
	n, err := b.rc.Read(p)
	b.m.bytes.Add(int64(n))
	return n, err
}

// Close closes the body and, for a response, finishes its request.
func (b *countedBody) Close() error {
	err := b.rc.Close()
	if b.response {
		b.finish()
	}
	return err
}

// finish marks the request done, once.
func (b *countedBody) finish() {
	b.once.Do(func() {
		if b.response {
			b.m.idle.Add(-1)
		}
		b.done()
	})
}

// rateString formats a rate in bytes per second as MB/s.
func rateString(r float64) string { return fmt.Sprintf("%.2f MB/s", r/1e6) }
