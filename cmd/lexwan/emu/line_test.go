package emu

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestLineDelay(t *testing.T) {
	l := newLine(Params{Delay: 75 * time.Millisecond}, 1)
	for i := range 100 {
		now := t0.Add(time.Duration(i) * time.Microsecond)
		at, v := l.admit(now, 1500)
		if v != Forward || at.Sub(now) != 75*time.Millisecond {
			t.Fatalf("packet %d: %v released %v after arrival, want Forward after 75ms", i, v, at.Sub(now))
		}
	}
}

func TestLineLoss(t *testing.T) {
	for _, tc := range []struct {
		loss float64
		n    int
	}{{0, 10000}, {0.005, 400000}, {0.01, 200000}, {0.2, 50000}, {1, 1000}} {
		l := newLine(Params{Loss: tc.loss}, 7)
		lost := 0
		for range tc.n {
			if _, v := l.admit(t0, 100); v == Lost {
				lost++
			}
		}
		got := float64(lost) / float64(tc.n)
		// Four standard deviations of a binomial proportion.
		tol := 4 * math.Sqrt(tc.loss*(1-tc.loss)/float64(tc.n))
		if math.Abs(got-tc.loss) > tol {
			t.Errorf("loss %v: measured %.5f over %d packets, want within %.5f", tc.loss, got, tc.n, tol)
		}
	}
}

func TestLineRate(t *testing.T) {
	// 100 Mbit/s: a 1250-byte packet takes 100µs to serialise.
	l := newLine(Params{Rate: 100e6, Delay: 10 * time.Millisecond, Queue: time.Millisecond}, 1)
	var last time.Time
	// A burst of 10 at once leaves 100µs apart, after the delay.
	for i := range 10 {
		at, v := l.admit(t0, 1250)
		want := t0.Add(10*time.Millisecond + time.Duration(i+1)*100*time.Microsecond)
		if v != Forward || !at.Equal(want) {
			t.Fatalf("burst packet %d: %v at %v, want Forward at %v", i, v, at.Sub(t0), want.Sub(t0))
		}
		last = at
	}
	// A burst longer than the queue (1ms = 10 packets) overflows.
	over := 0
	for range 20 {
		if _, v := l.admit(t0, 1250); v == Overflow {
			over++
		}
	}
	if over == 0 {
		t.Fatal("a burst of 30 packets through a 10-packet queue lost none")
	}
	// Once idle, a packet goes straight through again.
	later := last.Add(time.Second)
	if at, v := l.admit(later, 1250); v != Forward || at.Sub(later) != 10*time.Millisecond+100*time.Microsecond {
		t.Fatalf("after idle: %v after %v", v, at.Sub(later))
	}
}

func TestLineRateThroughput(t *testing.T) {
	// Offered 2× the rate for a simulated second, the line forwards the rate.
	const rate = 80e6 // bits/s
	l := newLine(Params{Rate: rate}, 1)
	var sent int64
	var lastOut time.Time
	const n = 2 * rate / 8 / 1000 // packets of 1000 bytes in a second at 2× the rate
	for i := range int(n) {
		now := t0.Add(time.Duration(i) * time.Second / n)
		if at, v := l.admit(now, 1000); v == Forward {
			sent += 1000
			lastOut = at
		}
	}
	got := float64(sent*8) / lastOut.Sub(t0).Seconds()
	if math.Abs(got-rate)/rate > 0.01 {
		t.Fatalf("forwarded %.1f Mbit/s, want %.1f", got/1e6, rate/1e6)
	}
}

func TestLineOrder(t *testing.T) {
	// With a constant delay and a rate cap, release times never go backwards.
	l := newLine(Params{Delay: 125 * time.Millisecond, Rate: 100e6, Loss: 0.01}, 3)
	var prev time.Time
	for i := range 100000 {
		now := t0.Add(time.Duration(i) * 50 * time.Microsecond)
		at, v := l.admit(now, 64+i%1400)
		if v != Forward {
			continue
		}
		if at.Before(prev) {
			t.Fatalf("packet %d released at %v, before the one ahead of it (%v)", i, at, prev)
		}
		prev = at
	}
}
