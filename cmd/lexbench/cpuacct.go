package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// On a shared machine a wall-clock rate says as much about the other work as
// about the server measured. With -sftp-front every timed command also records
// the server's CPU time (the gateway's, or sshd's with its per-connection
// session processes) and the CPU time that neither the client nor the server
// used: the rest of the machine, other tenants included, and the VM's steal.

// machineCPU is the busy and stolen CPU time of the whole machine so far, from
// the "cpu" line of /proc/stat.
type machineCPU struct {
	busy, steal time.Duration
}

func readMachineCPU() (machineCPU, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t [8]int64
	for i := range t {
		if t[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTick }
	return machineCPU{busy: tick(t[0] + t[1] + t[2] + t[5] + t[6]), steal: tick(t[7])}, nil
}

// serverCPU measures one command's server-side CPU: cpu reads the server's
// CPU time so far.
type serverCPU struct {
	cpu func() (time.Duration, error)
	// settle is true for sshd: a session's CPU shows in the daemon's only
	// once the daemon has reaped it, shortly after the client exits.
	settle bool
}

// cpuSpan is what the machine and the server did during one command.
type cpuSpan struct {
	server, other, steal time.Duration
}

// measureCPU runs command, which returns the client's CPU time, and works out
// the server's CPU time during it and the rest of the machine's.
func measureCPU(s serverCPU, command func() (client time.Duration, err error)) (cpuSpan, error) {
	m0, err := readMachineCPU()
	if err != nil {
		return cpuSpan{}, err
	}
	s0, err := s.cpu()
	if err != nil {
		return cpuSpan{}, err
	}
	client, err := command()
	if err != nil {
		return cpuSpan{}, err
	}
	m1, err := readMachineCPU()
	if err != nil {
		return cpuSpan{}, err
	}
	s1, err := s.cpu()
	for deadline := time.Now().Add(time.Second); err == nil && s.settle && s1 == s0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		s1, err = s.cpu()
	}
	if err != nil {
		return cpuSpan{}, err
	}
	server := s1 - s0
	return cpuSpan{server: server, other: max(m1.busy-m0.busy-server-client, 0), steal: m1.steal - m0.steal}, nil
}
