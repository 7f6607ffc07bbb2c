package sftpfront

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
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
// All of it lives in memory: a restart forgets it (and removes staged
// uploads), so a reput after a restart starts over and a re-upload after a
// restart is delivered again.

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

// finishedUpload is an upload that completed within the window.
type finishedUpload struct {
	size     int64
	sum      [32]byte
	mod      time.Time
	at       time.Time
	transfer string
}

// maxParked bounds the interrupted uploads kept per account: each holds a
// staged file and its encoder's buffers.
const maxParked = 8

// uploads is the front's memory of recent uploads. Safe for concurrent use.
// Lock order: an ingestWriter's mu, then uploads.mu (Close reports to the
// registry holding its writer's lock); the registry never takes a writer's
// lock while holding its own, and abandons writers only after unlocking.
type uploads struct {
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	active map[uploadKey]*activeUpload
	done   map[uploadKey]*finishedUpload
	closed bool
}

func newUploads(window time.Duration, now func() time.Time) *uploads {
	return &uploads{window: window, now: now, active: map[uploadKey]*activeUpload{}, done: map[uploadKey]*finishedUpload{}}
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

// finished records that the upload w of k completed (delivered as transfer,
// or recognised as a duplicate of it).
func (u *uploads) finished(k uploadKey, w *ingestWriter, size int64, sum [32]byte, transfer string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	f := &finishedUpload{size: size, sum: sum, mod: now, at: now, transfer: transfer}
	if a := u.active[k]; a != nil && a.w == w {
		if !a.mod.IsZero() {
			f.mod = a.mod
		}
		delete(u.active, k)
	}
	u.done[k] = f
	u.prune(now)
}

// ended forgets the open upload w of k, which failed.
func (u *uploads) ended(k uploadKey, w *ingestWriter) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if a := u.active[k]; a != nil && a.w == w && !a.parked {
		delete(u.active, k)
	}
}

// duplicate returns the transfer that an upload of k with size and sum
// repeats, if one finished within the window (under k's name, or under the
// name it is delivered as, where a WinSCP-style rename moved it).
func (u *uploads) duplicate(k uploadKey, size int64, sum [32]byte) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.prune(u.now())
	for _, k := range []uploadKey{k, {account: k.account, dir: k.dir, name: deliveredName(k.name)}} {
		if f := u.done[k]; f != nil && f.size == size && f.sum == sum {
			return f.transfer, true
		}
	}
	return "", false
}

// prune forgets finished uploads older than the window. u.mu is held.
func (u *uploads) prune(now time.Time) {
	for k, f := range u.done {
		if now.Sub(f.at) > u.window {
			delete(u.done, k)
		}
	}
}

// rename moves the finished upload from to the name to, reporting whether
// from finished within the window.
func (u *uploads) rename(from, to uploadKey) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.prune(u.now())
	f := u.done[from]
	if f == nil {
		return false
	}
	delete(u.done, from)
	u.done[to] = f
	return true
}

// setTimes keeps mod as the time of k, reporting whether k exists.
func (u *uploads) setTimes(k uploadKey, mod time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.prune(u.now())
	if a := u.active[k]; a != nil {
		a.mod = mod
		return true
	}
	if f := u.done[k]; f != nil {
		f.mod = mod
		return true
	}
	return false
}

// stat describes k as its directory lists it.
func (u *uploads) stat(k uploadKey) (os.FileInfo, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.prune(u.now())
	return u.info(k)
}

// info is stat with u.mu held.
func (u *uploads) info(k uploadKey) (os.FileInfo, bool) {
	if a := u.active[k]; a != nil {
		mod := a.mod
		if mod.IsZero() {
			mod = a.at
		}
		return fileInfo{name: k.name, size: a.w.size(), mode: 0o600, mod: mod}, true
	}
	if f := u.done[k]; f != nil {
		return fileInfo{name: k.name, size: f.size, mode: 0o600, mod: f.mod}, true
	}
	return nil, false
}

// list describes the uploads of account in dir, by name.
func (u *uploads) list(account, dir string) []os.FileInfo {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.prune(u.now())
	var keys []uploadKey
	for k := range u.active {
		if k.account == account && k.dir == dir {
			keys = append(keys, k)
		}
	}
	for k := range u.done {
		if k.account == account && k.dir == dir && u.active[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b uploadKey) int { return strings.Compare(a.name, b.name) })
	out := make([]os.FileInfo, 0, len(keys))
	for _, k := range keys {
		fi, _ := u.info(k)
		out = append(out, fi)
	}
	return out
}

// newest is the time of the latest upload of account in dir (zero: none).
func (u *uploads) newest(account, dir string) time.Time {
	var t time.Time
	for _, fi := range u.list(account, dir) {
		if fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
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
