package sftpfront

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair is a real TCP connection on 127.0.0.1: the front's end and the peer's.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := <-accepted
	if c == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

// TestBatchConnOrder: writes of every size, from one writer as the SSH
// transport makes them, arrive whole and in order, and Close sends what is
// still pending before closing.
func TestBatchConnOrder(t *testing.T) {
	c, peer := tcpPair(t)
	bc := newBatchConn(c)
	want := make([]byte, 8<<20)
	rand.Read(want)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	sizes := []int{4, 4092, 28680, 13, 1, 32781, batchMax + 7, 0, 100}
	for off, i := 0, 0; off < len(want); i++ {
		n := min(sizes[i%len(sizes)], len(want)-off)
		if k, err := bc.Write(want[off : off+n]); k != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", n, k, err)
		}
		off += n
	}
	if err := bc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the peer read %d bytes, not the %d written in order", len(b), len(want))
	}
	if _, err := bc.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
	}
	if err := bc.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestBatchConnPeerGone: once the connection fails, Write reports it instead
// of queueing bytes that cannot leave.
func TestBatchConnPeerGone(t *testing.T) {
	c, peer := tcpPair(t)
	bc := newBatchConn(c)
	defer bc.Close()
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close()
	buf := make([]byte, 32<<10)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := bc.Write(buf); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Write kept succeeding after the peer reset the connection")
		}
	}
}

// TestBatchDrainStuckPeer: a peer that stops reading does not hold Close
// beyond its timeout; the connection is cut and the writer stops.
func TestBatchDrainStuckPeer(t *testing.T) {
	c, _ := tcpPair(t) // the peer never reads
	bw := newBatchWriter(c)
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := bw.Write(buf); err != nil {
				werr <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // socket buffers and batchMax fill up
	// With a peer that never reads, the drain can only end when the timeout
	// cuts the connection: that drainClose returns at all is the proof (how
	// soon after 300 ms depends on the machine).
	t0 := time.Now()
	closed := make(chan struct{})
	go func() { drainClose(bw, c, 300*time.Millisecond); close(closed) }()
	select {
	case <-closed:
		t.Logf("drainClose returned after %v", time.Since(t0))
	case <-time.After(time.Minute):
		t.Fatal("drainClose did not return with a stuck peer")
	}
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("Write returned nil after the connection was cut")
		}
	case <-time.After(time.Minute):
		t.Fatal("a blocked Write did not return after drainClose")
	}
}
