// Command lexwan measures lexgate over an emulated long, lossy path — the
// Frankfurt–Manila kind a law firm and its LPO site share — beside OpenSSH sftp
// over the same path in the same run. "make bench-wan" runs it (Linux, root).
//
// It builds two network namespaces joined by a packet forwarder on TUN devices
// (package [github.com/lexgate/lexgate/cmd/lexwan/emu]: one-way delay, random
// loss and a rate cap per direction; no netem needed), runs the gateway and a
// throwaway sshd in one ("firm") and lex and sftp in the other ("lpo"). For
// each profile it first validates the emulator (UDP echo: RTT and loss against
// the configured ones), then times sftp put, lex send with --transport auto,
// quic and tcp, sftp get and lex receive, and prints MB/s, the ratio to sftp
// and the emulator's CPU cost.
//
// Usage:
//
//	lexwan [-bin DIR] [-size SIZE] [-profiles LIST] [-sends LIST] [-receive=false] [-timeout D] [-keep] [-v]
//
// -sends and -receive=false shorten a run to the rows one change needs, e.g.
// "-profiles 150ms,150ms-0.5% -sends auto -receive=false" times only sftp put
// and lex send (auto) on the two 150 ms paths.
//
// A measurement that runs past -timeout is stopped; its figure is then the
// bytes the link carried in that direction divided by the time (an upper bound
// of the goodput), marked with "≤".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	var o options
	size := sizeFlag(256 << 20)
	if v := os.Getenv("WAN_SIZE"); v != "" {
		if err := size.Set(v); err != nil {
			fmt.Fprintf(os.Stderr, "lexwan: WAN_SIZE: %v\n", err)
			os.Exit(2)
		}
	}
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.Name
	}
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the built lex and lexgate binaries")
	flag.Var(&size, "size", "size of the random test file (e.g. 256MiB; default from WAN_SIZE)")
	flag.StringVar(&o.profiles, "profiles", strings.Join(names, ","), "comma-separated profiles to run")
	flag.DurationVar(&o.timeout, "timeout", 150*time.Second, "longest one measurement may run")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, configs, PKI)")
	flag.BoolVar(&o.verbose, "v", false, "print lex -v output")
	flag.StringVar(&o.cc, "cc", "", "set the namespaces' default TCP congestion control (default: the host's)")
	flag.StringVar(&o.sends, "sends", "auto,quic,tcp", "comma-separated lex send --transport modes to time")
	flag.BoolVar(&o.receive, "receive", true, "also time sftp get and lex receive")
	flag.Parse()
	o.size = int64(size)
	if flag.NArg() > 0 || o.size < 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "lexwan: %v\n", err)
		os.Exit(1)
	}
}
