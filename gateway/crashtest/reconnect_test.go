package crashtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lexgate/lexgate/cli"
)

// lexRun is one lex command running in this process.
type lexRun struct {
	code   int
	stdout bytes.Buffer // read once done is closed
	stderr watchedBuffer
	done   chan struct{}
}

// lex runs the lex command line args in the background.
func lex(ctx context.Context, args ...string) *lexRun {
	r := &lexRun{done: make(chan struct{}), stderr: watchedBuffer{changed: make(chan struct{}, 1)}}
	go func() {
		defer close(r.done)
		r.code = cli.Main(ctx, args, nil, &r.stdout, &r.stderr)
	}()
	return r
}

// watchedBuffer is a buffer safe to read while it is written, which says
// when it changes.
type watchedBuffer struct {
	lockedBuffer
	changed chan struct{}
}

func (w *watchedBuffer) Write(p []byte) (int, error) {
	n, err := w.lockedBuffer.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return n, err
}

// waitFor waits until the command has written sub, or has exited.
func (r *lexRun) waitFor(t *testing.T, sub string) {
	t.Helper()
	for !strings.Contains(r.stderr.String(), sub) {
		select {
		case <-r.stderr.changed:
		case <-r.done:
			t.Fatalf("lex exited (%d) without saying %q:\n%s", r.code, sub, r.stderr.String())
		}
	}
}

// wait waits for the command to exit, at most d.
func (r *lexRun) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		t.Fatalf("lex still running after %v; stderr so far:\n%s", d, r.stderr.String())
	}
}

// mustLex runs lex to completion and fails the test unless it exits 0.
func mustLex(t *testing.T, args ...string) string {
	t.Helper()
	r := lex(t.Context(), args...)
	r.wait(t, 2*time.Minute)
	if r.code != 0 {
		t.Fatalf("lex %v: exit %d\n%s", args, r.code, r.stderr.String())
	}
	return r.stdout.String()
}

// pinPort rewrites the world's config to listen on the address g got, so a
// restarted gateway comes back where lex knows it.
func (w *world) pinPort(g *gw) {
	w.t.Helper()
	b, err := os.ReadFile(w.configPath())
	if err != nil {
		w.t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("listen: 127.0.0.1:0\n")) {
		w.t.Fatalf("the world's config does not start with listen: 127.0.0.1:0:\n%s", b)
	}
	b = bytes.Replace(b, []byte("listen: 127.0.0.1:0\n"), []byte("listen: "+g.addr+"\n"), 1)
	if err := os.WriteFile(w.configPath(), b, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// lexConfig writes a lex config for id that talks to addr and pins logKey.
func (w *world) lexConfig(id, addr, logKey string) string {
	w.t.Helper()
	cert, key := w.svidFiles(id)
	home := filepath.Join(w.dir, "lex", strings.NewReplacer("spiffe://", "", "/", "_").Replace(id))
	if err := os.MkdirAll(home, 0o700); err != nil {
		w.t.Fatal(err)
	}
	cfg := fmt.Sprintf("gateway: %s\ngateway_id: %s\nsvid_cert: %s\nsvid_key: %s\nidentity: %s\ncache_dir: %s\nlog_key: %s\nbundles:\n  harbor-law.example: %s\n  manila-lpo.example: %s\n",
		addr, gatewayID, cert, key, filepath.Join(home, "identity.age"), filepath.Join(home, "cache"), logKey,
		filepath.Join(w.pki, "harbor-law.example", "bundle.pem"), filepath.Join(w.pki, "manila-lpo.example", "bundle.pem"))
	p := filepath.Join(home, "config.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// randomBundle writes a directory holding one file of size random bytes.
func randomBundle(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "HL-2026-0042")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "production.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sendResult is what lex send --json prints that these tests look at.
type sendResult struct {
	ID             string `json:"id"`
	CiphertextSize int64  `json:"ciphertext_size"`
	BytesSent      int64  `json:"bytes_sent"`
}

// receiveSame has the team receive transfer id and compares the file with the
// one sent.
func receiveSame(t *testing.T, teamCfg, id, sent string) {
	t.Helper()
	dest := t.TempDir()
	mustLex(t, "--config", teamCfg, "receive", id, "-o", dest)
	want, _ := os.ReadFile(filepath.Join(sent, "production.bin"))
	got, err := os.ReadFile(filepath.Join(dest, "HL-2026-0042", "production.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("received file differs from the one sent (%v)", err)
	}
}

// TestLexReconnectsAfterKill: the gateway is killed (SIGKILL, at the step after
// a chunk is synced and before its offset is committed) in the middle of a lex
// send and started again; the same lex send reconnects, resumes at the
// gateway's durable offset and completes, having sent again at most the chunk
// that was in flight.
func TestLexReconnectsAfterKill(t *testing.T) {
	w := newWorld(t, "")
	g := w.start("store.upload.synced#3")
	w.pinPort(g)
	aliceCfg, teamCfg := w.lexConfig(alice, g.addr, g.logKey), w.lexConfig(team, g.addr, g.logKey)
	mustLex(t, "--config", teamCfg, "keygen")
	mustLex(t, "--config", teamCfg, "register")
	bundle := randomBundle(t, 40<<20)

	const chunk = 8 << 20
	send := lex(t.Context(), "--config", aliceCfg, "-v", "send", "--json", "--chunk", "8MiB", "--streams", "1",
		"--to", team, "--matter", "HL-2026-0042", bundle)
	g.waitCrash("store.upload.synced")
	// The gateway stays down until lex has found it gone and is waiting to
	// reconnect.
	send.waitFor(t, "reconnecting")
	restarted := time.Now()
	w.start("")
	send.wait(t, 3*time.Minute)
	if send.code != 0 {
		t.Fatalf("lex send across a gateway restart: exit %d\n%s", send.code, send.stderr.String())
	}
	t.Logf("lex send finished %v after the gateway was started again", time.Since(restarted).Round(time.Millisecond))
	var res sendResult
	if err := json.Unmarshal(send.stdout.Bytes(), &res); err != nil {
		t.Fatalf("send printed %q: %v", send.stdout.String(), err)
	}
	resent := res.BytesSent - res.CiphertextSize
	t.Logf("ciphertext %d bytes, sent %d: %d sent again", res.CiphertextSize, res.BytesSent, resent)
	if resent < 0 || resent > chunk {
		t.Errorf("lex sent %d bytes again after the restart; at most the chunk in flight (%d) should go twice", resent, chunk)
	}
	if !strings.Contains(send.stderr.String(), "resuming from the spool") {
		t.Errorf("lex -v did not say it resumed after the cut:\n%s", send.stderr.String())
	}
	receiveSame(t, teamCfg, res.ID, bundle)
}

// TestLexUploadFinishesOnSIGTERM: a gateway asked to stop (SIGTERM) with
// shutdown_grace lets the upload in flight finish before it exits; lex then
// reconnects to the gateway started again and seals the transfer, having sent
// nothing twice.
func TestLexUploadFinishesOnSIGTERM(t *testing.T) {
	w := newWorld(t, "")
	b, _ := os.ReadFile(w.configPath())
	if !bytes.Contains(b, []byte("shutdown_grace: 2s\n")) {
		t.Fatalf("the world's config has no shutdown_grace: 2s:\n%s", b)
	}
	os.WriteFile(w.configPath(), bytes.Replace(b, []byte("shutdown_grace: 2s\n"), []byte("shutdown_grace: 2m0s\n"), 1), 0o600)
	g := w.start("")
	w.pinPort(g)
	// The upload goes through a proxy that passes 8 MB/s, so it is still in
	// flight when the gateway is told to stop.
	p := newSlowProxy(t, g.addr, 8<<20, 2<<20)
	aliceCfg, teamCfg := w.lexConfig(alice, p.addr(), g.logKey), w.lexConfig(team, g.addr, g.logKey)
	mustLex(t, "--config", teamCfg, "keygen")
	mustLex(t, "--config", teamCfg, "register")
	bundle := randomBundle(t, 24<<20)

	send := lex(t.Context(), "--config", aliceCfg, "--transport", "tcp", "-v", "send", "--json", "--streams", "1",
		"--to", team, "--matter", "HL-2026-0042", bundle)
	select {
	case <-p.reached:
	case <-send.done:
		t.Fatalf("lex send ended (exit %d) before its upload was under way:\n%s", send.code, send.stderr.String())
	}
	g.stop()
	if g.err != nil {
		t.Fatalf("lexgate exited with %v after SIGTERM:\n%s", g.err, g.out)
	}
	if !patchCompleted(g.out.String()) {
		t.Fatalf("the upload in flight did not complete before lexgate exited:\n%s", g.out)
	}
	w.start("")
	send.wait(t, 3*time.Minute)
	if send.code != 0 {
		t.Fatalf("lex send across a graceful restart: exit %d\n%s", send.code, send.stderr.String())
	}
	var res sendResult
	if err := json.Unmarshal(send.stdout.Bytes(), &res); err != nil {
		t.Fatalf("send printed %q: %v", send.stdout.String(), err)
	}
	if res.BytesSent != res.CiphertextSize {
		t.Errorf("lex sent %d bytes of a %d-byte ciphertext: nothing should go twice", res.BytesSent, res.CiphertextSize)
	}
	receiveSame(t, teamCfg, res.ID, bundle)
}

// patchCompleted reports whether the gateway's log shows an upload request
// (PATCH) answered with success after it began shutting down.
func patchCompleted(log string) bool {
	_, after, ok := strings.Cut(log, `"msg":"lexgate shutting down"`)
	if !ok {
		return false
	}
	for _, line := range strings.Split(after, "\n") {
		var l struct {
			Msg, Method string
			Status      int
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.Method == "PATCH" && l.Status/100 == 2 {
			return true
		}
	}
	return false
}

// slowProxy forwards TCP connections to a target, passing at most rate bytes a
// second from client to target, and closes reached once after bytes have passed.
type slowProxy struct {
	ln      net.Listener
	target  string
	rate    int
	after   int64
	passed  atomic.Int64
	reached chan struct{}
	once    sync.Once
}

func newSlowProxy(t *testing.T, target string, rate int, after int64) *slowProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{ln: ln, target: target, rate: rate, after: after, reached: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() { p.serve(&wg) })
	return p
}

func (p *slowProxy) addr() string { return p.ln.Addr().String() }

func (p *slowProxy) serve(wg *sync.WaitGroup) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		wg.Go(func() { io.Copy(c, up); c.Close() })
		wg.Go(func() { p.slowCopy(up, c); up.Close() })
	}
}

// slowCopy copies from to to in 64 KiB steps, each taking at least its share
// of a second at the proxy's rate.
func (p *slowProxy) slowCopy(to, from net.Conn) {
	buf := make([]byte, 64<<10)
	step := time.Duration(float64(time.Second) * float64(len(buf)) / float64(p.rate))
	for {
		start := time.Now()
		n, err := from.Read(buf)
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
			if p.passed.Add(int64(n)) >= p.after {
				p.once.Do(func() { close(p.reached) })
			}
			time.Sleep(time.Until(start.Add(step * time.Duration(n) / time.Duration(len(buf)))))
		}
		if err != nil {
			return
		}
	}
}
