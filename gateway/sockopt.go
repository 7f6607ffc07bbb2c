package gateway

import (
	"net"
	"syscall"

	"github.com/lexgate/lexgate/gateway/tcptune"
)

// tcpControl tunes the TCP listener before it binds; accepted connections
// inherit its congestion controller and buffers (see tcptune), so downloads are
// sent with them.
var tcpControl = tcptune.Control

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
	return tcptune.Describe(rc)
}
