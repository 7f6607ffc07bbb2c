package gateway

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// wantCongestion is the TCP congestion controller the gateway asks for: BBR
// keeps its rate through the random loss of long international paths, where
// cubic halves it on every drop. Downloads are sent with it.
const wantCongestion = "bbr"

// maxSockBuf is the largest socket buffer asked for: 250 ms at 100 MB/s.
const maxSockBuf = 32 << 20

// tcpControl tunes the TCP listener before it binds; accepted connections
// inherit its congestion controller and buffers. BBR where the kernel has it
// (else the system's default), and fixed buffers only when the host allows
// larger ones than autotuning reaches. It never fails the listen.
func tcpControl(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, wantCongestion)
		bufs := sockBufs()
		if bufs.snd > 0 {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, bufs.snd)
		}
		if bufs.rcv > 0 {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, bufs.rcv)
		}
	})
}

// sockBufs are the buffer sizes to ask for; 0 keeps autotuning, which is better
// whenever the fixed size allowed would be smaller than its limit (the kernel
// doubles what is asked for).
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

// readSysctlInt reads field i of a sysctl of integers; 0 on any error.
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

// tcpTuning reports what the listener got, for the start-up log.
func tcpTuning(ln net.Listener) (congestion, sendBuffer string) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return "unknown", "unknown"
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return "unknown", "unknown"
	}
	congestion, sendBuffer = "unknown", "autotuned"
	rc.Control(func(fd uintptr) {
		if cc, err := unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION); err == nil {
			congestion = strings.TrimRight(cc, "\x00")
		}
		if sockBufs().snd > 0 {
			n, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
			sendBuffer = fmt.Sprintf("%d MiB", n>>20)
		}
	})
	return congestion, sendBuffer
}
