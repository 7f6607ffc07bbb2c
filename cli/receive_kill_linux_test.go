package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestGatewayReceiveResumeAfterKill: lex receive, a process of its own, is
// killed with SIGKILL once it has written its first checkpoint (every 64
// MiB; the link is cut further on, so it cannot finish first). The next
// receive into the same directory resumes from the checkpoint, gets only
// the rest of the ciphertext from the gateway (counted by a proxy in front
// of it) and delivers the same files, leaving nothing else behind.
func TestGatewayReceiveResumeAfterKill(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lex")
	build := exec.Command("go", "build", "-o", bin, "./cmd/lex")
	build.Dir = moduleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/lex: %v\n%s", err, out)
	}
	env, alice, team := setup(t, gatewaytest.WithoutQUIC())
	root, sums := bigBundle(t, 96<<20)
	id := sendID(t, alice, "--to", gatewaytest.Team, "--matter", "HL-2026-0042", root)
	size := spoolSize(t, env, id)
	proxy := startDownCut(t, env.Addr, 80<<20)
	config := viaProxy(t, team, env.Addr, proxy.addr())
	incoming := filepath.Join(filepath.Dir(team), "cache", "incoming")
	if err := os.MkdirAll(incoming, 0o700); err != nil {
		t.Fatal(err)
	}
	written := watchRenames(t, incoming, id+".resume")

	dest := filepath.Join(t.TempDir(), "in")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "--config", config, "receive", id, "-o", dest)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-written:
	case err := <-exited:
		t.Fatalf("lex receive exited (%v) before it wrote a checkpoint:\n%s", err, stderr.String())
	}
	cmd.Process.Kill()
	<-exited
	assertOnlyStaging(t, dest)
	off := checkpointOffset(t, filepath.Join(incoming, id+".resume"))

	proxy.heal()
	before := proxy.sent.Load()
	code, _, errOut := lex(t, config, "-v", "receive", id, "-o", dest)
	checkResumed(t, "receive after the kill", code, errOut, off, size, proxy.sent.Load()-before)
	checkTree(t, filepath.Join(dest, "HL-2026-0042"), sums)
	if ents, _ := os.ReadDir(dest); len(ents) != 1 {
		t.Errorf("the destination holds %v, want HL-2026-0042 alone", ents)
	}
	if ents, _ := os.ReadDir(incoming); len(ents) != 0 {
		t.Errorf("the cache holds %v after the receive", ents)
	}
}

// watchRenames returns a channel closed when a file is renamed to name in dir
// (inotify: the checkpoint is written to a temporary name and renamed).
func watchRenames(t *testing.T, dir, name string) <-chan struct{} {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_MOVED_TO); err != nil {
		syscall.Close(fd)
		t.Fatalf("inotify %s: %v", dir, err)
	}
	// Through the runtime's poller, so that closing it ends a read.
	f := os.NewFile(uintptr(fd), "inotify")
	var stopped sync.WaitGroup
	t.Cleanup(func() {
		f.Close()
		stopped.Wait()
	})
	done := make(chan struct{})
	stopped.Add(1)
	go func() {
		defer stopped.Done()
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				nameBytes := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
				if string(bytes.TrimRight(nameBytes, "\x00")) == name {
					close(done)
					return
				}
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	return done
}
