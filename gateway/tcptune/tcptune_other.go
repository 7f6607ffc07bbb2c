//go:build !linux

// Package tcptune tunes TCP sockets for long, lossy paths on Linux; elsewhere
// sockets keep the system's settings.
package tcptune

import "syscall"

// Congestion is the TCP congestion controller asked for on Linux.
const Congestion = "bbr"

// Control leaves sockets as the system makes them on this platform.
var Control func(network, address string, c syscall.RawConn) error

// FixedSendBuffer is 0: autotuning is left alone.
func FixedSendBuffer() int { return 0 }

// Describe reports the system's defaults.
func Describe(syscall.RawConn) (congestion, sendBuffer string) { return "default", "default" }
