package crashtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/internal/enginetest"
	"github.com/lexgate/lexgate/internal/engines"
)

// mountTmpfs mounts a tmpfs of size bytes at a new directory and unmounts it at
// the end of the test. Without the right to mount it skips (fails under CI=true).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs (needed to fill a disk for real): %v", err)
		}
		t.Skipf("cannot mount a tmpfs to fill (%v); run as root", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the filesystem is full, then gives back keep
// bytes, and returns the file's path.
func fill(t *testing.T, dir string, keep int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	if keep > 0 {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(max(0, fi.Size()-keep)); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// auditRefused checks that err is the gateway's refusal of an action its
// audit log could not record (503, nothing acknowledged) and returns it.
func auditRefused(t *testing.T, what string, err error) *api.Error {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeUnavailable || !strings.Contains(ae.Message, "nothing was acknowledged") {
		t.Fatalf("%s: %v, want %s, nothing acknowledged", what, err, api.CodeUnavailable)
	}
	return ae
}

// storageFull checks that err is the gateway's "storage full" refusal.
func storageFull(t *testing.T, what string, err error) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("%s on a full disk: %v, want the gateway's error reply", what, err)
	}
	if ae.Code != api.CodeUnavailable || !strings.Contains(ae.Message, "storage is full") {
		t.Errorf("%s on a full disk: %s %q, want %s saying the storage is full", what, ae.Code, ae.Message, api.CodeUnavailable)
	}
	t.Logf("%s on a full disk: %s: %s", what, ae.Code, ae.Message)
}

// TestDiskFull fills the gateway's store, then its audit log, for real (tmpfs):
// an upload that meets ENOSPC and an upload whose completion cannot be logged
// are refused with a clear error and no acknowledgement, nothing is delivered
// half-done, and both resume once space returns.
func TestDiskFull(t *testing.T) {
	data := mountTmpfs(t, "64m")
	auditDir := mountTmpfs(t, "4m")
	w := newWorld(t, data, "audit:", "  dir: "+auditDir+"/log", "  key_file: "+auditDir+"/audit.key", "")
	g := w.start("")
	defer g.stop()
	tm, a := w.client(g, team), w.client(g, alice)
	key := registerTeam(t, tm)
	before := w.create(t, a, ciphertext(t, 1<<20, key.Recipient()), false)
	if err := before.push(context.Background(), a, 0); err != nil {
		t.Fatalf("upload: %v", err)
	}

	// The store's disk is full: a new transfer is refused, nothing recorded.
	svid := w.aliceSVID(t)
	filler := fill(t, data, 0)
	_, err := createAs(a, svid, ciphertext(t, 1<<20, key.Recipient()), false)
	storageFull(t, "create", err)
	os.Remove(filler)

	// The store's disk fills during an upload.
	u1 := w.create(t, a, ciphertext(t, 8<<20, key.Recipient()), true) // streamed: sealed after the resume
	filler = fill(t, data, 1<<20)
	err = u1.push(context.Background(), a, 0)
	storageFull(t, "upload", err)
	if u1.done {
		t.Fatalf("upload acknowledged on a full disk: %s", u1)
	}
	checkInbox(t, tm, []*upload{before, u1}, func(*upload) bool { return false })
	os.Remove(filler)
	u1.resume(t, a)
	checkInbox(t, tm, []*upload{before, u1}, func(*upload) bool { return false })

	// The store's disk fills during a range of a parallel upload: 507, the
	// range is not recorded, and sending what is missing completes it.
	ctx := context.Background()
	u3 := w.create(t, a, ciphertext(t, 8<<20, key.Recipient()), false)
	size3 := int64(len(u3.ct))
	if _, _, err := u3.sendRange(ctx, a, api.Span{Start: 0, End: 1 << 20}); err != nil {
		t.Fatalf("the head range: %v", err)
	}
	filler = fill(t, data, 1<<20)
	_, _, err = u3.sendRange(ctx, a, api.Span{Start: 1 << 20, End: size3})
	storageFull(t, "range upload", err)
	os.Remove(filler)
	if off, held, err := a.UploadProgress(ctx, u3.id); err != nil || off != 1<<20 || held != nil {
		t.Fatalf("after a range that met a full disk the gateway holds [0, %d) and %v (%v); want the head only", off, held, err)
	}
	if got, _, err := u3.sendRange(ctx, a, api.Span{Start: 1 << 20, End: size3}); err != nil || got != size3 {
		t.Fatalf("the range again, with space back: %d, %v", got, err)
	}
	u3.acked, u3.done = size3, true
	checkInbox(t, tm, []*upload{before, u1, u3}, func(*upload) bool { return false })

	// The audit log's disk fills: the upload's bytes are stored but its
	// completion cannot be logged, so it is neither acknowledged nor visible.
	u2 := w.create(t, a, ciphertext(t, 512<<10, key.Recipient()), false)
	filler = fill(t, auditDir, 0)
	err = u2.push(context.Background(), a, 0)
	storageFull(t, "upload completion", err)
	if u2.done {
		t.Fatalf("upload acknowledged while its completion could not be logged: %s", u2)
	}
	_, err = tm.Inbox(context.Background())
	storageFull(t, "inbox", err)
	if body, _, err := tm.Download(context.Background(), u2.id, 0); err == nil {
		io.Copy(io.Discard, body)
		body.Close()
		t.Errorf("an upload whose completion is not logged was delivered")
	}
	os.Remove(filler)
	// Space is back, but the completion is still not logged: not deliverable.
	if _, _, err := tm.Download(context.Background(), u2.id, 0); !isCode(err, api.CodeNotReady) {
		t.Errorf("download of an upload whose completion is not logged: %v, want %s", err, api.CodeNotReady)
	}
	checkInbox(t, tm, []*upload{before, u1, u3, u2}, func(*upload) bool { return false })
	u2.resume(t, a)
	all := []*upload{before, u1, u3, u2}
	checkInbox(t, tm, all, func(*upload) bool { return false })
	ackAll(t, tm, all)
	g.stop()
	w.auditDir, w.auditKey = auditDir+"/log", auditDir+"/audit.key"
	w.checkAgreement(t)
}

func isCode(err error, code string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

// TestDiskFullAuditMariaDB fills the disk of a real MariaDB that keeps the
// audit log (tessera's MySQL driver, as a cluster does): an upload whose
// completion cannot be logged is refused within audit.append_timeout with a
// clear error and no acknowledgement, instead of waiting for as long as the
// database stalls, nothing is delivered half-done, and the upload completes
// once space returns.
func TestDiskFullAuditMariaDB(t *testing.T) {
	disk := mountTmpfs(t, "96m")
	// mariadbd runs as mysql: it must reach its directory.
	for d := disk; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	my := enginetest.NewMariaDB(t, engines.InDir(disk), engines.Settings("innodb_log_file_size=8M", "innodb_buffer_pool_size=32M"))
	dsn, err := my.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const appendTimeout = 3 * time.Second
	w := newWorldWith(t, "", func(c *gateway.Config) {
		c.Audit.MySQL.DSN = dsn
		c.Audit.AppendTimeout = appendTimeout
	})
	w.auditMySQL = dsn
	g := w.start("")
	defer g.stop()
	tm, a := w.client(g, team), w.client(g, alice)
	key := registerTeam(t, tm)
	before := w.create(t, a, ciphertext(t, 1<<20, key.Recipient()), false)
	if err := before.push(context.Background(), a, 0); err != nil {
		t.Fatalf("upload: %v", err)
	}

	// The database's disk fills: it goes on while its files have room (InnoDB
	// writes into pages it holds), so transfers are sent until one of its
	// files must grow, which the full disk refuses.
	svid := w.aliceSVID(t)
	sent := []*upload{before}
	filler := fill(t, disk, 0)
	var u *upload
	const most = 3000
	for i := 0; ; i++ {
		if i == most {
			t.Fatalf("%d transfers logged on a full disk: the database never needed more space", most)
		}
		u = &upload{}
		err := bounded(t, appendTimeout, func() error {
			var err error
			if u, err = createAs(a, svid, ciphertext(t, 1<<10, key.Recipient()), false); err != nil {
				return err
			}
			return u.push(context.Background(), a, 0)
		})
		if err == nil {
			sent = append(sent, u)
			continue
		}
		ae := auditRefused(t, fmt.Sprintf("transfer %d on a full audit database", i), err)
		t.Logf("transfer %d on a full audit database: %s: %s", i, ae.Code, ae.Message)
		break
	}
	if u != nil && u.id != "" {
		if u.done {
			t.Fatalf("upload acknowledged while its completion could not be logged: %s", u)
		}
		if body, _, err := tm.Download(context.Background(), u.id, 0); err == nil {
			io.Copy(io.Discard, body)
			body.Close()
			t.Errorf("an upload whose completion is not logged was delivered")
		}
	}
	os.Remove(filler)

	// Space is back: the completion is logged once the database takes
	// entries again, the upload is acknowledged and delivered.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if u != nil {
		u.retryUntilDone(ctx, t, a, "the refused transfer after space returned")
		sent = append(sent, u)
	}

	// The database stalls (its process stopped, as a server waiting for
	// space does): a transfer is refused once the append timeout passes,
	// not held; once the database goes on, the same transfer goes through.
	if err := my.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			my.Resume()
		}
	}()
	stalled := &upload{}
	start := time.Now()
	err = bounded(t, appendTimeout, func() error {
		var err error
		stalled, err = createAs(a, svid, ciphertext(t, 1<<10, key.Recipient()), false)
		return err
	})
	ae := auditRefused(t, "a transfer while the audit database stalls", err)
	t.Logf("a transfer while the audit database stalls: refused after %v: %s", time.Since(start).Round(time.Millisecond), ae.Message)
	if err := my.Resume(); err != nil {
		t.Fatal(err)
	}
	paused = false
	stalled.retryUntilDone(ctx, t, a, "the stalled transfer once the database went on")
	sent = append(sent, stalled)
	checkInbox(t, tm, sent, func(*upload) bool { return false })
	ackAll(t, tm, sent)
}

// retryUntilDone sends u to its end, creating it first if its creation was
// refused, and tries again every second while the gateway refuses, until
// ctx ends (what says which transfer, if it fails).
func (u *upload) retryUntilDone(ctx context.Context, t *testing.T, c *cli.Client, what string) {
	t.Helper()
	for {
		var err error
		if u.id == "" { // its creation was refused: create it again
			err = u.create(c)
		}
		if err == nil {
			var off int64
			if off, err = c.UploadOffset(ctx, u.id); err == nil {
				if err = u.push(ctx, c, off); err == nil {
					return
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(time.Second)
	}
}

// bounded runs fn and returns its error, failing t if fn has not returned
// two minutes after limit: a request held for as long as a backend stalls.
func bounded(t *testing.T, limit time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit + 2*time.Minute):
		t.Fatalf("a request still waits %v past the append timeout (%v)", 2*time.Minute, limit)
		return nil
	}
}
