package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/lexgate/lexgate/policies"
)

// The evaluators of Config.Evaluator.
const (
	// EvaluatorAuto evaluates with WebAssembly when the policy set's Rego
	// modules are exactly the shipped library's (policies.FS, which the
	// tests hold to the same decisions as topdown), whatever its data
	// files, and with topdown otherwise.
	EvaluatorAuto = "auto"
	// EvaluatorWasm evaluates the policy set compiled by OPA to
	// WebAssembly, run in process by wazero. A set that cannot be compiled
	// to WebAssembly is rejected.
	EvaluatorWasm = "wasm"
	// EvaluatorTopdown evaluates with OPA's interpreter (topdown).
	EvaluatorTopdown = "topdown"
)

// wasmEntrypoint is Query as a WebAssembly entrypoint.
const wasmEntrypoint = "lexgate/decision"

// shippedRego reports whether modules (the raw Rego files of a set,
// tests excluded, named as loaded under root) are exactly the .rego files
// of the shipped library, tests excluded: the same names, the same bytes.
func shippedRego(root string, modules map[string][]byte) (bool, error) {
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		return false, err
	}
	names = slices.DeleteFunc(names, func(n string) bool { return strings.HasSuffix(n, "_test.rego") })
	if len(names) != len(modules) {
		return false, nil
	}
	rel := make(map[string][]byte, len(modules))
	for name, b := range modules {
		r := strings.TrimPrefix(path.Clean(strings.ReplaceAll(name, "\\", "/")), path.Clean(strings.ReplaceAll(root, "\\", "/"))+"/")
		rel[r] = b
	}
	for _, n := range names {
		want, err := fs.ReadFile(policies.FS, n)
		if err != nil {
			return false, err
		}
		if got, ok := rel[n]; !ok || !bytes.Equal(got, want) {
			return false, nil
		}
	}
	return true, nil
}

// wasmPolicy is a policy set compiled to WebAssembly, with its data
// documents as JSON, and a bounded pool of module instances that run it.
// A module instance runs one evaluation at a time; wasmPolicy is safe for
// concurrent use.
type wasmPolicy struct {
	binary     []byte // the module, its memory imported from "mem"
	memModule  []byte // the module exporting that memory
	data       []byte // the data documents, as JSON
	builtins   map[int32]topdown.BuiltinFunc
	builtinIDs map[string]int32
	entrypoint int32
	// checked compiles the module with wazero's termination checks
	// (WithCloseOnContextDone): an evaluation past its deadline is stopped
	// within a loop iteration. They cost a decision of the shipped library
	// several times its time, so they are left out for it (its loops run
	// over the input and the data, and end); a firm's own rules get them:
	// an unbounded evaluation would otherwise run on, and grow its memory,
	// after its decision was refused.
	checked bool
	// cache holds the module's compiled code, shared by the instances'
	// runtimes. It is not closed: an instance made by a decision that
	// started before a reload may still need it; wazero frees the code
	// when the cache is garbage.
	cache wazero.CompilationCache

	// idle holds the instances not evaluating; an evaluation takes one,
	// waiting for it within its deadline. At most max instances are made
	// (GOMAXPROCS: more could not run at once); when none is idle and
	// fewer than max are open, one more is made in the background, and the
	// evaluation takes whichever comes first, that one or one given back:
	// making one (parsing the data documents in its memory) takes far
	// longer than a decision when the data is large.
	idle    chan *wasmInstance
	max     int
	mu      sync.Mutex
	live    int           // instances made or being made, and not closed
	done    bool          // retired: instances are closed when given back
	retired chan struct{} // closed when done
	lastErr error         // why the last instance could not be made
}

// compileWasm compiles modules (the raw Rego files of a set, tests
// excluded) to WebAssembly for documents. It fails, naming the reason,
// when OPA cannot compile them to WebAssembly or the module needs a
// builtin that OPA does not have.
func compileWasm(ctx context.Context, modules map[string][]byte, documents map[string]any, checked bool) (*wasmPolicy, error) {
	b := &bundle.Bundle{Data: map[string]any{}}
	for _, name := range sortedKeys(modules) {
		m, err := ast.ParseModuleWithOpts(name, string(modules[name]), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, Raw: modules[name], Parsed: m})
	}
	c := compile.New().WithTarget(compile.TargetWasm).WithEntrypoints(wasmEntrypoint).WithBundle(b)
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("policy: compiling the policy set to WebAssembly: %w", err)
	}
	if len(c.Bundle().WasmModules) != 1 {
		return nil, fmt.Errorf("policy: compiling the policy set to WebAssembly gave %d modules, not 1", len(c.Bundle().WasmModules))
	}
	w := &wasmPolicy{cache: wazero.NewCompilationCache(), checked: checked}
	var err error
	if w.binary, w.memModule, err = importMemoryFromMem(c.Bundle().WasmModules[0].Raw); err != nil {
		return nil, err
	}
	if w.data, err = json.Marshal(documents); err != nil {
		return nil, fmt.Errorf("policy: the data documents as JSON: %w", err)
	}
	w.max = runtime.GOMAXPROCS(0)
	w.retired = make(chan struct{})
	w.idle = make(chan *wasmInstance, w.max)
	// The first instance reads the module's builtins and entrypoints (and
	// proves that the set instantiates, with its data).
	first, err := w.newInstance(ctx)
	if err != nil {
		return nil, err
	}
	w.idle <- first
	w.live = 1
	return w, nil
}

// importMemoryFromMem rewrites an OPA module, which imports its memory
// from "env" beside its host functions, to import it from a module of its
// own, "mem" (the same length: the binary keeps its layout), and returns
// that module too: wazero's host modules cannot export a memory.
func importMemoryFromMem(wasm []byte) ([]byte, []byte, error) {
	memImport := []byte("\x03env\x06memory\x02")
	i := bytes.Index(wasm, memImport)
	if i < 0 || i+len(memImport)+2 > len(wasm) {
		return nil, nil, errors.New("policy: the WebAssembly module does not import env.memory")
	}
	wasm = slices.Clone(wasm)
	copy(wasm[i+1:], "mem")
	flags, minPages := wasm[i+len(memImport)], wasm[i+len(memImport)+1]
	if flags != 0 || minPages >= 0x80 {
		return nil, nil, fmt.Errorf("policy: the WebAssembly module's memory limits (flags %d, minimum %d) are not those of OPA's modules", flags, minPages)
	}
	mem := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
		0x05, 0x03, 0x01, 0x00, minPages, // a memory of minPages pages, no maximum
		0x07, 0x0a, 0x01, 0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00} // exported as "memory"
	return wasm, mem, nil
}

// wasmMemoryLimitPages bounds the memory of an instance (64 KiB pages):
// 1 GiB. The module's allocator aborts the evaluation past it (a refusal),
// rather than the process running out of memory.
const wasmMemoryLimitPages = 1 << 14

// wasmInstance is one instance of the module, in a runtime of its own
// (its memory module is named "mem" there), with the data documents
// parsed in its memory. It runs one evaluation at a time.
type wasmInstance struct {
	w       *wasmPolicy
	r       wazero.Runtime
	mod     api.Module
	eval    api.Function
	malloc  api.Function
	parseFn api.Function
	dumpFn  api.Function
	data    uint32 // the data documents in the module's memory
	base    uint32 // the module's heap after the data: each evaluation starts there
}

// errBuiltin carries a builtin's error out of the module: the host
// function panics with it, wazero ends the call and returns it.
type errBuiltin struct{ err error }

func (e errBuiltin) Error() string { return e.err.Error() }
func (e errBuiltin) Unwrap() error { return e.err }

// newInstance makes an instance of the module with the data documents in
// its memory. The first one also reads the module's builtins and
// entrypoint into w.
func (w *wasmPolicy) newInstance(ctx context.Context) (_ *wasmInstance, err error) {
	cfg := wazero.NewRuntimeConfig().WithCompilationCache(w.cache).WithCloseOnContextDone(w.checked).
		WithMemoryLimitPages(wasmMemoryLimitPages)
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer func() {
		if err != nil {
			r.Close(ctx)
		}
	}()
	if _, err := r.InstantiateWithConfig(ctx, w.memModule, wazero.NewModuleConfig().WithName("mem")); err != nil {
		return nil, fmt.Errorf("policy: the WebAssembly memory: %w", err)
	}
	in := &wasmInstance{w: w, r: r}
	env := r.NewHostModuleBuilder("env")
	env.NewFunctionBuilder().WithFunc(func(_ context.Context, m api.Module, addr uint32) {
		panic(fmt.Errorf("policy: the WebAssembly policy aborted: %s", cstring(m.Memory(), addr)))
	}).Export("opa_abort")
	env.NewFunctionBuilder().WithFunc(func(context.Context, api.Module, uint32) {}).Export("opa_println")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _ uint32) uint32 {
		return in.builtin(ctx, id)
	}).Export("opa_builtin0")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a uint32) uint32 {
		return in.builtin(ctx, id, a)
	}).Export("opa_builtin1")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b uint32) uint32 {
		return in.builtin(ctx, id, a, b)
	}).Export("opa_builtin2")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b, c uint32) uint32 {
		return in.builtin(ctx, id, a, b, c)
	}).Export("opa_builtin3")
	env.NewFunctionBuilder().WithFunc(func(ctx context.Context, id, _, a, b, c, d uint32) uint32 {
		return in.builtin(ctx, id, a, b, c, d)
	}).Export("opa_builtin4")
	if _, err := env.Instantiate(ctx); err != nil {
		return nil, fmt.Errorf("policy: the WebAssembly host functions: %w", err)
	}
	if in.mod, err = r.InstantiateWithConfig(ctx, w.binary, wazero.NewModuleConfig().WithName("policy").WithStartFunctions()); err != nil {
		return nil, fmt.Errorf("policy: instantiating the WebAssembly policy: %w", err)
	}
	for _, f := range []struct {
		fn   *api.Function
		name string
	}{{&in.eval, "opa_eval"}, {&in.malloc, "opa_malloc"}, {&in.parseFn, "opa_json_parse"}, {&in.dumpFn, "opa_json_dump"}} {
		if *f.fn = in.mod.ExportedFunction(f.name); *f.fn == nil {
			return nil, fmt.Errorf("policy: the WebAssembly policy has no function %s (OPA's ABI 1.2)", f.name)
		}
	}
	if w.builtins == nil {
		if err := w.readModule(ctx, in); err != nil {
			return nil, err
		}
	}
	if in.data, err = in.parse(ctx, w.data); err != nil {
		return nil, fmt.Errorf("policy: the data documents in the WebAssembly policy: %w", err)
	}
	if in.base, err = in.call(ctx, "opa_heap_ptr_get"); err != nil {
		return nil, err
	}
	return in, nil
}

// readModule reads the builtins the module leaves to its host and the
// entrypoint of Query.
func (w *wasmPolicy) readModule(ctx context.Context, in *wasmInstance) error {
	var ids, entrypoints map[string]int32
	for _, x := range []struct {
		fn  string
		out *map[string]int32
	}{{"builtins", &ids}, {"entrypoints", &entrypoints}} {
		addr, err := in.call(ctx, x.fn)
		if err != nil {
			return err
		}
		b, err := in.dump(ctx, addr)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, x.out); err != nil {
			return fmt.Errorf("policy: the WebAssembly policy's %s: %w", x.fn, err)
		}
	}
	builtins := map[int32]topdown.BuiltinFunc{}
	for name, id := range ids {
		if builtins[id] = topdown.GetBuiltin(name); builtins[id] == nil {
			return fmt.Errorf("policy: the WebAssembly policy needs the builtin %s, which this OPA does not have", name)
		}
	}
	ep, ok := entrypoints[wasmEntrypoint]
	if !ok {
		return fmt.Errorf("policy: the WebAssembly policy has no entrypoint %s", wasmEntrypoint)
	}
	w.builtins, w.builtinIDs, w.entrypoint = builtins, ids, ep
	return nil
}

// decide evaluates the decision on input (the JSON of an enriched input)
// and returns the decision document as Go values (nil if undefined). On
// any error the instance is unusable (the caller closes it): a builtin's
// error, an abort, a trap, the end of ctx.
func (in *wasmInstance) decide(ctx context.Context, input []byte) (any, error) {
	mem := in.mod.Memory()
	end := in.base + uint32(len(input))
	if end > mem.Size() {
		if _, ok := mem.Grow((end-mem.Size())/65536 + 1); !ok {
			return nil, fmt.Errorf("policy: the WebAssembly memory cannot grow to %d bytes", end)
		}
	}
	if !mem.Write(in.base, input) {
		return nil, errors.New("policy: the input does not fit in the WebAssembly memory")
	}
	// opa_eval (ABI 1.2): the input at base, the evaluation's heap after it.
	res, err := in.eval.Call(ctx, 0, uint64(in.w.entrypoint), uint64(in.data),
		uint64(in.base), uint64(len(input)), uint64(end), 0)
	if err != nil {
		return nil, fmt.Errorf("policy: WebAssembly evaluation: %w", err)
	}
	var rs []struct {
		Result any `json:"result"`
	}
	if err := util.UnmarshalJSON(cstring(mem, uint32(res[0])), &rs); err != nil {
		return nil, fmt.Errorf("policy: the WebAssembly result: %w", err)
	}
	switch len(rs) {
	case 0:
		return nil, nil
	case 1:
		if rs[0].Result == nil {
			return nil, errors.New("policy: the WebAssembly result has no value")
		}
		return rs[0].Result, nil
	}
	return nil, fmt.Errorf("policy: the WebAssembly policy gave %d results", len(rs))
}

// builtin runs the builtin id that the module leaves to its host (such as
// sprintf and the time functions) with OPA's own implementation, its
// operands and its result passed as JSON. An error, of the builtin or of
// the bridge, ends the evaluation as topdown's strict builtin errors do:
// returning undefined instead would make a deny rule that calls it not
// fire.
func (in *wasmInstance) builtin(ctx context.Context, id uint32, args ...uint32) uint32 {
	fail := func(err error) {
		name := "?"
		for n, i := range in.w.builtinIDs {
			if i == int32(id) {
				name = n
			}
		}
		panic(errBuiltin{fmt.Errorf("policy: builtin %s: %w", name, err)})
	}
	f := in.w.builtins[int32(id)]
	if f == nil {
		fail(fmt.Errorf("unknown builtin %d", id))
	}
	ops := make([]*ast.Term, len(args))
	for i, a := range args {
		b, err := in.dump(ctx, a)
		if err != nil {
			fail(err)
		}
		v, err := ast.ValueFromReader(bytes.NewReader(b))
		if err != nil {
			fail(err)
		}
		ops[i] = ast.NewTerm(v)
	}
	var out *ast.Term
	err := f(topdown.BuiltinContext{Context: ctx}, ops, func(t *ast.Term) error {
		out = t
		return nil
	})
	if err != nil {
		fail(err)
	}
	if out == nil {
		return 0 // undefined, as in topdown
	}
	x, err := ast.JSON(out.Value)
	if err != nil {
		fail(err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		fail(err)
	}
	addr, err := in.parse(ctx, b)
	if err != nil {
		fail(err)
	}
	return addr
}

// call calls the module's function name, which returns one address.
func (in *wasmInstance) call(ctx context.Context, name string, args ...uint64) (uint32, error) {
	f := in.mod.ExportedFunction(name)
	if f == nil {
		return 0, fmt.Errorf("policy: the WebAssembly policy has no function %s", name)
	}
	r, err := f.Call(ctx, args...)
	if err != nil {
		return 0, fmt.Errorf("policy: WebAssembly %s: %w", name, err)
	}
	return uint32(r[0]), nil
}

// dump is the value at addr in the module's memory, as JSON.
func (in *wasmInstance) dump(ctx context.Context, addr uint32) ([]byte, error) {
	r, err := in.dumpFn.Call(ctx, uint64(addr))
	if err != nil {
		return nil, fmt.Errorf("policy: WebAssembly opa_json_dump: %w", err)
	}
	return cstring(in.mod.Memory(), uint32(r[0])), nil
}

// parse puts the JSON value b in the module's memory and returns its
// address.
func (in *wasmInstance) parse(ctx context.Context, b []byte) (uint32, error) {
	r, err := in.malloc.Call(ctx, uint64(len(b)))
	if err != nil {
		return 0, fmt.Errorf("policy: WebAssembly opa_malloc: %w", err)
	}
	addr := uint32(r[0])
	if !in.mod.Memory().Write(addr, b) {
		return 0, errors.New("policy: WebAssembly opa_malloc gave memory out of range")
	}
	if r, err = in.parseFn.Call(ctx, uint64(addr), uint64(len(b))); err != nil {
		return 0, fmt.Errorf("policy: WebAssembly opa_json_parse: %w", err)
	}
	if r[0] == 0 {
		return 0, errors.New("policy: WebAssembly opa_json_parse failed")
	}
	return uint32(r[0]), nil
}

// cstring is the NUL-terminated string at addr of mem (empty if out of
// range).
func cstring(mem api.Memory, addr uint32) []byte {
	if addr >= mem.Size() {
		return nil
	}
	b, _ := mem.Read(addr, mem.Size()-addr)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// close closes the instance's runtime, and its memory with it.
func (in *wasmInstance) close() { in.r.Close(context.Background()) }

// decide evaluates the decision on input with an instance of the pool
// (see idle). An instance whose evaluation failed is closed, never
// reused: its memory may be half-written. One that ended well is reused
// even past the deadline (the next evaluation resets its heap): closing
// it would have the pool make another, at a far greater cost, when
// decisions are already late.
//
// The evaluation runs on the caller's goroutine: handing it to another
// cost a decision some 40µs of CPU. Compiled with termination checks
// (checked), the module stops when ctx is done; without them (the
// shipped library, whose loops run over the input and the data), the
// evaluation runs to its end, and the engine refuses it if it ended past
// the deadline.
func (w *wasmPolicy) decide(ctx context.Context, input []byte) (v any, err error) {
	in, err := w.get(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("policy: WebAssembly evaluation panicked: %v", p)
		}
		w.put(in, err == nil)
	}()
	return in.decide(ctx, input)
}

// get takes an idle instance, waiting for one within ctx, and has one
// more made if none is idle and fewer than max are open.
func (w *wasmPolicy) get(ctx context.Context) (*wasmInstance, error) {
	select {
	case in := <-w.idle:
		return in, nil
	default:
	}
	w.mu.Lock()
	if w.live < w.max && !w.done {
		w.live++
		go w.grow()
	}
	lastErr := w.lastErr
	w.mu.Unlock()
	select {
	case in := <-w.idle:
		return in, nil
	case <-w.retired:
		// A decision that started before a reload: the pool makes no more
		// instances and closes those given back, so it gets one of its own.
		in, err := w.newInstance(ctx)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.live++
		w.mu.Unlock()
		return in, nil
	case <-ctx.Done():
		if lastErr != nil {
			return nil, fmt.Errorf("%w (no WebAssembly instance was free; the last could not be made: %w)", ctx.Err(), lastErr)
		}
		return nil, ctx.Err()
	}
}

// grow makes one more instance and puts it in the pool.
func (w *wasmPolicy) grow() {
	in, err := w.newInstance(context.Background())
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.live--
		w.lastErr = err
		return
	}
	if w.done {
		in.close()
		w.live--
		return
	}
	w.idle <- in // never blocks: at most max instances are open
}

// put gives an instance back to the pool if it is reusable and the pool
// still serves, and closes it otherwise.
func (w *wasmPolicy) put(in *wasmInstance, reusable bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if reusable && !w.done {
		w.idle <- in // never blocks: at most max instances are open
		return
	}
	in.close()
	w.live--
}

// retire closes the idle instances, and those in use when they come back:
// the set has been replaced.
func (w *wasmPolicy) retire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	close(w.retired)
	for {
		select {
		case in := <-w.idle:
			in.close()
			w.live--
		default:
			return
		}
	}
}

// instances is the number of instances open.
func (w *wasmPolicy) instances() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.live
}
