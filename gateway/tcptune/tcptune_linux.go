// Package tcptune tunes TCP sockets for long, lossy international paths: BBR
// where the kernel has it and lets us ask (else the system's default,
// silently), and send and receive buffers above what autotuning reaches when
// the host allows larger ones (net.core.wmem_max / rmem_max). lex's dialer and
// the gateway's listener (whose accepted connections inherit it) both use it.
package tcptune

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Congestion is the TCP congestion controller asked for. BBR paces by its
// model of the path's bandwidth and RTT, so random loss on a long path does not
// halve its rate as it does cubic's or reno's.
const Congestion = "bbr"

// maxSockBuf is the largest socket buffer asked for: a 250 ms path at 100 MB/s
// holds 25 MB.
const maxSockBuf = 32 << 20

// Control tunes a socket before it connects or binds; use it as a
// net.Dialer's or net.ListenConfig's Control. It never fails.
func Control(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) { tune(int(fd)) })
}

func tune(fd int) {
	_ = unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, Congestion)
	bufs := sockBufs()
	if bufs.snd > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, bufs.snd)
	}
	if bufs.rcv > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bufs.rcv)
	}
}

// sockBufs are the buffer sizes to ask for; 0 leaves the kernel's autotuning,
// which is better whenever the fixed size allowed would be smaller than the
// autotuning limit (the kernel doubles what is asked for).
var sockBufs = sync.OnceValue(func() (b struct{ snd, rcv int }) {
	pick := func(coreMax, tcpMem string) int {
		n := min(readSysctlInt(coreMax, 0), maxSockBuf)
		if n <= 0 || 2*n <= readSysctlInt(tcpMem, 2) {
			return 0
		}
		return n
	}
	b.snd = pick("net/core/wmem_max", "net/ipv4/tcp_wmem")
	b.rcv = pick("net/core/rmem_max", "net/ipv4/tcp_rmem")
	return b
})

// FixedSendBuffer is the send buffer Control asks for, or 0 when it leaves
// autotuning alone.
func FixedSendBuffer() int { return sockBufs().snd }

// readSysctlInt reads field i of a sysctl of whitespace-separated integers; 0 on
// any error.
func readSysctlInt(name string, i int) int {
	data, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if i >= len(f) {
		return 0
	}
	n, _ := strconv.Atoi(f[i])
	return n
}

// Describe reports what a tuned socket has: its congestion controller and its
// send buffer ("8 MiB", or "autotuned up to N MiB"). rc is the socket's raw
// connection; nil describes a throwaway socket tuned here.
func Describe(rc syscall.RawConn) (congestion, sendBuffer string) {
	congestion, sendBuffer = "unknown", "unknown"
	read := func(fd int) {
		if cc, err := unix.GetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION); err == nil {
			congestion = strings.TrimRight(cc, "\x00")
		}
		if FixedSendBuffer() > 0 {
			n, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
			sendBuffer = fmt.Sprintf("%d MiB", n>>20)
		} else {
			sendBuffer = fmt.Sprintf("autotuned up to %d MiB", readSysctlInt("net/ipv4/tcp_wmem", 2)>>20)
		}
	}
	if rc != nil {
		rc.Control(func(fd uintptr) { read(int(fd)) })
		return congestion, sendBuffer
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return congestion, sendBuffer
	}
	defer unix.Close(fd)
	tune(fd)
	read(fd)
	return congestion, sendBuffer
}
