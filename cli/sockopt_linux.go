package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// wantCongestion is the TCP congestion controller lex asks for. BBR paces by its
// model of the path's bandwidth and RTT, so random loss on a long international
// path does not halve its rate as it does cubic's or reno's.
const wantCongestion = "bbr"

// maxSockBuf is the largest socket buffer lex asks for: a 250 ms path at
// 100 MB/s holds 25 MB.
const maxSockBuf = 32 << 20

// tcpControl tunes every TCP socket lex dials, before it connects: BBR where the
// kernel has it and lets us (else the system's default, silently), and send and
// receive buffers above what autotuning reaches when the host allows larger
// ones (net.core.wmem_max / rmem_max). It never fails a dial.
func tcpControl(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) { tuneTCP(int(fd)) })
}

func tuneTCP(fd int) {
	_ = unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, wantCongestion)
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
		limit := readSysctlInt(coreMax, 0)
		auto := readSysctlInt(tcpMem, 2)
		n := min(limit, maxSockBuf)
		if n <= 0 || 2*n <= auto {
			return 0
		}
		return n
	}
	b.snd = pick("net/core/wmem_max", "net/ipv4/tcp_wmem")
	b.rcv = pick("net/core/rmem_max", "net/ipv4/tcp_rmem")
	return b
})

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

// tcpTuning describes what tcpControl obtains on this host, for -v: a throwaway
// socket is tuned and asked.
func tcpTuning() string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "tcp tuning unknown: " + err.Error()
	}
	defer unix.Close(fd)
	tuneTCP(fd)
	cc, err := unix.GetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	if err != nil {
		cc = "unknown"
	}
	s := "congestion control " + strings.TrimRight(cc, "\x00")
	if cc != wantCongestion {
		s += fmt.Sprintf(" (%s not available to us)", wantCongestion)
	}
	if n := sockBufs().snd; n > 0 {
		got, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		s += fmt.Sprintf(", send buffer %d MiB", got>>20)
	} else {
		s += fmt.Sprintf(", send buffer autotuned up to %d MiB", readSysctlInt("net/ipv4/tcp_wmem", 2)>>20)
	}
	return s
}
