package emu

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// mtu is the TUN devices' MTU, that of an Ethernet path.
const mtu = 1500

// queuePackets bounds the packets in flight in one direction (delayed and
// waiting): 60 MB/s × 125 ms is about 5,000 packets.
const queuePackets = 1 << 16

// Stats counts the packets of one direction.
type Stats struct {
	Packets   int64 // read from the source device
	Bytes     int64 // forwarded to the other side
	Forwarded int64 // packets forwarded
	Lost      int64 // dropped at random (Params.Loss)
	Overflow  int64 // dropped by the bottleneck's queue or a full delay line
}

// Link forwards packets both ways between two devices (TUN devices in [Setup])
// through a delay line per direction. Its methods are safe for concurrent use.
type Link struct {
	ab, ba *pipe
	wg     sync.WaitGroup
	once   sync.Once
}

// NewLink starts forwarding between a and b with the given conditions for a→b and
// b→a, until Close. It takes ownership of a and b.
func NewLink(a, b io.ReadWriteCloser, ab, ba Params) *Link {
	l := &Link{
		ab: newPipe(a, b, ab, 1),
		ba: newPipe(b, a, ba, 2),
	}
	for _, p := range []*pipe{l.ab, l.ba} {
		l.wg.Add(2)
		go func() { defer l.wg.Done(); p.read() }()
		go func() { defer l.wg.Done(); p.write() }()
	}
	return l
}

// Set changes the conditions of both directions; packets already in flight keep
// their release times.
func (l *Link) Set(ab, ba Params) {
	l.ab.set(ab)
	l.ba.set(ba)
}

// Stats returns the counters of a→b and b→a.
func (l *Link) Stats() (ab, ba Stats) { return l.ab.stats(), l.ba.stats() }

// Close stops forwarding, closes both devices and waits for the forwarder.
func (l *Link) Close() error {
	var err error
	l.once.Do(func() {
		err = errors.Join(l.ab.src.Close(), l.ba.src.Close())
		l.wg.Wait()
	})
	return err
}

// packet is one packet in a delay line.
type packet struct {
	buf     *[]byte
	n       int
	release time.Time
}

var bufs = sync.Pool{New: func() any { b := make([]byte, mtu+64); return &b }}

// pipe is one direction: a reader that stamps packets into the queue and a
// writer that releases them in order.
type pipe struct {
	src, dst                                  io.ReadWriteCloser
	mu                                        sync.Mutex
	line                                      *line
	q                                         chan packet
	packets, bytes, forwarded, lost, overflow atomic.Int64
}

func newPipe(src, dst io.ReadWriteCloser, p Params, seed uint64) *pipe {
	return &pipe{src: src, dst: dst, line: newLine(p, seed), q: make(chan packet, queuePackets)}
}

func (p *pipe) set(params Params) {
	p.mu.Lock()
	p.line.p = params
	p.mu.Unlock()
}

func (p *pipe) stats() Stats {
	return Stats{Packets: p.packets.Load(), Bytes: p.bytes.Load(), Forwarded: p.forwarded.Load(), Lost: p.lost.Load(), Overflow: p.overflow.Load()}
}

// read moves packets from src into the delay line until src fails (is closed).
func (p *pipe) read() {
	defer close(p.q)
	for {
		b := bufs.Get().(*[]byte)
		n, err := p.src.Read(*b)
		if err != nil {
			bufs.Put(b)
			return
		}
		p.packets.Add(1)
		p.mu.Lock()
		at, v := p.line.admit(time.Now(), n)
		p.mu.Unlock()
		switch v {
		case Lost:
			p.lost.Add(1)
			bufs.Put(b)
			continue
		case Overflow:
			p.overflow.Add(1)
			bufs.Put(b)
			continue
		}
		select {
		case p.q <- packet{buf: b, n: n, release: at}:
		default:
			p.overflow.Add(1)
			bufs.Put(b)
		}
	}
}

// write releases each packet at its time, in order. A failed write (the other
// device closed) drops the packet.
func (p *pipe) write() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for pkt := range p.q {
		if d := time.Until(pkt.release); d > 0 {
			timer.Reset(d)
			<-timer.C
		}
		if _, err := p.dst.Write((*pkt.buf)[:pkt.n]); err == nil {
			p.forwarded.Add(1)
			p.bytes.Add(int64(pkt.n))
		}
		bufs.Put(pkt.buf)
	}
}

// String describes p as "75ms one way, 0.5% loss, 100 Mbit/s".
func (p Params) String() string {
	s := fmt.Sprintf("%v one way", p.Delay)
	if p.Loss > 0 {
		s += fmt.Sprintf(", %g%% loss", p.Loss*100)
	}
	if p.Rate > 0 {
		s += fmt.Sprintf(", %g Mbit/s", float64(p.Rate)/1e6)
	}
	return s
}
