package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test rule (test_*).
type TestResult struct {
	// Name is the test's package and rule, "data.lexgate_test.test_x".
	Name string `json:"name"`
	// File and Line locate the test.
	File string `json:"file"`
	Line int    `json:"line"`
	// Pass is true when the test passed.
	Pass bool `json:"pass"`
	// Error is set when the test could not be evaluated; "" otherwise.
	Error string `json:"error,omitempty"`
	// Duration is how long the test took.
	Duration time.Duration `json:"duration_ns"`
}

// FileCoverage is the coverage of one policy file by its tests.
type FileCoverage struct {
	// File is the file's path in the set.
	File string `json:"file"`
	// Percent of the file's expressions the tests evaluated.
	Percent float64 `json:"percent"`
	// NotCovered are the first lines of the ranges the tests never reached.
	NotCovered []int `json:"not_covered,omitempty"`
}

// TestReport is the outcome of [RunTests].
type TestReport struct {
	// Results are the tests in file and line order.
	Results []TestResult `json:"results"`
	// Coverage is the percentage of policy expressions (tests excluded)
	// that the tests evaluated.
	Coverage float64 `json:"coverage"`
	// Files is the coverage of each policy file (tests excluded), by name.
	Files []FileCoverage `json:"files"`
}

// Passed reports whether there are tests and all of them passed.
func (r TestReport) Passed() bool {
	return len(r.Results) > 0 && r.Failed() == 0
}

// Failed counts the tests that failed or could not be evaluated.
func (r TestReport) Failed() int {
	n := 0
	for _, t := range r.Results {
		if !t.Pass {
			n++
		}
	}
	return n
}

// RunTests runs the Rego tests (*_test.rego) of the policy set in fsys
// against its data, the way `opa test` does, with the same builtins as
// the engine, and measures their coverage. A set that does not compile is
// an error listing each problem as an *[Error], as [Check] does.
func RunTests(ctx context.Context, fsys fs.FS) (TestReport, error) {
	set, errs := load(ctx, fsys, ".", true)
	if len(errs) > 0 {
		return TestReport{}, errors.Join(errs...)
	}
	cov := cover.New()
	compiler := ast.NewCompiler().WithCapabilities(capabilities()).WithEnablePrintStatements(false)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(inmem.NewFromObject(set.documents)).
		SetModules(set.modules).
		SetCoverageQueryTracer(cov).
		CapturePrintOutput(true).
		SetTimeout(10 * time.Second)
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return TestReport{}, fmt.Errorf("policy: running tests: %w", errors.Join(locate(err)...))
	}
	var rep TestReport
	for r := range ch {
		t := TestResult{Name: r.Package + "." + r.Name, Pass: r.Pass(), Duration: r.Duration}
		if r.Location != nil {
			t.File, t.Line = r.Location.File, r.Location.Row
		}
		if r.Error != nil {
			t.Error = r.Error.Error()
		}
		rep.Results = append(rep.Results, t)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("policy: running tests: %w", err)
	}
	slices.SortFunc(rep.Results, func(a, b TestResult) int {
		return cmpFileLine(a.File, a.Line, b.File, b.Line)
	})
	rep.Coverage, rep.Files = coverage(cov, set.modules)
	return rep, nil
}

// coverage reports the coverage of the non-test modules: per file, and
// overall as covered lines over coverable lines.
func coverage(cov *cover.Cover, modules map[string]*ast.Module) (float64, []FileCoverage) {
	report := cov.Report(modules)
	var files []FileCoverage
	covered, total := 0, 0
	for _, name := range sortedKeys(report.Files) {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		f := report.Files[name]
		fc := FileCoverage{File: name, Percent: f.Coverage}
		for _, r := range f.NotCovered {
			fc.NotCovered = append(fc.NotCovered, r.Start.Row)
		}
		covered += f.CoveredLines
		total += f.CoveredLines + f.NotCoveredLines
		files = append(files, fc)
	}
	if total == 0 {
		return 0, files
	}
	return 100 * float64(covered) / float64(total), files
}

func cmpFileLine(f1 string, l1 int, f2 string, l2 int) int {
	if c := strings.Compare(f1, f2); c != 0 {
		return c
	}
	return l1 - l2
}

// testsPass runs the tests of fsys and returns an error naming each failed
// test, or nil when they pass or there are none.
func testsPass(ctx context.Context, fsys fs.FS) error {
	rep, err := RunTests(ctx, fsys)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range rep.Results {
		if !t.Pass {
			msg := "test " + t.Name + " fails"
			if t.Error != "" {
				msg += ": " + t.Error
			}
			errs = append(errs, &Error{File: t.File, Line: t.Line, Message: msg})
		}
	}
	return errors.Join(errs...)
}
