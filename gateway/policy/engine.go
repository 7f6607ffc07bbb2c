package policy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// DefaultTimeout is the time a decision may take when Config.Timeout is zero.
const DefaultTimeout = 500 * time.Millisecond

// ErrEvaluation is returned, wrapped, when a policy could not be evaluated
// (an error in the policy, a timeout, a cancelled context). The decision
// returned with it is always a refusal.
var ErrEvaluation = errors.New("policy: evaluation failed")

// Config configures an [Engine]. Its zero value is not usable: set Dir or FS.
type Config struct {
	// Dir is a directory of .rego files and data files (.json, .yaml).
	// When empty, FS is used.
	Dir string `yaml:"dir"`

	// FS holds the policy set when Dir is empty, such as policies.FS.
	FS fs.FS `yaml:"-"`

	// Timeout bounds each decision; DefaultTimeout if zero. A decision that
	// takes longer is a refusal and an ErrEvaluation.
	Timeout time.Duration `yaml:"timeout"`

	// Logger receives one Info record per decision; slog.Default() if nil.
	Logger *slog.Logger `yaml:"-"`

	// DecisionLog is a file that receives every decision as one JSON line
	// in OPA's decision-log shape (see [DecisionLogEntry]), created 0600
	// and appended to. Empty: no decision log file.
	DecisionLog string `yaml:"decision_log"`
	// DecisionLogRotate rotates the decision log by size and age.
	DecisionLogRotate DecisionLogRotation `yaml:"decision_log_rotate"`

	// SkipTests turns off running the set's Rego tests (*_test.rego)
	// before a policy set from Dir is accepted, at start and on reload.
	// A set whose tests fail is rejected like one that does not compile.
	// Sets from FS (the embedded defaults) are tested at build time and
	// never at load.
	SkipTests bool `yaml:"skip_tests"`

	// Evaluator is how decisions are evaluated: EvaluatorAuto (the
	// default when empty), EvaluatorWasm or EvaluatorTopdown. Explanations
	// (hypothetical decisions), traces and the Rego tests always use
	// topdown.
	Evaluator string `yaml:"evaluator"`

	// WatchInterval is how often [Engine.Watch] looks for changed files
	// in Dir; DefaultWatchInterval if zero, never if negative.
	WatchInterval time.Duration `yaml:"watch_interval"`
}

// check validates c and applies its defaults.
func (c Config) check() (Config, error) {
	if c.Dir == "" && c.FS == nil {
		return c, errors.New("policy: no policy set: set Dir or FS")
	}
	if c.Timeout < 0 {
		return c, fmt.Errorf("policy: timeout %v is negative", c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch c.Evaluator {
	case "":
		c.Evaluator = EvaluatorAuto
	case EvaluatorAuto, EvaluatorWasm, EvaluatorTopdown:
	default:
		return c, fmt.Errorf("policy: evaluator %q is not one of %s, %s, %s", c.Evaluator, EvaluatorAuto, EvaluatorWasm, EvaluatorTopdown)
	}
	if c.WatchInterval == 0 {
		c.WatchInterval = DefaultWatchInterval
	}
	return c, nil
}

// Engine decides on inputs with a compiled policy set. It is safe for
// concurrent use, including Reload during Decide.
type Engine struct {
	cfg      Config
	reloadMu sync.Mutex
	current  atomic.Pointer[prepared]
	dlog     *decisionLog // nil without Config.DecisionLog
	// seen is the fingerprint of Config.Dir taken before the last load
	// attempt, good or rejected; Watch reloads when the files differ.
	seen atomic.Pointer[string]
}

// prepared is a policy set ready to evaluate.
type prepared struct {
	set   *policySet
	query rego.PreparedEvalQuery
	store *dataStore
	// wasm evaluates the decisions when not nil (EvaluatorWasm, or
	// EvaluatorAuto on the shipped rules); query does otherwise, and
	// always for hypothetical decisions.
	wasm *wasmPolicy
}

// evaluator names the evaluator of p's decisions.
func (p *prepared) evaluator() string {
	if p.wasm != nil {
		return EvaluatorWasm
	}
	return EvaluatorTopdown
}

// New compiles the policy set of cfg and prepares its query. A policy set
// that does not compile is an error listing each problem as an *[Error]
// with its file and line; so is one that calls a forbidden builtin such as
// http.send.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	e, err := Start(ctx, cfg)
	if err != nil {
		if e != nil {
			e.Close()
		}
		return nil, err
	}
	return e, nil
}

// Start is like [New], except that a policy set that does not compile, or
// whose tests fail, still gives an engine: one that refuses every request
// (with reason [CodeError]) until a [Engine.Reload] succeeds. The error
// says why no policy is in force; it is nil when one is. Start returns a
// nil engine only for a bad Config or an unusable decision log.
func Start(ctx context.Context, cfg Config) (*Engine, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg}
	if cfg.DecisionLog != "" {
		if e.dlog, err = openDecisionLog(cfg.DecisionLog, cfg.DecisionLogRotate, cfg.Logger); err != nil {
			return nil, err
		}
	}
	p, err := e.prepare(ctx)
	if err != nil {
		e.cfg.Logger.ErrorContext(ctx, "POLICY REJECTED at start: no policy is in force, every request will be refused until a valid policy set is loaded",
			slog.Any("error", err))
		return e, err
	}
	e.current.Store(p)
	e.cfg.Logger.InfoContext(ctx, "policy loaded", slog.String("policy_version", p.set.version), slog.String("evaluator", p.evaluator()))
	return e, nil
}

// Close closes the decision log and the WebAssembly instances. Decisions
// made after Close are still logged through Config.Logger (and, on
// WebAssembly, each makes an instance of its own). It is idempotent.
func (e *Engine) Close() error {
	if p := e.current.Load(); p != nil && p.wasm != nil {
		p.wasm.retire()
	}
	if e.dlog == nil {
		return nil
	}
	return e.dlog.close()
}

// Reload compiles the policy set again, from Dir or FS. If it does not
// compile, the engine keeps deciding with the last good one and Reload
// returns the problems.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	p, err := e.prepare(ctx)
	if err != nil {
		msg := "POLICY REJECTED: the new policy set does not compile or fails its tests; the last good policy keeps serving"
		if e.current.Load() == nil {
			msg = "POLICY REJECTED: the new policy set does not compile or fails its tests; no policy is in force, every request is refused"
		}
		e.cfg.Logger.ErrorContext(ctx, msg, slog.String("policy_version", e.Version()), slog.Any("error", err))
		return err
	}
	if old := e.current.Swap(p); old != nil && old.wasm != nil {
		old.wasm.retire()
	}
	e.cfg.Logger.InfoContext(ctx, "policy reloaded", slog.String("policy_version", p.set.version), slog.String("evaluator", p.evaluator()))
	return nil
}

// Evaluator names the evaluator of the policy set in use: EvaluatorWasm
// or EvaluatorTopdown ("" when none is loaded). With EvaluatorAuto it says
// which was chosen.
func (e *Engine) Evaluator() string {
	if p := e.current.Load(); p != nil {
		return p.evaluator()
	}
	return ""
}

// Version returns the PolicyVersion of the policy set in use.
func (e *Engine) Version() string {
	if p := e.current.Load(); p != nil {
		return p.set.version
	}
	return ""
}

// prepare loads, compiles and prepares the configured policy set.
func (e *Engine) prepare(ctx context.Context) (*prepared, error) {
	fsys, root := e.cfg.FS, "."
	if e.cfg.Dir != "" {
		fsys, root = nil, e.cfg.Dir
		fp := fingerprint(e.cfg.Dir) // before reading: a change while loading is seen next time
		e.seen.Store(&fp)
	}
	set, errs := load(ctx, fsys, root, false)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if e.cfg.Dir != "" && !e.cfg.SkipTests {
		if err := testsPass(ctx, os.DirFS(e.cfg.Dir)); err != nil {
			return nil, err
		}
	}
	if !set.hasDecision {
		e.cfg.Logger.WarnContext(ctx, "policy has no rule "+Query+": every action will be denied")
	}
	var strs *terms
	if set.facts != nil && set.facts.values != nil {
		strs = set.facts.values.strings
	}
	store, err := newDataStore(set.documents, strs)
	if err != nil {
		return nil, err
	}
	wasm, err := e.compileFor(ctx, root, set)
	if err != nil {
		return nil, err
	}
	// The engine needs neither the documents as loaded nor the modules as
	// parsed (the store and the compiler hold them): every object kept
	// alive is marked by each garbage collection while decisions run.
	set.documents, set.modules, set.rego = nil, nil, nil
	q, err := rego.New(
		rego.Query(Query),
		rego.Compiler(set.compiler),
		rego.Store(store),
		rego.StrictBuiltinErrors(true),
		rego.GenerateJSON(keepAST),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, errors.Join(locate(err)...)
	}
	return &prepared{set: set, query: q, store: store, wasm: wasm}, nil
}

// compileFor compiles set to WebAssembly when its evaluator is to be
// Wasm: always for EvaluatorWasm (an error if it cannot be), for
// EvaluatorAuto when its Rego modules are the shipped library's (topdown,
// with a warning, if they cannot be). It returns nil for topdown.
func (e *Engine) compileFor(ctx context.Context, root string, set *policySet) (*wasmPolicy, error) {
	if e.cfg.Evaluator == EvaluatorTopdown {
		return nil, nil
	}
	shipped, err := shippedRego(root, set.rego)
	if err != nil {
		return nil, err
	}
	if e.cfg.Evaluator == EvaluatorWasm {
		w, err := compileWasm(ctx, set.rego, set.documents, !shipped)
		if err != nil {
			return nil, fmt.Errorf("%w (policy.evaluator is %q: set it to %q or %q to evaluate this set with OPA's interpreter)",
				err, EvaluatorWasm, EvaluatorAuto, EvaluatorTopdown)
		}
		return w, nil
	}
	if !shipped {
		return nil, nil
	}
	w, err := compileWasm(ctx, set.rego, set.documents, false)
	if err != nil {
		e.cfg.Logger.WarnContext(ctx, "the shipped policy library could not be compiled to WebAssembly: decisions are evaluated by OPA's interpreter",
			slog.Any("error", err))
		return nil, nil
	}
	return w, nil
}

// Enrich returns in as the policy sees it: Version defaulted, TrustDomain
// and Path derived from ID, and each party's Organisation filled from the
// policy data.
func (e *Engine) Enrich(in Input) Input {
	if p := e.current.Load(); p != nil {
		return p.set.facts.enrich(in)
	}
	return in
}

// Decide evaluates data.lexgate.decision on in, enriched as by Enrich.
// It never allows on failure: an undefined or malformed result is a
// refusal with reason CodeUndefined; an evaluation error or timeout is a
// refusal with reason CodeError or CodeTimeout and an error wrapping
// ErrEvaluation. Every decision is logged.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	start := time.Now()
	d := Decision{ID: rand.Text()}
	var err error
	if p := e.current.Load(); p == nil {
		err = errors.New("no policy loaded")
	} else {
		d.PolicyVersion = p.set.version
		in = p.set.facts.enrich(in)
		err = e.evaluate(ctx, p, in, &d)
	}
	if err != nil {
		d.Allow = false
		d.Obligations = Obligations{}
		r := Reason{Code: CodeError, Message: "the policy could not decide, so the request is refused; ask your security team"}
		if errors.Is(err, context.DeadlineExceeded) {
			r = Reason{Code: CodeTimeout, Message: "the policy did not decide in time, so the request is refused; try again"}
		}
		d.Reasons = []Reason{r}
		err = fmt.Errorf("%w: decision %s: %w", ErrEvaluation, d.ID, err)
	}
	e.log(ctx, in, d, err, time.Since(start))
	if e.dlog != nil {
		e.dlog.write(ctx, in, d, err, start, time.Since(start))
	}
	return d, err
}

// evaluate runs the query and fills d from its result.
func (e *Engine) evaluate(ctx context.Context, p *prepared, in Input, d *Decision) error {
	if p.wasm != nil && !isHypothetical(ctx) {
		return e.evaluateWasm(ctx, p, in, d)
	}
	input := p.set.facts.valueOf(in)
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return err
	}
	// OPA stops an evaluation when its Cancel is set. Left to itself, Eval
	// starts a goroutine per query to watch ctx, and waking a thread for it
	// cost each decision about 30µs of CPU (futex calls, 6% of a decision's
	// profile); context.AfterFunc only runs when ctx is done.
	c := topdown.NewCancel()
	stop := context.AfterFunc(ctx, c.Cancel)
	defer stop()
	vc := getVirtualCache()
	defer vc.release()
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(input), rego.EvalMetrics(noMetrics), rego.EvalExternalCancel(c), rego.EvalVirtualCache(vc))
	if ctxErr := late(ctx); ctxErr != nil {
		// Too late is a refusal, even if the policy answered.
		if err != nil {
			return fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return ctxErr
	}
	if err != nil {
		return err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		*d = undefined(*d, "the policy gave no decision")
		return nil
	}
	fillDecision(d, rs[0].Expressions[0].Value)
	return nil
}

// evaluateWasm evaluates the decision with p's WebAssembly module, and
// fills d from its result. The module reads the input as JSON: the JSON
// of the enriched input is the value topdown gets (TestInputValueIsItsJSON).
func (e *Engine) evaluateWasm(ctx context.Context, p *prepared, in Input, d *Decision) error {
	input, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("the input as JSON: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return err
	}
	res, err := p.wasm.decide(ctx, input)
	if ctxErr := late(ctx); ctxErr != nil {
		// Too late is a refusal, even if the policy answered.
		if err != nil && !errors.Is(err, ctxErr) {
			return fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return ctxErr
	}
	if err != nil {
		return err
	}
	if res == nil {
		*d = undefined(*d, "the policy gave no decision")
		return nil
	}
	fillDecision(d, res)
	return nil
}

// fillDecision sets d from the decision document v (see parseResult): refused
// with CodeUndefined if v is malformed.
func fillDecision(d *Decision, v any) {
	res, err := parseResult(v)
	if err != nil {
		*d = undefined(*d, "the policy gave a malformed decision: "+err.Error())
		return
	}
	d.Allow, d.Reasons, d.Obligations, d.Notes = res.Allow, res.Reasons, res.Obligations, res.Notes
}

// late is ctx's error, or DeadlineExceeded when its deadline has passed
// though its timer has not fired yet (on a busy machine it fires late).
func late(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// noMetrics spares each evaluation OPA's timers and their map: nothing
// reads them.
var noMetrics = metrics.NoOp()

// undefined is d refused with reason CodeUndefined.
func undefined(d Decision, why string) Decision {
	d.Allow = false
	d.Reasons = []Reason{{Code: CodeUndefined, Message: why + ", so the request is refused"}}
	d.Obligations = Obligations{}
	return d
}

// log writes one Info record for a decision. It names the parties and
// the outcome, never bundle contents or keys.
func (e *Engine) log(ctx context.Context, in Input, d Decision, err error, took time.Duration) {
	if !e.cfg.Logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("decision_id", d.ID),
		slog.String("action", in.Action),
		slog.String("source", in.Source.ID),
		slog.Int("destinations", len(in.Destinations)),
		slog.Bool("allow", d.Allow),
		slog.Any("reasons", d.Codes()),
		slog.String("policy_version", d.PolicyVersion),
		slog.Duration("took", took),
	}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	if isHypothetical(ctx) {
		attrs = append(attrs, slog.Bool("hypothetical", true))
	}
	e.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "policy decision", attrs...)
}
