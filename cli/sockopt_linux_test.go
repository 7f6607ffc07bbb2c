package cli

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lexgate/lexgate/gateway/tcptune"
)

// bbrAllowed reports whether this process may ask for BBR: the kernel has it and
// it is either allowed to everyone or we are root.
func bbrAllowed() bool {
	avail, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	allowed, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
	return strings.Contains(string(avail), "bbr") && (os.Geteuid() == 0 || strings.Contains(string(allowed), "bbr"))
}

// TestTCPDialerTuning dials a real loopback listener with lex's dialer and reads
// back the socket's congestion controller and send buffer.
func TestTCPDialerTuning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := tcpDialer().DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cc string
	var snd int
	rc.Control(func(fd uintptr) {
		cc, _ = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	cc = strings.TrimRight(cc, "\x00")
	if bbrAllowed() && cc != "bbr" {
		t.Errorf("congestion control %q, want bbr (available to us here)", cc)
	}
	if want := tcptune.FixedSendBuffer(); want > 0 && snd < 2*want {
		t.Errorf("send buffer %d, want %d (twice what was asked)", snd, 2*want)
	}
	t.Logf("%s (socket: %s, SO_SNDBUF %d)", tcpTuning(), cc, snd)
}
