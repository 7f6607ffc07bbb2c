package sftpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/store"
	"github.com/lexgate/lexgate/gateway/transfer"
)

// storeRecent is the core's pass-through to a real store's recent uploads,
// for tests of the registry without a whole gateway (which imports this
// package).
type storeRecent struct{ s *store.Store }

func (r storeRecent) RecentUploadOf(ctx context.Context, account, dir, name string, now time.Time) (transfer.RecentUpload, error) {
	u, err := r.s.RecentUploadOf(ctx, account, dir, name, now)
	return u, coreErr(err)
}
func (r storeRecent) RecentUploads(ctx context.Context, account, dir string, now time.Time) ([]transfer.RecentUpload, error) {
	return r.s.RecentUploads(ctx, account, dir, now)
}
func (r storeRecent) RenameRecentUpload(ctx context.Context, account, dir, from, toDir, to string, now time.Time) error {
	return coreErr(r.s.RenameUpload(ctx, account, dir, from, toDir, to, now))
}
func (r storeRecent) SetRecentUploadTime(ctx context.Context, account, dir, name string, mod, now time.Time) error {
	return coreErr(r.s.SetUploadTime(ctx, account, dir, name, mod, now))
}
func (r storeRecent) SweepRecentUploads(ctx context.Context, now time.Time) (int, error) {
	return r.s.SweepUploads(ctx, now)
}

// coreErr gives the store's not-found the core's sentinel, as the core does.
func coreErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %v", transfer.ErrNotFound, err)
	}
	return err
}

func openRecent(t *testing.T) storeRecent {
	s, err := store.Open(t.Context(), store.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return storeRecent{s}
}

// TestUploadsTakeNoWriterLock: listing and stat of uploads do not wait for a
// writer's lock, which its Close holds while reporting to the registry (rclone
// listing a directory while an upload in it closed deadlocked the session).
func TestUploadsTakeNoWriterLock(t *testing.T) {
	u := newUploads(time.Minute, time.Now, openRecent(t))
	k := uploadKey{account: "dms", dir: "team", name: "a.pdf"}
	w := &ingestWriter{}
	w.received.Store(42)
	u.begin(k, w)
	w.mu.Lock()
	defer w.mu.Unlock()
	done := make(chan struct{})
	ctx := t.Context()
	go func() {
		defer close(done)
		if fis, err := u.list(ctx, "dms", "team"); err != nil || len(fis) != 1 || fis[0].Size() != 42 {
			t.Errorf("list = %v, %v", fis, err)
		}
		if fi, ok, err := u.stat(ctx, k); err != nil || !ok || fi.Size() != 42 {
			t.Errorf("stat = %v, %v, %v", fi, ok, err)
		}
		u.newest(ctx, "dms", "team")
	}()
	select {
	case <-done:
	case <-time.After(time.Minute): // a deadlock, not a slow machine
		t.Fatal("list or stat waits for the writer's lock")
	}
}

// TestUploadsListMerges: a directory lists the uploads open here and the
// finished ones the store keeps (of any replica), one entry per name, the
// open one first; a sweep runs at most once a window.
func TestUploadsListMerges(t *testing.T) {
	r := openRecent(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	u := newUploads(time.Minute, func() time.Time { return now }, r)
	ctx := t.Context()
	for _, name := range []string{"b.pdf", "a.pdf"} {
		if err := r.s.RecordUpload(ctx, transfer.RecentUpload{Account: "dms", Dir: "team", Name: name, Size: 7,
			SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Modified: now, Finished: now, Expires: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	w := &ingestWriter{}
	w.received.Store(42)
	u.begin(uploadKey{account: "dms", dir: "team", name: "b.pdf"}, w)
	fis, err := u.list(ctx, "dms", "team")
	if err != nil || len(fis) != 2 || fis[0].Name() != "a.pdf" || fis[0].Size() != 7 || fis[1].Name() != "b.pdf" || fis[1].Size() != 42 {
		t.Fatalf("list = %v, %v; want a.pdf (7, finished) and b.pdf (42, open)", fis, err)
	}
	if ok, err := u.setTimes(ctx, uploadKey{account: "dms", dir: "team", name: "a.pdf"}, now.Add(-time.Hour)); !ok || err != nil {
		t.Fatalf("setTimes = %v, %v", ok, err)
	}
	if fi, ok, err := u.stat(ctx, uploadKey{account: "dms", dir: "team", name: "a.pdf"}); !ok || err != nil || !fi.ModTime().Equal(now.Add(-time.Hour)) {
		t.Errorf("stat after setTimes = %v, %v, %v", fi, ok, err)
	}
	if ok, err := u.setTimes(ctx, uploadKey{account: "dms", dir: "team", name: "none"}, now); ok || err != nil {
		t.Errorf("setTimes of no upload = %v, %v; want false", ok, err)
	}
	now = now.Add(time.Minute)
	u.sweep(ctx, slog.New(slog.DiscardHandler))
	if got, err := r.s.SweepUploads(ctx, now); err != nil || got != 0 {
		t.Errorf("a sweep after the window left %d records (%v)", got, err)
	}
}
