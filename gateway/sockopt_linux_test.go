package gateway

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListenerTuning listens with the gateway's TCP set-up and checks that an
// accepted connection carries the listener's congestion controller.
func TestListenerTuning(t *testing.T) {
	lc := net.ListenConfig{Control: tcpControl}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, snd := tcpTuning(ln)
	t.Logf("listener: congestion control %s, send buffer %s", cc, snd)
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.(syscall.Conn).SyscallConn()
	var got string
	rc.Control(func(fd uintptr) {
		got, _ = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	})
	got = strings.TrimRight(got, "\x00")
	avail, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	allowed, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
	if strings.Contains(string(avail), "bbr") && (os.Geteuid() == 0 || strings.Contains(string(allowed), "bbr")) && got != "bbr" {
		t.Errorf("accepted connection uses %q, want bbr", got)
	}
	if got != cc {
		t.Errorf("accepted connection uses %q, the listener %q", got, cc)
	}
}
