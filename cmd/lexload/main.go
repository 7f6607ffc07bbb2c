// Command lexload is lexgate's bounded load test on loopback: it starts one real
// lexgate process, points many concurrent lex clients (cli.Client, the library
// under the lex command) at it for a fixed time, and prints what the gateway
// held up to. With -backends embedded,cluster it then does the same against
// three replicas on the cluster backends — PostgreSQL metadata, the audit log
// in MariaDB, ciphertext on versitygw (S3), the engines started privately on loopback —
// each client given every replica's address (its own first, in turn), and
// prints the two side by side.
//
//	go run ./cmd/lexload -lexgate bin/lexgate -duration 60s -backends embedded,cluster
//
// By default 200 senders loop sending 1 MiB bundles and 20 loop sending 256 MiB
// bundles, each as alice to the review team: sign a manifest, create the
// transfer, upload the age ciphertext in chunks. Receivers (the review team)
// download each finished transfer, check its SHA-256 and acknowledge it; the
// gateway runs with transfer.purge_on_ack, so acknowledged ciphertext is deleted
// as it goes and the disk stays bounded. At the end it prints, per class, the
// transfers completed, errors, transfers cut by the end of the run, and p50/p99
// latency (create to last byte acknowledged) and transfers per second; each
// gateway's peak RSS (VmHWM); and its open file descriptors before the
// clients connected and after they left. It exits 1 if any transfer failed
// or descriptors leaked.
//
// `make load` runs it (LOAD_DURATION, default 60s).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lexload:", err)
		return 2
	}
	rs, err := load(ctx, o, os.Stderr)
	for i, r := range rs {
		if i > 0 {
			fmt.Println()
		}
		r.print(os.Stdout)
	}
	if len(rs) > 1 {
		fmt.Println()
		printSummary(os.Stdout, rs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lexload:", err)
		return 1
	}
	for _, r := range rs {
		if !r.ok() {
			return 1
		}
	}
	return 0
}

// options are lexload's flags.
type options struct {
	lexgate    string        // the lexgate binary
	dir        string        // work directory ("" for a temporary one, removed after)
	duration   time.Duration // how long senders start new transfers
	small      class
	large      class
	chunk      int64  // upload chunk size
	receivers  int    // concurrent downloaders
	transport  string // tcp, quic or auto
	keepOnExit bool
	backends   []string // what to run against, in order: backendEmbedded, backendCluster
	replicas   int      // replicas of the cluster backend
}

// class is a kind of sender: how many, sending bundles of what size.
type class struct {
	name    string
	senders int
	size    int64 // plaintext bytes per bundle
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("lexload", flag.ContinueOnError)
	o := &options{small: class{name: "small"}, large: class{name: "large"}}
	fs.StringVar(&o.lexgate, "lexgate", "bin/lexgate", "the lexgate binary to start")
	fs.StringVar(&o.dir, "dir", "", "work directory (PKI, gateway data, log); default a temporary one, removed at the end")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "how long senders keep starting transfers")
	fs.IntVar(&o.small.senders, "small", 200, "senders of small bundles")
	fs.Int64Var(&o.small.size, "small-size", 1<<20, "bytes per small bundle")
	fs.IntVar(&o.large.senders, "large", 20, "senders of large bundles")
	fs.Int64Var(&o.large.size, "large-size", 256<<20, "bytes per large bundle")
	fs.Int64Var(&o.chunk, "chunk", 16<<20, "upload chunk size in bytes")
	fs.IntVar(&o.receivers, "receivers", 16, "concurrent receivers downloading and acknowledging")
	fs.StringVar(&o.transport, "transport", "tcp", "lex transport: tcp, quic or auto")
	fs.BoolVar(&o.keepOnExit, "keep", false, "keep the work directory")
	backends := fs.String("backends", backendEmbedded, "comma-separated: embedded (one lexgate, SQLite) and/or cluster (-replicas replicas on PostgreSQL + MariaDB, shared spool), run one after the other")
	fs.IntVar(&o.replicas, "replicas", 3, "replicas of the cluster backend")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.backends, err = parseBackends(*backends); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.duration <= 0:
		return nil, fmt.Errorf("-duration %v: want a positive duration", o.duration)
	case o.small.senders < 0 || o.large.senders < 0 || o.small.senders+o.large.senders == 0:
		return nil, fmt.Errorf("want at least one sender")
	case o.small.size <= 0 || o.large.size <= 0 || o.chunk <= 0:
		return nil, fmt.Errorf("sizes must be positive")
	case o.receivers < 1:
		return nil, fmt.Errorf("-receivers %d: want at least 1", o.receivers)
	case o.replicas < 1:
		return nil, fmt.Errorf("-replicas %d: want at least 1", o.replicas)
	}
	return o, nil
}
