package cli

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// tcpStats reads what the kernel knows of a TCP connection's path: segments
// sent, segments retransmitted and the smoothed round-trip time.
func tcpStats(c net.Conn) (sent, retrans uint64, rtt time.Duration, ok bool) {
	tc, isTCP := c.(*net.TCPConn)
	if !isTCP {
		return 0, 0, 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, 0, 0, false
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || ierr != nil {
		return 0, 0, 0, false
	}
	return uint64(info.Segs_out), uint64(info.Total_retrans), time.Duration(info.Rtt) * time.Microsecond, true
}
