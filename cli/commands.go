package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/buildinfo"
)

// Exit codes of [Main].
const (
	ExitOK      = 0 // success
	ExitError   = 1 // any failure not listed below
	ExitUsage   = 2 // bad command line
	ExitRefused = 3 // refused by policy: the gateway answered with api.CodeDenied
	ExitLogin   = 4 // no valid sign-in: the person certificate is missing or expired; run lex login
)

// command is one "lex" subcommand.
type command struct {
	name    string
	args    string // synopsis of the arguments
	summary string
	help    string // more text for "lex help NAME"
	run     func(e *env, args []string) error
}

var commands []*command

func init() {
	commands = []*command{
		keygenCommand, registerCommand, keysCommand, sendCommand,
		inboxCommand, receiveCommand, ackCommand, policyCommand,
		verifyCommand, auditCommand, matterCommand, holdCommand, certificateCommand,
		loginCommand, logoutCommand, completionCommand,
		adminCommand, incidentCommand,
	}
}

// env is what every command runs with: the streams and the global flags.
type env struct {
	ctx        context.Context
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	configPath string // from --config, or "" for the default
	verbose    bool
	transport  string
	reconnect  time.Duration // --reconnect: how long an outage may last
	// json: --json, before the command or among its arguments: results, and
	// failures and refusals too, are JSON on stdout.
	json bool
	// printed counts what the command wrote on stdout: a command that
	// printed its own JSON before it failed (lex policy test) gets no second
	// document.
	printed *countingWriter
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Main runs the lex command line args (without the program name) and returns the
// process exit code: [ExitOK], [ExitError], [ExitUsage] or [ExitRefused]. It
// writes results to stdout and diagnostics, progress bars and errors to stderr.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if _, ok := stderr.(*os.File); !ok { // goroutines of one command (parallel ranges) all report
		stderr = &lockedWriter{w: stderr} // (an *os.File is safe already, and stays one for the progress bar)
	}
	out := &countingWriter{w: stdout}
	e := &env{ctx: ctx, stdin: stdin, stdout: out, stderr: stderr, printed: out}
	fs := flag.NewFlagSet("lex", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&e.configPath, "config", "", "configuration `FILE`")
	fs.BoolVar(&e.verbose, "v", false, "verbose: say which transport is used and why")
	fs.StringVar(&e.transport, "transport", TransportAuto, "auto, quic or tcp")
	fs.DurationVar(&e.reconnect, "reconnect", DefaultReconnect, "how long to keep reconnecting to a gateway that went away")
	fs.BoolVar(&e.json, "json", false, "JSON on stdout, failures included")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return ExitOK
		}
		fmt.Fprintf(stderr, "lex: %v\n", err)
		printUsage(stderr)
		return ExitUsage
	}
	rest := fs.Args()
	if *version {
		return printVersion(e)
	}
	if len(rest) == 0 {
		printUsage(stderr)
		return ExitUsage
	}
	switch e.transport {
	case TransportAuto, TransportQUIC, TransportTCP:
	default:
		fmt.Fprintf(stderr, "lex: --transport %q: want auto, quic or tcp\n", e.transport)
		return ExitUsage
	}
	if rest[0] == "help" {
		return helpCommand(e, rest[1:])
	}
	cmd := findCommand(rest[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "lex: unknown command %q\n", rest[0])
		printUsage(stderr)
		return ExitUsage
	}
	cargs := rest[1:]
	switch {
	case hasJSONFlag(cargs):
		e.json = true
	case e.json && strings.Contains(cmd.args, "--json"):
		cargs = withJSONFlag(cargs) // lex --json send … is lex send … --json
	}
	return e.report(cmd, cmd.run(e, cargs))
}

// withJSONFlag adds --json to a command's arguments, after its subcommand
// and before any "--".
func withJSONFlag(args []string) []string {
	i := slices.Index(args, "--")
	if i < 0 {
		i = len(args)
	}
	return slices.Insert(slices.Clone(args), i, "--json")
}

// hasJSONFlag reports whether a command's arguments ask for --json.
func hasJSONFlag(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true":
			return true
		}
	}
	return false
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// report prints err (if any) and maps it to an exit code. Under --json a
// failure is also a JSON document on stdout (see jsonFailure); the words stay
// on stderr.
func (e *env) report(cmd *command, err error) int {
	code := e.explainErr(cmd, err)
	if e.json && code != ExitOK && e.printed.n == 0 {
		f := jsonFailure{Status: "error", Command: cmd.name, ExitCode: code}
		if err != nil {
			f.Error = err.Error()
		}
		var apiErr *api.Error
		switch {
		case code == ExitUsage:
			f.Status = "usage"
		case code == ExitRefused && errors.As(err, &apiErr):
			f.Status, f.Error = "refused", apiErr.Message
		}
		if errors.As(err, &apiErr) {
			f.Code, f.Reasons, f.DecisionID, f.RequestID = apiErr.Code, apiErr.Reasons, apiErr.DecisionID, apiErr.RequestID
		}
		writeJSON(e.stdout, f)
	}
	return code
}

// jsonFailure is what --json prints on stdout when a command fails: a refusal
// by policy (status "refused", exit 3) with its reasons and decision id, a
// usage error ("usage", exit 2) or any other error ("error", exit 1).
type jsonFailure struct {
	Status     string       `json:"status"`
	Command    string       `json:"command"`
	Error      string       `json:"error"`
	Code       string       `json:"code,omitempty"` // the gateway's error code, when it answered
	Reasons    []api.Reason `json:"reasons,omitempty"`
	DecisionID string       `json:"decision_id,omitempty"`
	RequestID  string       `json:"request_id,omitempty"`
	ExitCode   int          `json:"exit_code"`
}

// explainErr prints err (if any) on stderr and maps it to an exit code.
func (e *env) explainErr(cmd *command, err error) int {
	var (
		usage  *usageError
		apiErr *api.Error
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		printCommandHelp(e.stdout, cmd)
		return ExitOK
	case errors.As(err, &usage):
		fmt.Fprintf(e.stderr, "lex %s: %s\n", cmd.name, usage.msg)
		fmt.Fprintf(e.stderr, "usage: lex %s %s (see lex help %s)\n", cmd.name, cmd.args, cmd.name)
		return ExitUsage
	case errors.As(err, &apiErr) && apiErr.Code == api.CodeDenied:
		printRefusal(e.stderr, apiErr)
		return ExitRefused
	case errors.Is(err, errPolicyWouldRefuse): // lex policy explain printed why
		return ExitRefused
	case errors.Is(err, ErrLoginNeeded):
		fmt.Fprintf(e.stderr, "lex %s: %v\n", cmd.name, err)
		return ExitLogin
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(e.stderr, "lex %s: interrupted\n", cmd.name)
		return ExitError
	}
	fmt.Fprintf(e.stderr, "lex %s: %v\n", cmd.name, err)
	return ExitError
}

// printRefusal explains a policy refusal, one reason per line.
func printRefusal(w io.Writer, e *api.Error) {
	fmt.Fprintf(w, "refused by policy: %s\n", e.Message)
	for _, r := range e.Reasons {
		fmt.Fprintf(w, "  - %s [%s]\n", r.Message, r.Code)
	}
	if e.DecisionID != "" {
		fmt.Fprintf(w, "decision %s\n", e.DecisionID)
	}
}

// verbosef prints a line on stderr under -v.
func (e *env) verbosef(format string, args ...any) {
	if e.verbose {
		fmt.Fprintf(e.stderr, format+"\n", args...)
	}
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// loadConfig reads the configuration named by --config or the default.
func (e *env) loadConfig() (*Config, error) {
	path, err := e.resolveConfigPath()
	if err != nil {
		return nil, err
	}
	return LoadConfig(path)
}

func (e *env) resolveConfigPath() (string, error) {
	if e.configPath != "" {
		return e.configPath, nil
	}
	return DefaultConfigPath()
}

// dial loads the configuration and connects to the gateway.
func (e *env) dial() (*Config, *Client, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	var verbose io.Writer
	if e.verbose {
		verbose = e.stderr
	}
	c, err := Dial(e.ctx, cfg, e.transport, verbose)
	if err != nil {
		return nil, nil, err
	}
	c.SetReconnect(e.reconnect)
	if c.log, err = c.followLog(e.ctx, cfg); err != nil {
		c.Close()
		return nil, nil, err
	}
	return cfg, c, nil
}

// newFlagSet returns a flag set for the command name; parseArgs turns its errors
// into usage errors.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("lex "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseArgs parses flags and positional arguments in any order ("lex receive ID -o
// DIR"); everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// sizeFlag is a byte count: 1048576, 64KiB, 256MiB, 1GiB (K, M, G, KB… accepted as binary units too).
type sizeFlag int64

func (s *sizeFlag) String() string { return humanSize(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(v))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive number such as 256MiB", v)
	}
	return n * mult, nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `lex sends and receives end-to-end encrypted bundles through a lexgate gateway.

usage: lex [--config FILE] [-v] [--json] [--transport auto|quic|tcp] [--reconnect D] COMMAND [ARGS]
       lex --version

commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `  help      show help for a command ("lex help send") or the configuration ("lex help config")

global flags:
  --config FILE   configuration file (default $LEX_CONFIG, else lex/config.yaml in the user config directory)
  -v              verbose: say which transport is used and why
  --json          JSON on stdout, failures and refusals included (also after the command)
  --version       the version of lex and of the libraries it was built with
  --transport T   auto (requests over QUIC, else TCP; ciphertext over TCP), quic or tcp (default auto)
  --reconnect D   keep reconnecting to a gateway that went away (a restart) for D, then give up (default 1m; 0: never)

exit codes: 0 ok, 1 error, 2 usage, 3 refused by policy, 4 not signed in (run lex login)
`)
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: lex %s %s\n\n%s\n", c.name, c.args, c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
}

const configHelp = `The configuration file is YAML. Relative paths are resolved against its directory;
unknown keys are an error.

  gateway: 127.0.0.1:8443                         # host:port; QUIC (UDP) and TCP
  gateway_id: spiffe://harbor-law.example/gateway # the gateway's SPIFFE ID
  svid_cert: alice.crt                            # your X.509-SVID chain (PEM)
  svid_key: alice.key
  bundles:                                        # trust domain: CA bundle (PEM)
    harbor-law.example: harbor-law.example/bundle.pem
    manila-lpo.example: manila-lpo.example/bundle.pem
  identity: identity.age                          # default <config dir>/identity.age
  cache_dir: /home/alice/.cache/lex               # default <user cache dir>/lex

Instead of svid_cert and svid_key, a workload (a DMS export job) may take its
SVID from a SPIRE agent, rotated while lex runs:

  workload_api: unix:///run/spire/agent.sock
  spiffe_id: spiffe://harbor-law.example/legacy/dms   # which SVID, if it offers several

and a person signs in with the firm's single sign-on (lex login):

  login:
    issuer: https://sso.harbor-law.example          # OpenID Connect provider
    client_id: lex
    ca_url: https://people-ca.harbor-law.example:9000 # step-ca
    ca_root: people-root.pem
    dir: login                                      # default; person.crt, person.key (0600)
    mfa_amr: [otp, mfa]                             # default: the ID token's amr must name one
    mfa_acr: []                                     # or its acr must be one of these

See docs/identity.md.`

func helpCommand(e *env, args []string) int {
	switch {
	case len(args) == 0:
		printUsage(e.stdout)
		return ExitOK
	case args[0] == "config":
		fmt.Fprintln(e.stdout, configHelp)
		return ExitOK
	}
	c := findCommand(args[0])
	if c == nil {
		fmt.Fprintf(e.stderr, "lex help: unknown command %q\n", args[0])
		return ExitUsage
	}
	printCommandHelp(e.stdout, c)
	return ExitOK
}

// isNotExist reports whether err says a file does not exist.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// printVersion prints lex's version (as JSON under --json).
func printVersion(e *env) int {
	in := buildinfo.Read("lex")
	if e.json {
		writeJSON(e.stdout, in)
		return ExitOK
	}
	fmt.Fprint(e.stdout, in)
	return ExitOK
}
