//go:build !linux

package cli

import (
	"net"
	"time"
)

// tcpStats is not available off Linux.
func tcpStats(net.Conn) (sent, retrans uint64, rtt time.Duration, ok bool) { return 0, 0, 0, false }
