package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// Query is the one query the engine evaluates for every action.
const Query = "data.lexgate.decision"

// forbiddenBuiltins are the Rego builtins a lexgate policy may not call,
// and what they would reach. A policy decides on its input and data
// alone: no network, no host environment, no clock, no randomness.
var forbiddenBuiltins = map[string]string{
	"http.send":          "the network",
	"net.lookup_ip_addr": "the network (DNS)",
	"opa.runtime":        "the host environment",
	"time.now_ns":        "the host clock (use input.time)",
	"rand.intn":          "randomness",
	"uuid.rfc4122":       "randomness",
}

// capabilities are this OPA version's capabilities minus forbiddenBuiltins,
// with no network access.
func capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		_, bad := forbiddenBuiltins[b.Name]
		return bad
	})
	caps.AllowNet = []string{}
	return caps
}

// An Error is one problem in a policy set, located where possible.
type Error struct {
	// File is the file with the problem as it was loaded: a path in the
	// FS, or under Config.Dir. Empty when the problem is not in one file.
	File string
	// Line is the 1-based line of the problem in File; 0 if unknown.
	Line int
	// Message says what is wrong, starting with OPA's error code
	// (rego_parse_error, rego_type_error...) for Rego problems.
	Message string
}

// Error returns "policy: file:line: message".
func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("policy: %s:%d: %s", e.File, e.Line, e.Message)
	case e.File != "":
		return fmt.Sprintf("policy: %s: %s", e.File, e.Message)
	}
	return "policy: " + e.Message
}

// Check compiles the policy set in fsys with its data, tests included, the
// way the engine would, and returns the problems found, each an *[Error]:
// every parse error of every file, every data error, and the errors of the
// first compiler stage that fails.
// It also reports a set without the rule data.lexgate.decision. It returns
// nil when the set is fine.
func Check(ctx context.Context, fsys fs.FS) []error {
	set, errs := load(ctx, fsys, ".", true)
	if len(errs) > 0 {
		return errs
	}
	if !set.hasDecision {
		return []error{&Error{Message: "no rule " + Query + ": every action would be denied"}}
	}
	return nil
}

// policySet is a compiled policy set with its data.
type policySet struct {
	modules     map[string]*ast.Module // as parsed, for the test runner
	rego        map[string][]byte      // the Rego files as read, for the WebAssembly compiler
	compiler    *ast.Compiler
	documents   map[string]any
	facts       *facts
	version     string
	hasDecision bool
}

// load loads and compiles the policy set under root of fsys (of the host
// file system if fsys is nil). Test files are skipped unless withTests.
// It reports every problem it finds, not only the first.
func load(ctx context.Context, fsys fs.FS, root string, withTests bool) (*policySet, []error) {
	if err := ctx.Err(); err != nil {
		return nil, []error{fmt.Errorf("policy: loading: %w", err)}
	}
	keep := fileFilter(withTests)
	isRego := func(info fs.FileInfo) bool { return !info.IsDir() && path.Ext(info.Name()) == ".rego" }
	res, err := loader.NewFileLoader().WithFS(fsys).Filtered([]string{root}, func(p string, info fs.FileInfo, depth int) bool {
		return keep(p, info, depth) || isRego(info)
	})
	if err != nil {
		return nil, locate(err)
	}
	modules, raw, errs := parseModules(fsys, root, func(p string, info fs.FileInfo, depth int) bool {
		return keep(p, info, depth) || !info.IsDir() && !isRego(info)
	})
	compiler := ast.NewCompiler().
		WithCapabilities(capabilities()).
		WithEnablePrintStatements(false)
	compiler.Compile(modules)
	if compiler.Failed() {
		errs = append(errs, locate(compiler.Errors)...)
	}
	f, factErrs := parseFacts(res.Documents)
	errs = append(errs, placeDataErrors(fsys, root, factErrs)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return &policySet{
		modules:     modules,
		rego:        raw,
		compiler:    compiler,
		documents:   res.Documents,
		facts:       f,
		version:     version(root, raw, res.Documents),
		hasDecision: len(compiler.GetRulesExact(ast.MustParseRef(Query))) > 0,
	}, nil
}

// parseModules parses each Rego file under root on its own, so that one
// broken file does not hide the problems of the others.
func parseModules(fsys fs.FS, root string, filter loader.Filter) (map[string]*ast.Module, map[string][]byte, []error) {
	paths, err := loader.FilteredPathsFS(fsys, []string{root}, filter)
	if err != nil {
		return nil, nil, locate(err)
	}
	opts := ast.ParserOptions{RegoVersion: ast.RegoV1, Capabilities: capabilities(), ProcessAnnotation: true}
	modules, raw := map[string]*ast.Module{}, map[string][]byte{}
	var errs []error
	for _, p := range paths {
		var b []byte
		if fsys != nil {
			b, err = fs.ReadFile(fsys, p)
		} else {
			b, err = os.ReadFile(p)
		}
		if err != nil {
			errs = append(errs, &Error{File: p, Message: err.Error()})
			continue
		}
		m, err := ast.ParseModuleWithOpts(p, string(b), opts)
		if err != nil {
			errs = append(errs, locate(err)...)
			continue
		}
		modules[p], raw[p] = m, b
	}
	return modules, raw, errs
}

// fileFilter keeps Rego, JSON and YAML files and skips hidden files,
// directories named testdata and, unless withTests, *_test.rego files.
func fileFilter(withTests bool) loader.Filter {
	return func(p string, info fs.FileInfo, depth int) bool {
		name := info.Name()
		if depth > 0 && (strings.HasPrefix(name, ".") || info.IsDir() && name == "testdata") {
			return true
		}
		if info.IsDir() {
			return false
		}
		if strings.HasSuffix(name, "_test.rego") {
			return !withTests
		}
		switch path.Ext(name) {
		case ".rego", ".json", ".yaml", ".yml":
			return false
		}
		return true
	}
}

// locate turns loader and compiler errors into *Error values.
func locate(err error) []error {
	var out []error
	var add func(error)
	add = func(err error) {
		var le loader.Errors
		var ae ast.Errors
		var one *ast.Error
		switch {
		case errors.As(err, &le):
			for _, e := range le {
				add(e)
			}
		case errors.As(err, &ae):
			for _, e := range ae {
				add(e)
			}
		case errors.As(err, &one):
			out = append(out, fromAST(one))
		default:
			out = append(out, &Error{Message: err.Error()})
		}
	}
	add(err)
	return out
}

// fromAST converts one OPA error, explaining forbidden builtins.
func fromAST(e *ast.Error) *Error {
	out := &Error{Message: e.Code + ": " + e.Message}
	if e.Location != nil {
		out.File = e.Location.File
		out.Line = e.Location.Row
	}
	if name, ok := strings.CutPrefix(e.Message, "undefined function "); ok {
		if what, bad := forbiddenBuiltins[name]; bad {
			out.Message = fmt.Sprintf("%s: builtin %s is not allowed in lexgate policies: it reaches %s", e.Code, name, what)
		}
	}
	return out
}

// version hashes the modules and data of a policy set. Modules are named
// relative to root, so the same files give the same version wherever they
// are loaded from: the gateway's policy.dir (an absolute path), lex policy
// explain --local (a directory FS) or the embedded defaults.
func version(root string, raw map[string][]byte, documents map[string]any) string {
	rel := make(map[string][]byte, len(raw))
	for name, b := range raw {
		r, err := filepath.Rel(root, name)
		if err != nil {
			r = name
		}
		rel[filepath.ToSlash(r)] = b
	}
	h := sha256.New()
	for _, name := range sortedKeys(rel) {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(rel[name]))
		h.Write(rel[name])
	}
	data, _ := json.Marshal(documents) // map keys are sorted
	h.Write(data)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}
