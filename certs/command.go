package certs

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Exit codes of [Command].
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

const commandUsage = `usage: lexgate certs <command> [flags]

Mint certificate authorities and X.509-SVIDs for demos and tests.
Production gateways get their SVIDs from the SPIFFE Workload API instead.

commands:
  dev    write the demo PKI (two organisations) into a directory
  ca     make a certificate authority for one trust domain
  issue  issue an X.509-SVID with a CA made by "ca" or "dev"

Run "lexgate certs <command> -h" for a command's flags.
`

// errUsage marks a usage error whose message was already printed.
var errUsage = errors.New("usage")

// Command runs "lexgate certs" with args (the words after "certs"): it
// writes results to stdout, errors and usage to stderr, and returns the
// exit code: 0 on success, 1 on error, 2 on a usage error. -h prints help
// and returns 0.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, commandUsage)
		return ExitUsage
	}
	var run func(context.Context, []string, io.Writer, io.Writer) error
	switch args[0] {
	case "dev":
		run = runDev
	case "ca":
		run = runCA
	case "issue":
		run = runIssue
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, commandUsage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "lexgate certs: unknown command %q\n\n%s", args[0], commandUsage)
		return ExitUsage
	}
	switch err := run(ctx, args[1:], stdout, stderr); {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, errUsage):
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "lexgate %v\n", err)
		return ExitError
	}
}

// newFlagSet returns a flag set for "lexgate certs <name>" that prints its
// help to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	flags := flag.NewFlagSet("lexgate certs "+name, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: lexgate certs %s\n\nflags:\n", synopsis)
		flags.PrintDefaults()
	}
	return flags
}

// parse parses args, requiring the named flags and no positional argument.
func parse(flags *flag.FlagSet, args []string, required ...string) error {
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // flag already printed the error and usage
	}
	if flags.NArg() > 0 {
		return usageError(flags, "unexpected argument %q", flags.Arg(0))
	}
	for _, name := range required {
		if flags.Lookup(name).Value.String() == "" {
			return usageError(flags, "flag --%s is required", name)
		}
	}
	return nil
}

func usageError(flags *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(flags.Output(), "%s: %s\n", flags.Name(), fmt.Sprintf(format, args...))
	flags.Usage()
	return errUsage
}

func runDev(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("dev", "dev --out DIR [--ttl 24h]", stderr)
	out := flags.String("out", "", "directory to write the dev PKI into (CAs are reused if present)")
	ttl := flags.Duration("ttl", DefaultSVIDTTL, "lifetime of the minted SVIDs")
	if err := parse(flags, args, "out"); err != nil {
		return err
	}
	if *ttl <= 0 {
		return usageError(flags, "--ttl must be positive, not %v", *ttl)
	}
	spec := DefaultDevSpec()
	spec.TTL = *ttl
	written, err := mintDev(*out, spec)
	printWritten(stdout, written)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gateway SVID: %s\n", DevGatewayID())
	return nil
}

func runCA(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("ca", "ca --trust-domain TD --out DIR [--ttl 8760h]", stderr)
	tdName := flags.String("trust-domain", "", "trust domain of the CA, e.g. harbor-law.example")
	out := flags.String("out", "", "directory to write ca.crt, ca.key and bundle.pem into")
	ttl := flags.Duration("ttl", DefaultCATTL, "lifetime of the CA")
	if err := parse(flags, args, "trust-domain", "out"); err != nil {
		return err
	}
	td, err := spiffeid.TrustDomainFromString(*tdName)
	if err != nil {
		return usageError(flags, "--trust-domain %q: %v", *tdName, err)
	}
	if *ttl <= 0 {
		return usageError(flags, "--ttl must be positive, not %v", *ttl)
	}
	keyPath := filepath.Join(*out, CAKeyFile)
	if _, err := os.Stat(keyPath); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("certs: %s already exists; refusing to replace a CA key (remove it first)", keyPath)
	}
	ca, err := NewCA(td, *ttl)
	if err != nil {
		return err
	}
	if err := WriteCA(*out, ca); err != nil {
		return err
	}
	bundlePath := filepath.Join(*out, BundleFile)
	if err := WriteBundle(bundlePath, ca.Bundle()); err != nil {
		return err
	}
	printWritten(stdout, []string{filepath.Join(*out, CACertFile), keyPath, bundlePath})
	return nil
}

func runIssue(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("issue", "issue --ca DIR --id spiffe://TD/PATH --cert FILE --key FILE [--ttl 24h]", stderr)
	caDir := flags.String("ca", "", "directory holding ca.crt and ca.key")
	idStr := flags.String("id", "", "SPIFFE ID to issue, in the CA's trust domain")
	certPath := flags.String("cert", "", "file to write the certificate chain to (PEM)")
	keyPath := flags.String("key", "", "file to write the private key to (PKCS #8 PEM, 0600)")
	ttl := flags.Duration("ttl", DefaultSVIDTTL, "lifetime of the SVID")
	if err := parse(flags, args, "ca", "id", "cert", "key"); err != nil {
		return err
	}
	id, err := spiffeid.FromString(*idStr)
	if err != nil {
		return usageError(flags, "--id %q is not a SPIFFE ID: %v", *idStr, err)
	}
	if *ttl <= 0 {
		return usageError(flags, "--ttl must be positive, not %v", *ttl)
	}
	ca, err := LoadCA(*caDir)
	if err != nil {
		return err
	}
	if !id.MemberOf(ca.TrustDomain) {
		return fmt.Errorf("certs: %s is not in trust domain %s of the CA in %s", id, ca.TrustDomain, *caDir)
	}
	svid, err := ca.MintSVID(id, SVIDOptions{TTL: *ttl})
	if err != nil {
		return err
	}
	if err := WriteSVID(*certPath, *keyPath, svid); err != nil {
		return err
	}
	printWritten(stdout, []string{*certPath, *keyPath})
	fmt.Fprintf(stdout, "issued %s, valid until %s\n", id, svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func printWritten(w io.Writer, files []string) {
	for _, f := range files {
		fmt.Fprintf(w, "wrote %s\n", f)
	}
}
