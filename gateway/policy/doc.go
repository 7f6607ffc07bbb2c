// Package policy decides, with an OPA policy written by the security team,
// whether each action on the gateway may proceed.
//
// # Deciding
//
// [New] compiles a policy set once — the Rego files and the data of a
// directory or an [fs.FS] — and prepares its single query,
// data.lexgate.decision. [Engine.Decide] then answers one [Input] with a
// [Decision]:
//
//	eng, err := policy.New(ctx, policy.Config{FS: policies.FS})
//	...
//	d, err := eng.Decide(ctx, policy.Input{
//		Action:       "send",
//		Time:         now,
//		Source:       policy.PartyOf(sender),
//		Destinations: []policy.Party{policy.PartyOf(recipient)},
//		Bundle:       &policy.Bundle{Matter: "2026-0042", Labels: []string{"health"}},
//	})
//	if !d.Allow { // d.Reasons say why, in words for the user
//
// Before evaluating, the engine enriches the input: each party gets the
// [Organisation] the policy data records for its trust domain, a
// counterparty with its agreements with the source's organisation.
// [Engine.Enrich] shows the input exactly as the policy sees it. The
// library reads agreements from there, so the engine keeps
// data.data.agreements out of OPA's values (as JSON text, decoded only for
// a policy that reads it): thousands of agreements as OPA values would be
// hundreds of thousands of heap objects for every garbage collection to
// mark while decisions run.
//
// # Evaluators
//
// Config.Evaluator chooses how a decision is evaluated: by OPA's
// interpreter (topdown), or by the set compiled by OPA to WebAssembly and
// run in process by wazero ([EvaluatorWasm]), which takes less time. The
// default, [EvaluatorAuto], compiles to WebAssembly only a set whose Rego
// files are exactly the shipped library's (policies.FS), which the tests
// hold to the same decisions as the interpreter; a firm's own rules stay
// on the interpreter unless it opts in. Both fail closed alike: an error
// of a builtin the module leaves to its host, an abort or a trap is a
// refusal with [CodeError]. [Engine.Evaluator] says which is in use;
// hypothetical decisions ([Hypothetical]) and the Rego tests always use
// the interpreter.
//
// # Failing closed
//
// Everything not explicitly allowed is denied. A policy that gives no
// decision, or a malformed one, refuses with reason [CodeUndefined]. A
// policy that fails to evaluate or takes longer than Config.Timeout
// refuses with [CodeError] or [CodeTimeout], and Decide returns an error
// wrapping [ErrEvaluation]. A policy set that does not compile is refused
// by [New] and by [Engine.Reload], which keeps the last good one, with
// errors naming each file and line (see [Error]). [Check] reports the same
// problems without building an engine, for `lex policy check`.
//
// Policies decide on their input and data alone: builtins that reach the
// network (http.send, net.lookup_ip_addr), the host (opa.runtime), the
// clock (time.now_ns; use input.time) or randomness are not available,
// and a policy that calls them does not compile.
//
// # Deploying and reloading
//
// [Start] is [New] for a server: a set that does not compile still gives
// an engine, one that refuses every request until [Engine.Reload]
// succeeds. A set loaded from Config.Dir must also pass its own Rego tests
// (*_test.rego) unless Config.SkipTests; [Engine.Watch] reloads it when
// its files change. A rejected set is logged at Error level
// ("POLICY REJECTED") and the last good one keeps deciding.
//
// # Tools
//
// [Check] compiles a set and lists its problems with file and line;
// [RunTests] runs its Rego tests in-process, as opa test does, with
// coverage per file. They back `lex policy check` and `lex policy test`.
//
// # Logging
//
// Every decision is logged at Info level to Config.Logger with its id,
// action, source SPIFFE ID, outcome, reason codes and policy version.
// Bundle matters, labels, hashes and keys are never logged there. With
// Config.DecisionLog, every decision is also appended to that file (0600)
// as one JSON line in OPA's decision-log shape ([DecisionLogEntry]),
// enriched input included, for support and regulators.
//
// # Compatibility
//
// The input document is versioned ([InputVersion]); within a version,
// fields may be added but keep their meaning. policies/README.md documents
// the input, the decision and the data format for policy authors.
package policy
