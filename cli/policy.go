package cli

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lexgate/lexgate/gateway/policy"
)

var policyCommand = &command{
	name:    "policy",
	args:    "test [DIR] [--json] | check DIR [--json] | explain --from ID --to ID ... [--local DIR] [--json]",
	summary: "test, check and explain the gateway's policies (for security teams)",
	help: `Tools for the Rego policies the gateway decides with (see policies/README.md).

  lex policy test [DIR] [-v] [--json]
      runs the Rego tests (*_test.rego) of the policy set in DIR (default
      ./policies, or . when there is none) against its data, as "opa test"
      does, and prints a pass/fail summary and the coverage of each policy
      file. Exit status 1 when a test fails.

  lex policy check DIR [--json]
      compiles the policy set in DIR with its data, tests included, and
      reports every problem as FILE:LINE: message, before anyone deploys it.
      Exit status 1 when there are problems.

  lex policy explain --from ID --to ID [--to ID...] [--label L...] [--region R...]
                     [--matter M] [--size N] [--files N] [--action A] [--at DATE]
                     [--local DIR] [--json]
      asks what the policy would decide, and prints the decision with every
      reason. The running gateway answers (you may ask about identities of
      your own organisation; administrators about anyone), or, with --local,
      the policy set in DIR. --at is YYYY-MM-DD (midnight UTC) or RFC 3339;
      default now. --action defaults to send. Exit status 3 when refused.`,
	run: runPolicy,
}

func runPolicy(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand: test, check or explain")
	}
	switch args[0] {
	case "test":
		return runPolicyTest(e, args[1:])
	case "check":
		return runPolicyCheck(e, args[1:])
	case "explain":
		return runPolicyExplain(e, args[1:])
	case "-h", "--help", "help":
		return flag.ErrHelp
	}
	return usagef("unknown subcommand %q: want test, check or explain", args[0])
}

// policyDir returns the one optional DIR argument, or the default.
func policyDir(pos []string) (string, error) {
	switch len(pos) {
	case 0:
		if info, err := os.Stat("policies"); err == nil && info.IsDir() {
			return "policies", nil
		}
		return ".", nil
	case 1:
		if info, err := os.Stat(pos[0]); err != nil || !info.IsDir() {
			return "", fmt.Errorf("policy: %s is not a directory", pos[0])
		}
		return pos[0], nil
	}
	return "", usagef("unexpected argument %q", pos[1])
}

// errTestsFailed makes "lex policy test" exit 1 after its own report.
var errTestsFailed = errors.New("some policy tests failed")

func runPolicyTest(e *env, args []string) error {
	fset := newFlagSet("policy test")
	verbose := fset.Bool("v", false, "")
	jsonOut := fset.Bool("json", false, "")
	pos, err := parseArgs(fset, args)
	if err != nil {
		return err
	}
	dir, err := policyDir(pos)
	if err != nil {
		return err
	}
	rep, err := policy.RunTests(e.ctx, os.DirFS(dir))
	if err != nil {
		return inDir(dir, err)
	}
	if *jsonOut {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		printTestReport(e, dir, rep, *verbose)
	}
	if !rep.Passed() {
		if len(rep.Results) == 0 {
			return fmt.Errorf("no Rego tests (test_* rules in *_test.rego) in %s", dir)
		}
		return errTestsFailed
	}
	return nil
}

func printTestReport(e *env, dir string, rep policy.TestReport, verbose bool) {
	for _, t := range rep.Results {
		if t.Pass && !verbose {
			continue
		}
		status := "PASS"
		if !t.Pass {
			status = "FAIL"
		}
		fmt.Fprintf(e.stdout, "%s %s (%s:%d)", status, t.Name, filepath.Join(dir, t.File), t.Line)
		if t.Error != "" {
			fmt.Fprintf(e.stdout, ": %s", t.Error)
		}
		fmt.Fprintln(e.stdout)
	}
	fmt.Fprintf(e.stdout, "PASS: %d/%d", len(rep.Results)-rep.Failed(), len(rep.Results))
	if n := rep.Failed(); n > 0 {
		fmt.Fprintf(e.stdout, ", FAIL: %d/%d", n, len(rep.Results))
	}
	fmt.Fprintf(e.stdout, "\ncoverage: %.1f%%\n", rep.Coverage)
	for _, f := range rep.Files {
		fmt.Fprintf(e.stdout, "  %5.1f%%  %s", f.Percent, filepath.Join(dir, f.File))
		if len(f.NotCovered) > 0 {
			lines := make([]string, len(f.NotCovered))
			for i, l := range f.NotCovered {
				lines[i] = fmt.Sprint(l)
			}
			fmt.Fprintf(e.stdout, "  (not covered: lines %s)", strings.Join(lines, ", "))
		}
		fmt.Fprintln(e.stdout)
	}
}

func runPolicyCheck(e *env, args []string) error {
	fset := newFlagSet("policy check")
	jsonOut := fset.Bool("json", false, "")
	pos, err := parseArgs(fset, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one policy directory")
	}
	dir, err := policyDir(pos)
	if err != nil {
		return err
	}
	errs := policy.Check(e.ctx, os.DirFS(dir))
	if len(errs) == 0 {
		n := 0
		fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".rego") {
				n++
			}
			return nil
		})
		if *jsonOut {
			return writeJSON(e.stdout, struct {
				Dir       string `json:"dir"`
				OK        bool   `json:"ok"`
				RegoFiles int    `json:"rego_files"`
			}{dir, true, n})
		}
		fmt.Fprintf(e.stdout, "%s: ok (%d Rego files and their data compile)\n", dir, n)
		return nil
	}
	var lines []string
	for _, err := range errs {
		lines = append(lines, located(dir, err))
	}
	if *jsonOut { // the failure document carries them
		return fmt.Errorf("%d problem(s) in %s:\n%s", len(errs), dir, strings.Join(lines, "\n"))
	}
	fmt.Fprintln(e.stdout, strings.Join(lines, "\n"))
	return fmt.Errorf("%d problem(s) in %s", len(errs), dir)
}

// located prints a policy problem as DIR/FILE:LINE: message.
func located(dir string, err error) string {
	var pe *policy.Error
	if !errors.As(err, &pe) {
		return err.Error()
	}
	where := dir
	if pe.File != "" {
		where = filepath.Join(dir, pe.File)
	}
	if pe.Line > 0 {
		where = fmt.Sprintf("%s:%d", where, pe.Line)
	}
	return where + ": " + pe.Message
}

// inDir rewrites the problems of a policy set to name files under dir.
func inDir(dir string, err error) error {
	var lines []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			lines = append(lines, located(dir, e))
		}
	} else {
		lines = append(lines, located(dir, err))
	}
	return errors.New(strings.Join(lines, "\n"))
}
