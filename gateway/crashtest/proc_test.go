package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/internal/enginetest"
	"github.com/lexgate/lexgate/gateway/store"
)

// The dev PKI's identities the tests use.
const (
	alice     = "spiffe://harbor-law.example/paralegal/alice"
	team      = "spiffe://manila-lpo.example/site/review-team"
	gatewayID = "spiffe://harbor-law.example/gateway"
)

// lexgateBin is the lexgate binary built with -tags crashpoints by TestMain.
var lexgateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lexgate-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lexgateBin = filepath.Join(dir, "lexgate")
	build := exec.Command("go", "build", "-tags", "crashpoints", "-o", lexgateBin, "github.com/lexgate/lexgate/cmd/lexgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "crashtest: go build -tags crashpoints ./cmd/lexgate:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is a PKI and a data directory that gateways come and go on.
type world struct {
	t    *testing.T
	dir  string
	pki  string
	data string
	// auditDir and auditKey are the audit log's files (default in data).
	auditDir, auditKey string
	// storeCfg and auditMySQL, when set, are the cluster backends the
	// gateway runs on (see newClusterWorld); checkAgreement opens them.
	storeCfg   *store.Config
	auditMySQL string
}

// newWorld mints a PKI and writes a gateway config whose store is in data (a
// fresh directory if ""); extra is appended to the config.
func newWorld(t *testing.T, data string, extra ...string) *world {
	t.Helper()
	return newWorldWith(t, data, nil, extra...)
}

// newWorldWith is newWorld with edit, if not nil, applied to the config
// before it is written.
func newWorldWith(t *testing.T, data string, edit func(*gateway.Config), extra ...string) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{t: t, dir: dir, pki: filepath.Join(dir, "pki"), data: data}
	if w.data == "" {
		w.data = filepath.Join(dir, "data")
	}
	w.auditDir, w.auditKey = filepath.Join(w.data, "audit"), filepath.Join(w.data, "audit.key")
	if err := certs.MintDev(w.pki, certs.DefaultDevSpec()); err != nil {
		t.Fatal(err)
	}
	c := gateway.DevConfig(w.pki, w.data)
	c.ShutdownGrace = 2 * time.Second
	c.Log = gateway.LogConfig{Level: "info", Format: "json"}
	if edit != nil {
		edit(&c)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b) + strings.Join(extra, "\n")
	if err := os.WriteFile(w.configPath(), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) configPath() string { return filepath.Join(w.dir, "lexgate.yaml") }

// svidFiles returns the certificate and key of a dev identity.
func (w *world) svidFiles(id string) (string, string) {
	td, path, _ := strings.Cut(strings.TrimPrefix(id, "spiffe://"), "/")
	base := filepath.Join(w.pki, td, strings.ReplaceAll(path, "/", "-"))
	return base + ".crt", base + ".key"
}

// gw is one lexgate process.
type gw struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	admin  string // the admin listener's address (/metrics)
	logKey string
	out    *lockedBuffer // everything it wrote on stderr
	exited chan struct{}
	err    error // the process's exit, once exited is closed
}

// start runs lexgate serve on the world's data; crashAt is its LEXGATE_CRASH_AT.
func (w *world) start(crashAt string) *gw {
	w.t.Helper()
	return w.startConfig(w.configPath(), crashAt)
}

// startConfig runs lexgate serve with the config file at path.
func (w *world) startConfig(path, crashAt string) *gw {
	w.t.Helper()
	g := &gw{t: w.t, out: &lockedBuffer{}, exited: make(chan struct{})}
	g.cmd = exec.Command(lexgateBin, "serve", "--config", path)
	g.cmd.Env = append(os.Environ(), "LEXGATE_CRASH_AT="+crashAt)
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	ready := make(chan struct{})
	go g.read(stderr, ready)
	t := w.t
	t.Cleanup(func() {
		g.kill()
		if t.Failed() {
			t.Logf("lexgate's log:\n%s", g.out)
		}
	})
	select {
	case <-ready:
	case <-g.exited:
		w.t.Fatalf("lexgate exited at start (%v):\n%s", g.err, g.out)
	case <-time.After(60 * time.Second):
		w.t.Fatalf("lexgate did not start in 60s:\n%s", g.out)
	}
	return g
}

// read copies the gateway's log, learns its address and log key, and notes its exit.
func (g *gw) read(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	once := sync.Once{}
	for sc.Scan() {
		line := sc.Bytes()
		g.out.Write(append(append([]byte{}, line...), '\n'))
		var l struct {
			Msg    string `json:"msg"`
			Addr   string `json:"addr"`
			Admin  string `json:"admin"`
			LogKey string `json:"log_key"`
		}
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		switch l.Msg {
		case "audit log open":
			g.logKey = l.LogKey
		case "lexgate serving":
			g.addr, g.admin = l.Addr, l.Admin
			once.Do(func() { close(ready) })
		}
	}
	g.err = g.cmd.Wait()
	close(g.exited)
}

// kill sends SIGKILL and waits for the process to go.
func (g *gw) kill() {
	g.cmd.Process.Signal(syscall.SIGKILL)
	<-g.exited
}

// stop asks for a graceful shutdown (SIGTERM) and waits.
func (g *gw) stop() {
	g.t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		g.t.Errorf("lexgate did not stop in 30s")
		g.kill()
	}
}

// waitCrash waits for the process to kill itself at point.
func (g *gw) waitCrash(point string) {
	g.t.Helper()
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		g.t.Fatalf("lexgate did not reach crash point %s in 30s", point)
	}
	if !strings.Contains(g.out.String(), "crashpoint: "+point+"\n") {
		g.t.Fatalf("lexgate exited (%v) without reaching crash point %s:\n%s", g.err, point, g.out)
	}
}

// client dials the gateway as id over TCP.
func (w *world) client(g *gw, id string) *cli.Client {
	w.t.Helper()
	cert, key := w.svidFiles(id)
	cfg := &cli.Config{Gateway: g.addr, GatewayID: gatewayID, SVIDCert: cert, SVIDKey: key,
		Bundles: map[string]string{
			"harbor-law.example": filepath.Join(w.pki, "harbor-law.example", "bundle.pem"),
			"manila-lpo.example": filepath.Join(w.pki, "manila-lpo.example", "bundle.pem"),
		}, LogKey: g.logKey, Path: filepath.Join(w.dir, "lex.yaml")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cli.Dial(ctx, cfg, cli.TransportTCP, nil)
	if err != nil {
		w.t.Fatalf("dial %s as %s: %v", g.addr, id, err)
	}
	w.t.Cleanup(func() { c.Close() })
	return c
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newClusterWorld is newWorld on the cluster backends: metadata in a
// private PostgreSQL cluster, the audit log in a private MariaDB, both
// started for the test; the ciphertext in the spool in data, or with
// ciphertext "s3" in a bucket of a private versitygw.
func newClusterWorld(t *testing.T, ciphertext string) *world {
	t.Helper()
	return newClusterWorldWith(t, ciphertext, nil)
}

// newClusterWorldWith is newClusterWorld with edit, if not nil, applied to
// the config before it is written.
func newClusterWorldWith(t *testing.T, ciphertext string, edit func(*gateway.Config)) *world {
	t.Helper()
	pg := enginetest.NewPostgres(t)
	my := enginetest.NewMariaDB(t)
	pgDSN, err := pg.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	myDSN, err := my.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{"  driver: postgres", "  replica: r1", "  postgres:", "    dsn: " + pgDSN}
	var s3cfg store.S3Config
	if ciphertext == store.CiphertextS3 {
		// 5 MiB parts: the tests' 7 MiB uploads span two, so crashes meet
		// parts assembled from pieces as well as parts sent whole.
		s3cfg = startS3(t)
		s3cfg.PartSizeMiB = 5
		extra = append(extra, "  ciphertext: s3", "  s3:", "    endpoint: "+s3cfg.Endpoint, "    bucket: "+s3cfg.Bucket,
			"    access_key_id: "+s3cfg.AccessKeyID, "    secret_key_file: "+s3cfg.SecretKeyFile, "    part_size_mib: 5")
	}
	w := newWorldWith(t, "", edit, append(extra, "audit:", "  mysql:", "    dsn: "+myDSN, "")...)
	w.storeCfg = &store.Config{Dir: w.data, Driver: store.DriverPostgres, Replica: "r1",
		Postgres: store.PostgresConfig{DSN: pgDSN}}
	if ciphertext == store.CiphertextS3 {
		w.storeCfg.Ciphertext, w.storeCfg.S3 = store.CiphertextS3, s3cfg
	}
	w.auditMySQL = myDSN
	return w
}

// startS3 starts a private versitygw for the test and returns the config of
// a bucket on it.
func startS3(t *testing.T) store.S3Config {
	t.Helper()
	gw := enginetest.NewVersityGW(t)
	bucket, err := gw.NewBucket()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := gw.WriteSecret(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return store.S3Config{Endpoint: gw.Endpoint(), Bucket: bucket, AccessKeyID: gw.AccessKey, SecretKeyFile: secret}
}
