package policy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// decisionLog appends entries to a file from its own goroutine, so that a
// decision does not wait for the encoding of its entry and the write: an
// allowed decision returns once its entry is queued. A refusal waits until
// its line is written, because the refused client is given the decision
// id to look up. Nothing queued is lost: close writes it all first. When
// the writer falls behind by queueSize entries, decisions wait for it.
type decisionLog struct {
	mu     sync.RWMutex // read-held while queueing, held by close
	closed bool
	queue  chan queuedEntry
	done   chan struct{} // closed when the writer has written everything
	f      *os.File
	log    *slog.Logger
	err    error // the file's close error, once done

	// Owned by the writer goroutine: rotation.
	path    string
	rotate  DecisionLogRotation
	size    int64     // bytes in f
	started time.Time // when f's first line was written (zero: empty)
	now     func() time.Time
}

// DecisionLogRotation says when the decision log is rotated: the file is
// renamed PATH.N (N one more than the highest number there, so a rotated
// file never changes name again) and a new PATH started. No line is lost or
// split: rotation happens between writes, in the writer. Rotated files are
// never deleted by the gateway; a SIEM forwarder reading PATH.1, PATH.2, …
// then PATH sees every line once, in order.
type DecisionLogRotation struct {
	// MaxSize rotates before a write would take the file past this many
	// bytes (default 64 MiB; negative: never by size).
	MaxSize int64 `yaml:"max_size"`
	// MaxAge rotates before a write once the file's first line is this old
	// (default 24h; negative: never by age).
	MaxAge time.Duration `yaml:"max_age"`
}

func (r DecisionLogRotation) withDefaults() DecisionLogRotation {
	if r.MaxSize == 0 {
		r.MaxSize = 64 << 20
	}
	if r.MaxAge == 0 {
		r.MaxAge = 24 * time.Hour
	}
	return r
}

// queuedEntry is one entry waiting to be written; written, when not nil,
// is closed once it is.
type queuedEntry struct {
	entry   DecisionLogEntry
	written chan struct{}
}

// queueSize is how many entries may wait for the writer.
const queueSize = 4096

// openDecisionLog opens path for appending, creating it 0600, and starts
// its writer, which reports write failures to log.
func openDecisionLog(path string, rot DecisionLogRotation, log *slog.Logger) (*decisionLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("policy: decision log: %w", err)
	}
	l := &decisionLog{queue: make(chan queuedEntry, queueSize), done: make(chan struct{}), log: log,
		path: path, rotate: rot.withDefaults(), now: time.Now}
	if err := l.open(); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// open opens (or creates) the active file and learns its size and age: the
// timestamp of its first line.
func (l *decisionLog) open() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("policy: decision log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("policy: decision log: %w", err)
	}
	l.f, l.size, l.started = f, st.Size(), time.Time{}
	if l.size > 0 {
		l.started = st.ModTime()
		var first struct {
			Timestamp time.Time `json:"timestamp"`
		}
		line, _ := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<16), 1<<16).ReadSlice('\n')
		if json.Unmarshal(line, &first) == nil && !first.Timestamp.IsZero() {
			l.started = first.Timestamp
		}
	}
	return nil
}

// due reports whether writing n more bytes calls for a rotation first.
func (l *decisionLog) due(n int) bool {
	if l.size == 0 {
		return false
	}
	if l.rotate.MaxSize > 0 && l.size+int64(n) > l.rotate.MaxSize {
		return true
	}
	return l.rotate.MaxAge > 0 && l.now().Sub(l.started) >= l.rotate.MaxAge
}

// rotateFile renames the active file PATH.N and starts a new one. On any
// failure the writer keeps appending to a file it has, never dropping lines.
func (l *decisionLog) rotateFile() {
	next, err := nextRotation(l.path)
	if err == nil {
		err = l.f.Sync()
	}
	if err == nil {
		err = os.Rename(l.path, next)
	}
	if err != nil {
		l.log.Error("decision log: rotation failed; still writing to the current file", slog.Any("error", err))
		l.started = l.now() // try again after another MaxAge, not at every write
		return
	}
	old := l.f
	if err := l.open(); err != nil {
		l.log.Error("decision log: new file not created after rotation; writing on in the rotated file",
			slog.String("file", next), slog.Any("error", err))
		l.f = old
		return
	}
	old.Close()
	syncDir(filepath.Dir(l.path))
}

// nextRotation is PATH.N for N one more than the highest rotated number.
func nextRotation(path string) (string, error) {
	matches, err := filepath.Glob(path + ".*")
	if err != nil {
		return "", err
	}
	high := 0
	for _, m := range matches {
		if n, err := strconv.Atoi(strings.TrimPrefix(m, path+".")); err == nil && n > high {
			high = n
		}
	}
	return fmt.Sprintf("%s.%d", path, high+1), nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// write queues the entry of one decision; for a refusal it returns once
// the entry is written. A write failure is logged, never returned: the
// decision stands.
func (l *decisionLog) write(ctx context.Context, in Input, d Decision, err error, at time.Time, took time.Duration) {
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
	q := queuedEntry{entry: e}
	if !d.Allow {
		q.written = make(chan struct{})
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return
	}
	l.queue <- q
	l.mu.RUnlock()
	if q.written != nil {
		<-q.written
	}
}

// run writes the queued entries, a batch at a time, until the queue is
// closed and drained; then it closes the file.
func (l *decisionLog) run() {
	defer close(l.done)
	var buf []byte
	var waiting []chan struct{}
	flush := func() {
		if len(buf) > 0 {
			if l.due(len(buf)) {
				l.rotateFile()
			}
			n, err := l.f.Write(buf)
			if err != nil {
				l.log.Error("decision log: write failed", slog.Int("bytes", len(buf)), slog.Any("error", err))
			}
			if l.size == 0 && n > 0 {
				l.started = l.now()
			}
			l.size += int64(n)
		}
		for _, w := range waiting {
			close(w)
		}
		buf, waiting = buf[:0], waiting[:0]
	}
	for q := range l.queue {
		b, err := json.Marshal(q.entry)
		if err != nil {
			l.log.Error("decision log: encoding failed", slog.String("decision_id", q.entry.DecisionID), slog.Any("error", err))
		} else {
			buf = append(append(buf, b...), '\n')
		}
		if q.written != nil {
			waiting = append(waiting, q.written)
		}
		if len(l.queue) == 0 || len(buf) >= 1<<16 {
			flush()
		}
	}
	flush()
	if err := l.f.Close(); err != nil {
		l.err = fmt.Errorf("policy: decision log: %w", err)
	}
}

// close writes every queued entry and closes the file. Entries of later
// decisions are dropped. It is idempotent.
func (l *decisionLog) close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
	return l.err
}
