package policy

import (
	"context"
	"errors"
	"io/fs"
	"testing"

	"github.com/open-policy-agent/opa/v1/profiler"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Evaluations evaluates the decision on in as Decide does, under OPA's
// profiler, and returns the number of expressions it evaluated (the
// profiler's num_eval over every expression of the library). Unlike the
// time, it does not depend on the machine: BenchmarkDecide reports it so
// that two ways of writing a rule can be compared on a busy machine.
func (e *Engine) Evaluations(ctx context.Context, in Input) (int, error) {
	p := e.current.Load()
	if p == nil {
		return 0, errors.New("no policy loaded")
	}
	in = p.set.facts.enrich(in)
	prof := profiler.New()
	vc := getVirtualCache()
	defer vc.release()
	_, err := p.query.Eval(ctx, rego.EvalParsedInput(p.set.facts.valueOf(in)), rego.EvalMetrics(noMetrics),
		rego.EvalExternalCancel(topdown.NewCancel()), rego.EvalVirtualCache(vc), rego.EvalQueryTracer(prof))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range prof.ReportByFile().Files {
		for _, s := range f.Result {
			n += s.NumEval
		}
	}
	return n, nil
}

// FixtureWorld is fixtureWorld (the library with the contracts of its Rego
// unit tests) for the tests outside the package.
func FixtureWorld(t *testing.T) fs.FS { return fixtureWorld(t) }

// MatrixInputs are the inputs of TestDecisionMatrix, in the order of its
// golden file, for the tests outside the package.
func MatrixInputs() []Input { return matrixInputs() }

// WasmInstances is the number of WebAssembly module instances open for
// the policy set in use (0 on topdown).
func (e *Engine) WasmInstances() int {
	if p := e.current.Load(); p != nil && p.wasm != nil {
		return p.wasm.instances()
	}
	return 0
}

// WasmInstanceMemory makes one more WebAssembly module instance of the
// policy set in use, outside the pool, and returns the size of its linear
// memory (its data documents, parsed, and its heap) and a func that
// closes it.
func (e *Engine) WasmInstanceMemory(ctx context.Context) (uint32, func(), error) {
	p := e.current.Load()
	if p == nil || p.wasm == nil {
		return 0, nil, errors.New("no WebAssembly policy in use")
	}
	in, err := p.wasm.newInstance(ctx)
	if err != nil {
		return 0, nil, err
	}
	return in.mod.Memory().Size(), in.close, nil
}
