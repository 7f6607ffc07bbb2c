// Package emu emulates a long, lossy network path between two Linux network
// namespaces, for the lexwan bench.
//
// # The model
//
// Each direction of a [Link] is a delay line: a packet read from one TUN device
// is dropped at random with probability [Params.Loss], otherwise it waits for a
// bottleneck of [Params.Rate] bits per second (if set; a packet that would queue
// longer than [Params.Queue] is dropped, tail-drop) and then for the one-way
// delay [Params.Delay], and is written to the other TUN device. Because the
// delay is constant, a FIFO stamped with each packet's release time is exact and
// keeps packets in order.
//
// # Set-up
//
// [Setup] makes two network namespaces joined by the link: addresses
// [AddrA] and [AddrB] on point-to-point TUN devices whose txqueuelen is raised
// so that no packet is lost in the kernel when the forwarder is briefly starved
// of CPU. Programs run inside with [Netns.Command]; Go code runs inside with
// [Netns.Do]. It needs root, /dev/net/tun and the ip(8) command; the kernel's
// netem qdisc is not needed.
package emu

import (
	"math/rand/v2"
	"time"
)

// Params are the conditions of one direction of a link.
type Params struct {
	Delay time.Duration // one-way delay
	Loss  float64       // probability in [0, 1] that a packet is lost
	Rate  int64         // bottleneck in bits per second; 0 means none
	// Queue is the longest a packet may wait for the bottleneck before it is
	// dropped; 0 means DefaultQueue. Unused without Rate.
	Queue time.Duration
}

// DefaultQueue is the bottleneck's buffer, in time at its rate, when Params.Queue
// is 0: deep enough for a few bursts, shallow enough not to bloat the RTT much.
const DefaultQueue = 50 * time.Millisecond

// Verdict is what the delay line decides for one packet.
type Verdict int

// The fates of a packet.
const (
	Forward  Verdict = iota // released at the returned time
	Lost                    // random loss
	Overflow                // the bottleneck's queue was full
)

// line is the pure logic of one direction: no I/O, no clock of its own, so it is
// tested with made-up times.
type line struct {
	p    Params
	rnd  *rand.Rand
	busy time.Time // when the bottleneck finishes serialising what it holds
}

func newLine(p Params, seed uint64) *line {
	return &line{p: p, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// admit decides the fate of a packet of size bytes that arrived at now and, when
// it is forwarded, the time it is to be released on the other side.
func (l *line) admit(now time.Time, size int) (time.Time, Verdict) {
	if l.p.Loss > 0 && l.rnd.Float64() < l.p.Loss {
		return time.Time{}, Lost
	}
	out := now
	if l.p.Rate > 0 {
		start := now
		if l.busy.After(start) {
			start = l.busy
		}
		queue := l.p.Queue
		if queue <= 0 {
			queue = DefaultQueue
		}
		if start.Sub(now) > queue {
			return time.Time{}, Overflow
		}
		l.busy = start.Add(time.Duration(int64(size) * 8 * int64(time.Second) / l.p.Rate))
		out = l.busy
	}
	return out.Add(l.p.Delay), Forward
}
