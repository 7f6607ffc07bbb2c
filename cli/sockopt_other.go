//go:build !linux

package cli

import "syscall"

// tcpControl leaves TCP sockets as the system makes them on this platform.
var tcpControl func(network, address string, c syscall.RawConn) error

// tcpTuning describes the TCP tuning for -v.
func tcpTuning() string { return "system default TCP settings" }
