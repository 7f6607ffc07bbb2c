package gateway

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"k8s.io/klog/v2"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/heapfloor"
)

const usage = `lexgate is the lexgate file transfer gateway.

Usage:
  lexgate serve --config lexgate.yaml   run the gateway (HTTP/3 + HTTPS on one port)
  lexgate log-key --config lexgate.yaml print the audit log's public key (lex's log_key)
  lexgate certs dev --out DIR           mint a development PKI (see "lexgate certs -h")
  lexgate certs ca|issue ...            mint a trust-domain CA or an X.509-SVID
  lexgate help                          this text

The config file is YAML; unknown keys are errors. A minimal one:

  listen: 127.0.0.1:8443
  identity:
    svid_cert: pki/harbor-law.example/gateway.crt
    svid_key:  pki/harbor-law.example/gateway.key
    bundles:
      harbor-law.example: pki/harbor-law.example/bundle.pem
      manila-lpo.example: pki/manila-lpo.example/bundle.pem
  store:
    dir: data

Without policy.dir the embedded default policies are used. With it, the gateway
reloads the policies when their files change or on SIGHUP; a set that does not
compile or fails its tests is rejected and the last good one keeps serving.
`

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
