package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/buildinfo"
	"github.com/lexgate/lexgate/gateway/internal/heapfloor"
)

const usageHead = `lexgate is the lexgate file transfer gateway.

Usage:
  lexgate serve --config lexgate.yaml   run the gateway (HTTP/3 + HTTPS on one port)
  lexgate log-key --config lexgate.yaml print the audit log's public key (lex's log_key)
  lexgate certs dev --out DIR           mint a development PKI (see "lexgate certs -h")
  lexgate certs ca|issue ...            mint a trust-domain CA or an X.509-SVID
  lexgate version [--json]              the version, and those of the libraries it was built with
  lexgate help                          this text

The config file is YAML; unknown keys are errors. A minimal one, for the PKI
"lexgate certs dev --out pki" mints:

`

const usageTail = `
Without policy.dir the embedded default policies are used. With it, the gateway
reloads the policies when their files change or on SIGHUP; a set that does not
compile or fails its tests is rejected and the last good one keeps serving.
examples/lexgate.yaml in the source tree is a production config.
`

// usage is the help text, with a minimal config written by Config.Marshal.
var usage = func() string {
	c := DevConfig("pki", "data")
	c.Listen, c.Admin = "127.0.0.1:8443", ""
	b, err := c.Marshal()
	if err != nil {
		panic(err) // a DevConfig always marshals
	}
	var s strings.Builder
	s.WriteString(usageHead)
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		s.WriteString("  " + l + "\n")
	}
	return s.String() + usageTail
}()

// Main is the lexgate command. It returns the process exit code: 0 ok, 1 error, 2 usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "certs":
		return certs.Command(ctx, args[1:], stdout, stderr)
	case "log-key":
		return logKey(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		in := buildinfo.Read("lexgate")
		if slices.Contains(args[1:], "--json") {
			if err := json.NewEncoder(stdout).Encode(in); err != nil {
				return 1
			}
			return 0
		}
		fmt.Fprint(stdout, in)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "lexgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("lexgate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "lexgate.yaml", "the YAML config `file`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: lexgate serve [--config lexgate.yaml]\n\nRuns the gateway until SIGINT or SIGTERM, then drains uploads in flight.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "lexgate: %v\n", err)
		return 1
	}
	logger := NewLogger(cfg.Log, stderr)
	klog.SetSlogLogger(logger) // tessera (the audit log) logs through klog
	// Process-wide, so here and not in Run (tests run several gateways).
	defer heapfloor.Start(cfg.GC.MinHeap())()
	logger.Info("garbage collector", slog.Int("min_heap_mib", cfg.GC.MinHeapMiB), slog.String("GOGC", os.Getenv("GOGC")), slog.String("GOMEMLIMIT", os.Getenv("GOMEMLIMIT")))
	if err := Run(ctx, cfg, logger); err != nil {
		fmt.Fprintf(stderr, "lexgate: %v\n", err)
		return 1
	}
	return 0
}

// logKey prints the audit log's note verifier key, for lex's log_key setting.
func logKey(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lexgate log-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "lexgate.yaml", "the YAML config `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "lexgate: %v\n", err)
		return 1
	}
	vkey, err := audit.ReadVerifierKey(cfg.Audit.KeyFileOrDefault())
	if err != nil {
		fmt.Fprintf(stderr, "lexgate: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, vkey)
	return 0
}
