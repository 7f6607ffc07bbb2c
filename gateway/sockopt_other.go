//go:build !linux

package gateway

import (
	"net"
	"syscall"
)

// tcpControl leaves the TCP listener as the system makes it on this platform.
var tcpControl func(network, address string, c syscall.RawConn) error

// tcpTuning reports the listener's TCP settings for the start-up log.
func tcpTuning(net.Listener) (congestion, sendBuffer string) { return "default", "default" }
