package sftpfront

import (
	"testing"
	"time"
)

// TestUploadsTakeNoWriterLock: listing and stat of uploads do not wait for a
// writer's lock, which its Close holds while reporting to the registry (rclone
// listing a directory while an upload in it closed deadlocked the session).
func TestUploadsTakeNoWriterLock(t *testing.T) {
	u := newUploads(time.Minute, time.Now)
	k := uploadKey{account: "dms", dir: "team", name: "a.pdf"}
	w := &ingestWriter{}
	w.received.Store(42)
	u.begin(k, w)
	w.mu.Lock()
	defer w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if fis := u.list("dms", "team"); len(fis) != 1 || fis[0].Size() != 42 {
			t.Errorf("list = %v", fis)
		}
		if fi, ok := u.stat(k); !ok || fi.Size() != 42 {
			t.Errorf("stat = %v, %v", fi, ok)
		}
		u.newest("dms", "team")
	}()
	select {
	case <-done:
	case <-time.After(time.Minute): // a deadlock, not a slow machine
		t.Fatal("list or stat waits for the writer's lock")
	}
}
