package emu

import (
	"net"
	"testing"
	"time"
)

// BenchmarkLineAdmit is the delay line's decision per packet (loss, rate, delay).
func BenchmarkLineAdmit(b *testing.B) {
	l := newLine(Params{Delay: 75 * time.Millisecond, Loss: 0.005, Rate: 480e6}, 1)
	now := t0
	for b.Loop() {
		now = now.Add(20 * time.Microsecond)
		l.admit(now, 1400)
	}
}

// BenchmarkLinkForward pushes 1400-byte packets through a Link between Unix
// datagram sockets (standing in for TUN devices) with no delay, at most 4096 in
// flight: the forwarder's own cost per packet and its throughput on one core's
// worth of goroutines. The TUN devices of the real bench cost about as much
// again in the kernel.
func BenchmarkLinkForward(b *testing.B) {
	dir := b.TempDir()
	listen := func(name string) *net.UnixConn {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dir + "/" + name, Net: "unixgram"})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	linkA, kernA, linkB, kernB := listen("la"), listen("ka"), listen("lb"), listen("kb")
	a := dev{linkA, kernA.LocalAddr().(*net.UnixAddr)}
	bd := dev{linkB, kernB.LocalAddr().(*net.UnixAddr)}
	l := NewLink(a, bd, Params{}, Params{})
	defer l.Close()
	defer kernA.Close()
	defer kernB.Close()

	const window = 4096
	credit := make(chan struct{}, window)
	pkt := make([]byte, 1400)
	to := linkA.LocalAddr().(*net.UnixAddr)
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for range b.N {
			if _, err := kernB.Read(buf); err != nil {
				return
			}
			<-credit
		}
	}()
	for range b.N {
		credit <- struct{}{}
		if _, err := kernA.WriteToUnix(pkt, to); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	if ab, _ := l.Stats(); ab.Overflow+ab.Lost != 0 {
		b.Fatalf("dropped packets: %+v", ab)
	}
}
