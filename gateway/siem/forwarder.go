package siem

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxBatch is how many records go in one send.
const maxBatch = 256

// Deps are what a Forwarder runs on.
type Deps struct {
	// DecisionLog is the decision log's path (policy.Config.DecisionLog).
	DecisionLog string
	// Audit, when not nil, is the audit log, whose entries are forwarded too.
	Audit AuditSource
	// Log receives the forwarder's own troubles; slog.Default() if nil.
	Log *slog.Logger
	// Shared, when not nil, is the cluster's: the audit log is one for
	// every replica, so its entries are forwarded by one replica at a time
	// (the holder of Shared's lock) from a cursor kept in Shared; each
	// replica still forwards its own decision log. nil: one gateway, the
	// audit cursor in the cursor file.
	Shared SharedCursor
}

// SharedCursor is the audit forwarding cursor of a cluster of replicas
// sharing one audit log and one store, and the lock that elects the one
// replica that forwards it.
type SharedCursor interface {
	// Lock blocks until this replica holds the forwarding lock or ctx
	// ends; the lock is released by unlock, or when the replica dies.
	Lock(ctx context.Context) (unlock func(), err error)
	// Load returns the index of the next audit entry to forward.
	Load(ctx context.Context) (uint64, error)
	// Save records that the entries before next were forwarded.
	Save(ctx context.Context, next uint64) error
}

// AuditSource gives the audit log's entries from an index on, up to its
// latest checkpoint, in order.
type AuditSource interface {
	Entries(ctx context.Context, from uint64, fn func(index uint64, entry []byte) error) error
}

// Forwarder ships the decision log and the audit log to syslog and/or
// OTLP receivers. Start it with
// [Forwarder.Run]; it stops when the context is done.
type Forwarder struct {
	cfg    Config
	path   string
	audit  AuditSource
	log    *slog.Logger
	sinks  []sink
	cursor cursor

	shared     SharedCursor // nil: the audit cursor is in cursor
	auditSinks []sink       // with shared: the audit forwarder's own connections
}

// cursor is how far forwarding got: the file (by inode, which a rename
// keeps) and the offset after the last line sent.
type cursor struct {
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
	// AuditNext is the index of the next audit log entry to send.
	AuditNext uint64 `json:"audit_next"`
}

// New checks cfg and builds a forwarder.
func New(cfg Config, deps Deps) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DecisionLog == "" {
		return nil, errors.New("siem: forwarding needs the decision log: set policy.decision_log (it is off)")
	}
	if cfg.Cursor == "" {
		return nil, errors.New("siem: cursor: no file given")
	}
	cfg = cfg.withDefaults()
	f := &Forwarder{cfg: cfg, path: deps.DecisionLog, audit: deps.Audit, log: deps.Log}
	if f.log == nil {
		f.log = slog.Default()
	}
	var err error
	if f.sinks, err = newSinks(cfg); err != nil {
		return nil, err
	}
	if deps.Shared != nil && deps.Audit != nil {
		f.shared = deps.Shared
		if f.auditSinks, err = newSinks(cfg); err != nil {
			return nil, err
		}
	}
	if err := f.loadCursor(); err != nil {
		return nil, err
	}
	return f, nil
}

// newSinks makes the receivers cfg names.
func newSinks(cfg Config) ([]sink, error) {
	var sinks []sink
	host := cfg.Syslog.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	if a := cfg.Syslog.Addr; a != "" {
		name, _, _ := net.SplitHostPort(a)
		if cfg.Syslog.ServerName != "" {
			name = cfg.Syslog.ServerName
		}
		tc, err := loadTLS(cfg.Syslog.CAFile, cfg.Syslog.CertFile, cfg.Syslog.KeyFile, name)
		if err != nil {
			return nil, fmt.Errorf("siem: syslog: %w", err)
		}
		sinks = append(sinks, &syslogSink{addr: a, tls: tc, facility: cfg.Syslog.Facility, host: host})
	}
	if cfg.OTLP.Endpoint != "" {
		o, err := newOTLPSink(cfg.OTLP, host)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, o)
	}
	return sinks, nil
}

func (f *Forwarder) loadCursor() error {
	b, err := os.ReadFile(f.cfg.Cursor)
	if errors.Is(err, os.ErrNotExist) {
		return nil // from the oldest file's first line
	}
	if err != nil {
		return fmt.Errorf("siem: cursor: %w", err)
	}
	if err := json.Unmarshal(b, &f.cursor); err != nil {
		return fmt.Errorf("siem: cursor %s is damaged (%v): delete it to forward from the oldest decision log file", f.cfg.Cursor, err)
	}
	return nil
}

// saveCursor writes the cursor durably: a temporary file, fsync, rename.
func (f *Forwarder) saveCursor() error {
	b, _ := json.Marshal(f.cursor)
	tmp := f.cfg.Cursor + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("siem: cursor: %w", err)
	}
	_, err = fh.Write(b)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.cfg.Cursor)
	}
	if err != nil {
		return fmt.Errorf("siem: cursor: %w", err)
	}
	return nil
}

// files lists the decision log's files oldest first: PATH.1, PATH.2, …,
// then PATH.
func (f *Forwarder) files() []string {
	matches, _ := filepath.Glob(f.path + ".*")
	type numbered struct {
		n    int
		name string
	}
	var ns []numbered
	for _, m := range matches {
		if n, err := strconv.Atoi(strings.TrimPrefix(m, f.path+".")); err == nil {
			ns = append(ns, numbered{n, m})
		}
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].n < ns[j].n })
	out := make([]string, 0, len(ns)+1)
	for _, n := range ns {
		out = append(out, n.name)
	}
	return append(out, f.path)
}

func inode(path string) (uint64, bool) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return sys.Ino, true
}

// position finds the file the cursor is in and its index in files; a
// cursor whose file is gone restarts at the oldest file.
func (f *Forwarder) position(files []string) int {
	for i, p := range files {
		if ino, ok := inode(p); ok && ino == f.cursor.Inode {
			return i
		}
	}
	if f.cursor.Inode != 0 {
		f.log.Warn("siem: the decision log file the cursor points into is gone; forwarding from the oldest file",
			"cursor", f.cfg.Cursor)
	}
	ino, _ := inode(files[0])
	f.cursor = cursor{Inode: ino, AuditNext: f.cursor.AuditNext}
	return 0
}

// Run forwards until ctx is done, reconnecting with backoff when a
// receiver is away.
func (f *Forwarder) Run(ctx context.Context) {
	if f.shared != nil {
		done := make(chan struct{})
		go func() { defer close(done); f.runShared(ctx) }()
		defer func() { <-done }()
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := f.forward(ctx)
		if ctx.Err() != nil {
			break
		}
		f.log.Warn("siem: forwarding interrupted; trying again", "err", err, "in", backoff)
		f.closeSinks()
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	f.drain()
	f.closeSinks()
}

func (f *Forwarder) closeSinks() { closeSinks(f.sinks) }

func closeSinks(sinks []sink) {
	for _, s := range sinks {
		s.close()
	}
}

// deliver sends a batch to every sink.
func (f *Forwarder) deliver(ctx context.Context, rs []record) error { return deliver(ctx, f.sinks, rs) }

// A batch once started is not abandoned when ctx ends (a shutdown): the
// receiver may already hold it, and a batch cut off in flight is sent again
// from the cursor, so the SIEM would get it twice. It has drainGrace to finish.
func deliver(ctx context.Context, sinks []sink, rs []record) error {
	if len(rs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainGrace)
	defer cancel()
	for _, s := range sinks {
		if err := s.send(ctx, rs); err != nil {
			return err
		}
	}
	return nil
}

// forward sends from the cursor on, following the log through rotations,
// until an error or ctx is done.
func (f *Forwarder) forward(ctx context.Context) error {
	for ctx.Err() == nil {
		more, err := f.step(ctx)
		if err != nil {
			return err
		}
		if !more {
			f.idle(ctx)
		}
	}
	return nil
}

// step sends what is new in the decision log file the cursor is in, and
// the new audit entries. more reports that it moved on to the next file
// (call again at once).
func (f *Forwarder) step(ctx context.Context) (more bool, err error) {
	files := f.files()
	i := f.position(files)
	done, err := f.sendFile(ctx, files[i])
	if err != nil {
		return false, err
	}
	if done && i+1 < len(files) {
		// The file was rotated and sent to its end: on to the next one,
		// once it exists (the writer creates it just after the rename).
		if ino, ok := inode(files[i+1]); ok {
			f.cursor.Inode, f.cursor.Offset = ino, 0
			return true, f.saveCursor()
		}
	}
	return false, f.sendAudit(ctx)
}

// drainGrace bounds the last pass at shutdown.
const drainGrace = 5 * time.Second

// drain sends what the logs hold now, once, within drainGrace: the
// decisions made before a shutdown reach the SIEM before the gateway stops.
func (f *Forwarder) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), drainGrace)
	defer cancel()
	for {
		more, err := f.step(ctx)
		if err != nil {
			f.log.Warn("siem: not everything was sent before shutdown; it will be after the restart", "err", err)
			return
		}
		if !more {
			return
		}
	}
}

// sendAudit sends the audit entries after the cursor, in batches. With a
// shared cursor the audit log is the cluster forwarder's (runShared).
func (f *Forwarder) sendAudit(ctx context.Context) error {
	if f.audit == nil || f.shared != nil {
		return nil
	}
	return f.sendAuditFrom(ctx, f.sinks, f.cursor.AuditNext, func(next uint64) error {
		f.cursor.AuditNext = next
		return f.saveCursor()
	})
}

// sendAuditFrom sends the audit entries from index from to sinks, in
// batches, calling save with the next index after each batch delivered.
// An entry is saved only after it was delivered: a crash in between sends
// it again (at least once; receivers deduplicate by audit_index).
func (f *Forwarder) sendAuditFrom(ctx context.Context, sinks []sink, from uint64, save func(next uint64) error) error {
	var batch []record
	next, saved := from, from
	flush := func() error {
		if err := deliver(ctx, sinks, batch); err != nil {
			return err
		}
		batch = batch[:0]
		if next == saved {
			return nil
		}
		if err := save(next); err != nil {
			return err
		}
		saved = next
		return nil
	}
	err := f.audit.Entries(ctx, from, func(index uint64, entry []byte) error {
		r, err := parseAudit(index, entry)
		if err != nil {
			f.log.Error("siem: audit entry skipped", "index", index, "err", err)
		} else {
			batch = append(batch, r)
		}
		next = index + 1
		if len(batch) >= maxBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// runShared forwards the cluster's audit log while this replica holds the
// shared lock: it waits for the lock (another replica's forwarder may hold
// it; this one takes over when that replica stops or dies), then sends from
// the shared cursor every poll interval until ctx ends, and a last pass
// within drainGrace.
func (f *Forwarder) runShared(ctx context.Context) {
	defer closeSinks(f.auditSinks)
	backoff := 100 * time.Millisecond
	var unlock func()
	for unlock == nil {
		var err error
		if unlock, err = f.shared.Lock(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			f.log.Error("siem: the audit forwarding lock was not taken; trying again", "err", err, "in", backoff)
			if !wait(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 10*time.Second)
		}
	}
	defer unlock()
	f.log.Info("siem: this replica forwards the cluster's audit log")
	pass := func(ctx context.Context) error {
		from, err := f.shared.Load(ctx)
		if err != nil {
			return err
		}
		return f.sendAuditFrom(ctx, f.auditSinks, from, func(next uint64) error { return f.shared.Save(ctx, next) })
	}
	backoff = 100 * time.Millisecond
	for ctx.Err() == nil {
		if err := pass(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			f.log.Warn("siem: audit forwarding interrupted; trying again", "err", err, "in", backoff)
			closeSinks(f.auditSinks)
			wait(ctx, backoff)
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		f.idle(ctx)
	}
	dctx, cancel := context.WithTimeout(context.Background(), drainGrace)
	defer cancel()
	if err := pass(dctx); err != nil {
		f.log.Warn("siem: not every audit entry was sent before shutdown; the next forwarder sends it", "err", err)
	}
}

// wait waits d or until ctx ends, and reports whether ctx is still live.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// idle waits a poll interval.
func (f *Forwarder) idle(ctx context.Context) {
	t := time.NewTimer(f.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sendFile sends the complete lines of path after the cursor. done reports
// that path is no longer the active file and all of it was sent.
func (f *Forwarder) sendFile(ctx context.Context, path string) (done bool, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("siem: %w", err)
	}
	defer fh.Close()
	if st, err := fh.Stat(); err != nil {
		return false, fmt.Errorf("siem: %w", err)
	} else if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Ino != f.cursor.Inode {
		return false, nil // renamed since the listing: list again
	}
	// Checked before reading: a file that is no longer the active one gets
	// no more lines, so reading it to its end sends all of it.
	rotated := path != f.path
	if ino, ok := inode(f.path); !ok || ino != f.cursor.Inode {
		rotated = true
	}
	if _, err := fh.Seek(f.cursor.Offset, io.SeekStart); err != nil {
		return false, fmt.Errorf("siem: %w", err)
	}
	r := bufio.NewReaderSize(fh, 1<<16)
	var batch []record
	batchEnd := f.cursor.Offset // after the last line sent or skipped
	flush := func() error {
		if err := f.deliver(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		if batchEnd == f.cursor.Offset {
			return nil
		}
		f.cursor.Offset = batchEnd
		return f.saveCursor()
	}
	off := f.cursor.Offset
	for ctx.Err() == nil {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			break // a partial last line is read again next time
		}
		if err != nil {
			return false, fmt.Errorf("siem: read %s: %w", path, err)
		}
		off += int64(len(line))
		rec, ferr := parseDecision(bytes.TrimRight(line, "\n"))
		if ferr != nil {
			f.log.Error("siem: decision log line skipped", "file", path, "offset", off-int64(len(line)), "err", ferr)
		} else {
			batch = append(batch, rec)
		}
		batchEnd = off
		if len(batch) >= maxBatch {
			if err := flush(); err != nil {
				return false, err
			}
		}
	}
	if err := flush(); err != nil {
		return false, err
	}
	if !rotated || ctx.Err() != nil {
		return false, nil
	}
	st, err := fh.Stat()
	if err != nil {
		return false, fmt.Errorf("siem: %w", err)
	}
	return f.cursor.Offset >= st.Size(), nil
}
