package emu

import (
	"io"
	"net"
	"testing"
	"time"
)

// packetPipe is one end of a message-preserving in-memory pipe: a Unix datagram
// socket pair, so each Write is one packet and each Read returns one.
func packetPipe(t *testing.T) (a, b *net.UnixConn) {
	t.Helper()
	dir := t.TempDir()
	la, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dir + "/a", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dir + "/b", Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	return la, lb
}

// dev is a fake TUN device: what the link writes arrives at out; what the test
// sends to in is what the link reads.
type dev struct {
	conn *net.UnixConn
	peer *net.UnixAddr
}

func (d dev) Read(p []byte) (int, error)  { return d.conn.Read(p) }
func (d dev) Write(p []byte) (int, error) { return d.conn.WriteToUnix(p, d.peer) }
func (d dev) Close() error                { return d.conn.Close() }

// TestLinkForwards sends numbered packets both ways through a real Link over Unix
// datagram sockets (standing in for TUN devices, which need root) and checks each
// arrives once, in order, no sooner than the delay.
func TestLinkForwards(t *testing.T) {
	// Two socket pairs: the link's end of A and the "kernel" end of A, same for B.
	linkA, kernA := packetPipe(t)
	linkB, kernB := packetPipe(t)
	a := dev{linkA, kernA.LocalAddr().(*net.UnixAddr)}
	b := dev{linkB, kernB.LocalAddr().(*net.UnixAddr)}
	const delay = 20 * time.Millisecond
	l := NewLink(a, b, Params{Delay: delay}, Params{Delay: 2 * delay})
	defer l.Close()
	defer kernA.Close()
	defer kernB.Close()

	check := func(from, to *net.UnixConn, toAddr *net.UnixAddr, d time.Duration) {
		t.Helper()
		const n = 50
		start := time.Now()
		for i := range n {
			if _, err := from.WriteToUnix([]byte{byte(i)}, toAddr); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 64)
		to.SetReadDeadline(time.Now().Add(5 * time.Second))
		for i := range n {
			k, err := to.Read(buf)
			if err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
			if k != 1 || buf[0] != byte(i) {
				t.Fatalf("packet %d: got %v, want [%d]", i, buf[:k], i)
			}
			if i == 0 && time.Since(start) < d {
				t.Fatalf("first packet arrived after %v, before the delay %v", time.Since(start), d)
			}
		}
	}
	check(kernA, kernB, linkA.LocalAddr().(*net.UnixAddr), delay)
	check(kernB, kernA, linkB.LocalAddr().(*net.UnixAddr), 2*delay)
	// The forwarder counts a packet just after writing it: let it catch up.
	ab, ba := l.Stats()
	for deadline := time.Now().Add(time.Minute); (ab.Forwarded < 50 || ba.Forwarded < 50) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		ab, ba = l.Stats()
	}
	if ab.Forwarded != 50 || ba.Forwarded != 50 || ab.Bytes != 50 || ab.Lost+ab.Overflow+ba.Lost+ba.Overflow != 0 {
		t.Fatalf("stats a→b %+v, b→a %+v", ab, ba)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var _ io.ReadWriteCloser = a
}
