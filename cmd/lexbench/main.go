// Command lexbench measures a large transfer through lexgate beside the tools it
// replaces, side by side in one run on 127.0.0.1: the stock age CLI encrypting the
// same file (X25519 and post-quantum hybrid recipients), OpenSSH sftp put and get
// against a throwaway sshd, and lex send and receive through a gateway over QUIC
// and over TCP. It prints a table of MB/s with ratios to sftp, the gateway's peak
// RSS, and whether the performance targets are met. "make bench" runs it.
//
// Usage:
//
//	lexbench [-bin DIR] [-size SIZE] [-files N] [-file-size SIZE] [-runs N] [-json] [-keep] [-dir DIR] [-sftp-front [-get-cache STATE]]
//
// Then, unless -files 0, the production case: N files (20,000 by default) of
// -file-size (50 KB) in 20 folders, put and got with sftp -r and sent and
// received with lex over TCP, with the ratios.
//
// With -sftp-front it measures the SFTP front instead of lex: the same sftp
// client puts and gets the file through the throwaway sshd and through a
// gateway's SFTP front (encrypting on ingest), taking turns in every run, with
// the ratios and targets. Before every get the file the server will read is
// put in the same page-cache state on both sides: -get-cache cold (dropped
// from the page cache, as a file uploaded a while ago), warm (all of it in
// memory), both (the default: a cold get, then a warm one) or as-is (left as
// the put left it, only recorded). The table shows how much of the served
// file was resident as each get began.
//
// Every process it starts (sshd, the gateways) is stopped on exit and on Ctrl-C,
// and its temporary directory is removed unless -keep is given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var o options
	size := sizeFlag(1 << 30)
	fileSize := sizeFlag(50_000)
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the built lex and lexgate binaries")
	flag.Var(&size, "size", "size of the random test file (e.g. 1GiB, 8MiB, 500MB)")
	flag.IntVar(&o.files, "files", 20000, "files in the production case (many small files: lex send/receive over TCP beside sftp put -r/get -r); 0 skips it")
	flag.Var(&fileSize, "file-size", "size of each file of the production case")
	flag.IntVar(&o.runs, "runs", 1, "runs of every measurement; the median is reported")
	flag.BoolVar(&o.json, "json", false, "print the results as JSON instead of a table")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, configs, PKI)")
	flag.StringVar(&o.parent, "dir", "", "where to make the temporary directory (default: the system's)")
	flag.BoolVar(&o.sftpFront, "sftp-front", false, "measure sftp through the gateway's SFTP front beside sshd (instead of age and lex)")
	flag.StringVar(&o.cipher, "ssh-cipher", "", "SSH cipher for every sftp command (default: OpenSSH's choice, or with -sftp-front "+frontCipher+", which the front offers, so both servers are compared on the same cipher)")
	flag.StringVar(&o.getCache, "get-cache", cacheBoth, "with -sftp-front, the page-cache state of the served file before every get, the same for sshd and the front: "+
		"cold (fsynced and dropped from the page cache, as a file uploaded a while ago), warm (read once, all in memory), both (cold, then warm), as-is (left as the put left it; only recorded), or a comma-separated list such as warm,cold (in that order)")
	flag.Parse()
	if _, err := getCaches(o.getCache); err != nil {
		fmt.Fprintf(os.Stderr, "lexbench: %v\n", err)
		os.Exit(2)
	}
	if o.sftpFront && o.cipher == "" {
		o.cipher = frontCipher
	}
	o.size = int64(size)
	o.fileSize = int64(fileSize)
	if o.sftpFront {
		o.files = 0
	}
	if flag.NArg() > 0 || o.runs < 1 || o.size < 1 || o.files < 0 || o.fileSize < 1 {
		flag.Usage()
		os.Exit(2)
	}

	// The signal handler stays installed until cleanup is done, so a second Ctrl-C
	// cannot cut it short and leave sshd or a gateway behind.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	rep, err := run(ctx, o, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "lexbench: %v\n", err)
		os.Exit(1)
	}
	if o.json {
		err = rep.writeJSON(os.Stdout)
	} else {
		err = rep.writeTable(os.Stdout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lexbench: %v\n", err)
		os.Exit(1)
	}
}
