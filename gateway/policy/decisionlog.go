package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DecisionLogEntry is one line of the decision log (Config.DecisionLog),
// in the shape of OPA's decision logs so that tools reading those read
// these: one JSON object per line.
type DecisionLogEntry struct {
	// DecisionID is the decision's id, the one a refused client is given.
	DecisionID string `json:"decision_id"`
	// Path is the decision's rule, "lexgate/decision".
	Path string `json:"path"`
	// Input is the input as the policy saw it (enriched).
	Input Input `json:"input"`
	// Result is the decision: allow, reasons, obligations.
	Result *DecisionResult `json:"result,omitempty"`
	// Error says why the policy could not decide; the request was refused.
	Error string `json:"error,omitempty"`
	// Timestamp is when the decision was asked for, RFC 3339 UTC.
	Timestamp time.Time `json:"timestamp"`
	// Bundles gives the revision (policy version) of the policy set.
	Bundles map[string]BundleRevision `json:"bundles"`
	// Labels identify the decision's origin: {"app": "lexgate"}.
	Labels map[string]string `json:"labels"`
	// Metrics time the decision: "timer_lexgate_decision_ns".
	Metrics map[string]int64 `json:"metrics"`
	// Hypothetical marks a decision asked for by `lex policy explain`: no
	// action was taken on it.
	Hypothetical bool `json:"hypothetical,omitempty"`
}

type hypotheticalKey struct{}

// Hypothetical marks the decisions made with ctx as answers to "what
// would the policy decide?": they are logged with "hypothetical": true, so
// nobody mistakes them for actions.
func Hypothetical(ctx context.Context) context.Context {
	return context.WithValue(ctx, hypotheticalKey{}, true)
}

func isHypothetical(ctx context.Context) bool {
	h, _ := ctx.Value(hypotheticalKey{}).(bool)
	return h
}

// DecisionResult is a decision as a decision-log result.
type DecisionResult struct {
	Allow       bool        `json:"allow"`
	Reasons     []Reason    `json:"reasons"`
	Obligations Obligations `json:"obligations"`
}

// BundleRevision is the revision of a policy set in a decision log.
type BundleRevision struct {
	Revision string `json:"revision"`
}

// decisionPath is Query in the decision-log form.
const decisionPath = "lexgate/decision"

// decisionLog appends entries to a file.
type decisionLog struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
}

// openDecisionLog opens path for appending, creating it 0600.
func openDecisionLog(path string) (*decisionLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("policy: decision log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("policy: decision log: %w", err)
	}
	return &decisionLog{f: f}, nil
}

// write appends the entry of one decision. A write failure is logged to
// log, never returned: the decision stands.
func (l *decisionLog) write(ctx context.Context, log *slog.Logger, in Input, d Decision, err error, at time.Time, took time.Duration) {
	e := DecisionLogEntry{
		DecisionID: d.ID,
		Path:       decisionPath,
		Input:      in,
		Timestamp:  at.UTC(),
		Bundles:    map[string]BundleRevision{"lexgate": {Revision: d.PolicyVersion}},
		Labels:     map[string]string{"app": "lexgate"},
		Metrics:    map[string]int64{"timer_lexgate_decision_ns": took.Nanoseconds()},

		Hypothetical: isHypothetical(ctx),
	}
	if err != nil {
		e.Error = err.Error()
	}
	e.Result = &DecisionResult{Allow: d.Allow, Reasons: d.Reasons, Obligations: d.Obligations}
	b, merr := json.Marshal(e)
	if merr != nil {
		log.ErrorContext(ctx, "decision log: encoding failed", slog.String("decision_id", d.ID), slog.Any("error", merr))
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if _, werr := l.f.Write(b); werr != nil {
		log.ErrorContext(ctx, "decision log: write failed", slog.String("decision_id", d.ID), slog.Any("error", werr))
	}
}

func (l *decisionLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("policy: decision log: %w", err)
	}
	return nil
}
