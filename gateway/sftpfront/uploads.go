package sftpfront

import (
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/lexgate/lexgate/gateway/transfer"
)

// Upload semantics stock clients expect of a file server, kept for
// Config.UploadWindow after each upload to /outbox/<recipient>/<name>:
//
//   - The finished file stays listed in its directory, with its size and time:
//     paramiko's put() stats it to confirm the size, rclone and WinSCP set its
//     time and read it back, rclone's next copy compares size and time.
//   - SETSTAT of its times is kept (and shown); owners and modes are refused.
//   - An identical re-upload (same account, directory, name, size and SHA-256
//     of the content) is acknowledged to the client and not delivered again: a
//     client's retry or a second `rclone copy` makes one transfer.
//   - An interrupted upload (the connection dropped with the file open) is
//     kept, listed with the bytes received, and resumed by an open without
//     truncation (OpenSSH and lftp reput) that writes on from that size. After
//     the window it is discarded, as an interrupted upload always was.
//
// Finished uploads — their listing, the times set on them and the duplicate
// check — are kept in the store (transfer.RecentUpload) until the window ends:
// they survive a restart, and the replicas of a cluster on one store share
// them. The duplicate check is made in the transaction that creates the
// transfer (transfer.Ingest.CommitUpload), so two identical uploads finishing
// at once, on one replica or two, are delivered once. Uploads in progress and
// interrupted ones hold a staged file of this process and stay in its memory:
// a reput reaches its upload only on the replica that received the first part,
// and after a restart it starts over.

// uploadKey names an upload as the client sees it.
type uploadKey struct{ account, dir, name string }

// activeUpload is an upload with its file open, or interrupted and parked.
type activeUpload struct {
	w      *ingestWriter
	parked bool
	at     time.Time // when it was opened or parked
	mod    time.Time // set by SETSTAT (zero: none)
	timer  *time.Timer
}

// maxParked bounds the interrupted uploads kept per account: each holds a
// staged file and its encoder's buffers.
const maxParked = 8

// recentStore is where finished uploads are kept: the core's store, which a
// restart keeps and replicas share.
type recentStore interface {
	RecentUploadOf(ctx context.Context, account, dir, name string, now time.Time) (transfer.RecentUpload, error)
	RecentUploads(ctx context.Context, account, dir string, now time.Time) ([]transfer.RecentUpload, error)
	RenameRecentUpload(ctx context.Context, account, dir, from, toDir, to string, now time.Time) error
	SetRecentUploadTime(ctx context.Context, account, dir, name string, mod, now time.Time) error
	SweepRecentUploads(ctx context.Context, now time.Time) (int, error)
}

var _ recentStore = (*transfer.Service)(nil)

// uploads is the front's memory of recent uploads: those in progress or
// interrupted here, and, through recent, those finished within the window.
// Safe for concurrent use.
// Lock order: an ingestWriter's mu, then uploads.mu (Close reports to the
// registry holding its writer's lock); the registry never takes a writer's
// lock while holding its own, and abandons writers only after unlocking. It
// never calls the store while holding its lock.
type uploads struct {
	window time.Duration
	now    func() time.Time
	recent recentStore

	mu     sync.Mutex
	active map[uploadKey]*activeUpload
	swept  time.Time // when expired records were last deleted
	closed bool
}

func newUploads(window time.Duration, now func() time.Time, recent recentStore) *uploads {
	return &uploads{window: window, now: now, recent: recent, active: map[uploadKey]*activeUpload{}}
}

// begin records an upload whose file was just opened.
func (u *uploads) begin(k uploadKey, w *ingestWriter) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.active[k] = &activeUpload{w: w, at: u.now()}
}

// resume takes the parked upload of k, if any, for a new open.
func (u *uploads) resume(k uploadKey) *ingestWriter {
	u.mu.Lock()
	defer u.mu.Unlock()
	a := u.active[k]
	if a == nil || !a.parked {
		return nil
	}
	a.timer.Stop()
	a.parked, a.at = false, u.now()
	return a.w
}

// discard aborts the parked upload of k, if any: a new upload replaces it.
func (u *uploads) discard(k uploadKey) {
	u.mu.Lock()
	a := u.active[k]
	if a == nil || !a.parked {
		u.mu.Unlock()
		return
	}
	delete(u.active, k)
	a.timer.Stop()
	u.mu.Unlock()
	a.w.abandon()
}

// park keeps w, interrupted, for a resume within the window. It reports false
// (and w must be abandoned) when the front is closing.
func (u *uploads) park(k uploadKey, w *ingestWriter) bool {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return false
	}
	a := u.active[k]
	if a == nil || a.w != w {
		a = &activeUpload{w: w}
		u.active[k] = a
	}
	a.parked, a.at = true, u.now()
	a.timer = time.AfterFunc(u.window, func() { u.expire(k, w) })
	evict := u.overParked(k.account)
	u.mu.Unlock()
	if evict != nil {
		evict.abandon()
	}
	return true
}

// overParked removes and returns the oldest parked upload of account when it
// has more than maxParked (nil otherwise). u.mu is held.
func (u *uploads) overParked(account string) *ingestWriter {
	var oldest uploadKey
	var first *activeUpload
	n := 0
	for k, a := range u.active {
		if k.account == account && a.parked {
			n++
			if first == nil || a.at.Before(first.at) {
				oldest, first = k, a
			}
		}
	}
	if n <= maxParked {
		return nil
	}
	first.timer.Stop()
	delete(u.active, oldest)
	return first.w
}

// expire abandons w if it is still parked under k when its window ends.
func (u *uploads) expire(k uploadKey, w *ingestWriter) {
	u.mu.Lock()
	a := u.active[k]
	if a == nil || a.w != w || !a.parked {
		u.mu.Unlock()
		return
	}
	delete(u.active, k)
	u.mu.Unlock()
	w.log.InfoContext(w.ctx, "sftp interrupted upload discarded: not resumed within sftp.upload_window", "bytes", w.size())
	w.abandon()
}

// record describes the upload w of k, which finished with size bytes of
// SHA-256 sum, as the store keeps it: its time is one SETSTAT set while it
// was open, or its finish.
func (u *uploads) record(k uploadKey, w *ingestWriter, size int64, sum [32]byte) transfer.RecentUpload {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	r := transfer.RecentUpload{Account: k.account, Dir: k.dir, Name: k.name, Size: size, SHA256: hex.EncodeToString(sum[:]),
		Modified: now, Finished: now, Expires: now.Add(u.window)}
	if a := u.active[k]; a != nil && a.w == w && !a.mod.IsZero() {
		r.Modified = a.mod
	}
	return r
}

// aliases are the other names an upload of k repeats an earlier one under:
// the name it is delivered as, where a WinSCP-style rename moved it.
func aliases(k uploadKey) []string {
	if n := deliveredName(k.name); n != k.name {
		return []string{n}
	}
	return nil
}

// ended forgets the upload w of k, which finished (its record is in the
// store) or failed.
func (u *uploads) ended(k uploadKey, w *ingestWriter) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if a := u.active[k]; a != nil && a.w == w && !a.parked {
		delete(u.active, k)
	}
}

// sweep deletes the store's expired records, at most once a window (any
// replica may: the store never returns an expired one, so this only frees
// space).
func (u *uploads) sweep(ctx context.Context, log *slog.Logger) {
	u.mu.Lock()
	now := u.now()
	due := now.Sub(u.swept) >= u.window
	if due {
		u.swept = now
	}
	u.mu.Unlock()
	if !due {
		return
	}
	if n, err := u.recent.SweepRecentUploads(ctx, now); err != nil {
		log.WarnContext(ctx, "sftp: deleting expired records of finished uploads failed; the next upload tries again", "err", err)
		u.mu.Lock()
		u.swept = time.Time{}
		u.mu.Unlock()
	} else if n > 0 {
		log.DebugContext(ctx, "sftp: deleted expired records of finished uploads", "count", n)
	}
}

// rename moves the finished upload from to the name to, reporting whether
// from finished within the window.
func (u *uploads) rename(ctx context.Context, from, to uploadKey) (bool, error) {
	return found(u.recent.RenameRecentUpload(ctx, from.account, from.dir, from.name, to.dir, to.name, u.now()))
}

// setTimes keeps mod as the time of k, reporting whether k exists.
func (u *uploads) setTimes(ctx context.Context, k uploadKey, mod time.Time) (bool, error) {
	u.mu.Lock()
	if a := u.active[k]; a != nil {
		a.mod = mod
		u.mu.Unlock()
		return true, nil
	}
	now := u.now()
	u.mu.Unlock()
	return found(u.recent.SetRecentUploadTime(ctx, k.account, k.dir, k.name, mod, now))
}

// found turns the store's answer about a finished upload into whether it is
// there: not found is no error, any other error is one.
func found(err error) (bool, error) {
	if errors.Is(err, transfer.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// stat describes k as its directory lists it.
func (u *uploads) stat(ctx context.Context, k uploadKey) (os.FileInfo, bool, error) {
	u.mu.Lock()
	fi, ok := u.info(k)
	now := u.now()
	u.mu.Unlock()
	if ok {
		return fi, true, nil
	}
	r, err := u.recent.RecentUploadOf(ctx, k.account, k.dir, k.name, now)
	if ok, err := found(err); !ok {
		return nil, false, err
	}
	return recentInfo(r), true, nil
}

// info describes the upload of k in progress or interrupted here. u.mu is
// held.
func (u *uploads) info(k uploadKey) (os.FileInfo, bool) {
	a := u.active[k]
	if a == nil {
		return nil, false
	}
	mod := a.mod
	if mod.IsZero() {
		mod = a.at
	}
	return fileInfo{name: k.name, size: a.w.size(), mode: 0o600, mod: mod}, true
}

func recentInfo(r transfer.RecentUpload) fileInfo {
	return fileInfo{name: r.Name, size: r.Size, mode: 0o600, mod: r.Modified}
}

// list describes the uploads of account in dir, by name: those in progress
// or interrupted here, and those finished within the window (on any
// replica).
func (u *uploads) list(ctx context.Context, account, dir string) ([]os.FileInfo, error) {
	u.mu.Lock()
	now := u.now()
	byName := map[string]os.FileInfo{}
	for k := range u.active {
		if k.account == account && k.dir == dir {
			byName[k.name], _ = u.info(k)
		}
	}
	u.mu.Unlock()
	rs, err := u.recent.RecentUploads(ctx, account, dir, now)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if byName[r.Name] == nil {
			byName[r.Name] = recentInfo(r)
		}
	}
	names := slices.Sorted(maps.Keys(byName))
	out := make([]os.FileInfo, 0, len(names))
	for _, n := range names {
		out = append(out, byName[n])
	}
	return out, nil
}

// newest is the time of the latest upload of account in dir (zero: none).
func (u *uploads) newest(ctx context.Context, account, dir string) (time.Time, error) {
	fis, err := u.list(ctx, account, dir)
	var t time.Time
	for _, fi := range fis {
		if fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t, err
}

// close abandons every parked upload; later ones are not parked.
func (u *uploads) close() {
	u.mu.Lock()
	u.closed = true
	var ws []*ingestWriter
	for k, a := range u.active {
		if a.parked {
			a.timer.Stop()
			ws = append(ws, a.w)
			delete(u.active, k)
		}
	}
	u.mu.Unlock()
	for _, w := range ws {
		w.abandon()
	}
}

var _ fs.FileInfo = fileInfo{}
