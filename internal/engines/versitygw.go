package engines

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// VersityGWVersion is the versitygw release the tests and make cluster-demo
// run, pinned in cmd/internal/tools/versitygw/go.mod; [VersityGWBin] builds
// it from there.
const VersityGWVersion = "v1.8.0"

// VersityGW is a private versitygw S3 server over a POSIX directory, on a
// loopback port, with root credentials of its own. It can be stopped and
// started again on the same port and directory, for tests of an object store
// that goes away mid-upload.
type VersityGW struct {
	bin, dir string
	port     int
	// AccessKey and SecretKey are the server's root credentials.
	AccessKey string
	SecretKey string
	cmd       *exec.Cmd
	done      chan error
	n         atomic.Int64
}

// VersityGWBin returns the versitygw binary: $LEXGATE_TOOLS_DIR (default
// ~/.cache/lexgate-tools)/versitygw-<version>/versitygw, built there from the
// nested tools module when missing (make tools-heavy builds it ahead).
func VersityGWBin() (string, error) {
	root := os.Getenv("LEXGATE_TOOLS_DIR")
	if root == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("engines: no user cache directory (%v): set LEXGATE_TOOLS_DIR", err)
		}
		root = filepath.Join(base, "lexgate-tools")
	}
	dir := filepath.Join(root, "versitygw-"+VersityGWVersion)
	bin := filepath.Join(dir, "versitygw")
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil { // built by another process meanwhile
		return bin, nil
	}
	return bin, buildVersityGW(dir)
}

func buildVersityGW(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("engines: versitygw is not built and this is not the lexgate module: run make tools-heavy")
	}
	mod := filepath.Join(filepath.Dir(gomod), "cmd", "internal", "tools", "versitygw")
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return fmt.Errorf("engines: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "build", "-o", tmp+"/", "github.com/versity/versitygw/cmd/versitygw")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("engines: building versitygw in %s: %v\n%s", mod, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), filepath.Join(dir, "versitygw")); err != nil {
		return fmt.Errorf("engines: %w", err)
	}
	return nil
}

// StartVersityGW starts versitygw on a new temporary directory ([InDir]
// says where it goes) and a free loopback port, with random root
// credentials, and waits until it answers. [Binary] names the program, else
// [VersityGWBin] finds or builds it. Stop it with [VersityGW.Stop].
func StartVersityGW(ctx context.Context, opts ...Option) (*VersityGW, error) {
	o := collect(opts)
	bin := o.bin
	if bin == "" {
		var err error
		if bin, err = VersityGWBin(); err != nil {
			return nil, err
		}
	} else if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("engines: versitygw binary %s not usable (make versitygw builds one): %v", bin, err)
	}
	dir, err := os.MkdirTemp(o.parent, "lexgate-versitygw-")
	if err != nil {
		return nil, fmt.Errorf("engines: %w", err)
	}
	v := &VersityGW{bin: bin, dir: dir, AccessKey: "lexgate-" + randHex(4), SecretKey: randHex(20)}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("engines: %w", err)
	}
	if v.port, err = FreePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := v.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return v, nil
}

// Start (re)starts the server on its port and directory and waits until it
// answers.
func (v *VersityGW) Start(ctx context.Context) error {
	log, err := os.OpenFile(filepath.Join(v.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("engines: %w", err)
	}
	defer log.Close()
	v.cmd = exec.Command(v.bin, "--port", v.Addr(), "posix", filepath.Join(v.dir, "data"))
	v.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+v.AccessKey, "ROOT_SECRET_KEY="+v.SecretKey)
	v.cmd.Stdout, v.cmd.Stderr = log, log
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		return fmt.Errorf("engines: versitygw: %w", err)
	}
	v.done = make(chan error, 1)
	go func() { v.done <- v.cmd.Wait() }()
	if err := v.ready(ctx); err != nil {
		v.StopServer()
		b, _ := os.ReadFile(filepath.Join(v.dir, "log"))
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// ready waits until the port answers HTTP, the server exits, or 60 s pass.
func (v *VersityGW) ready(ctx context.Context) error {
	c := &http.Client{Timeout: 2 * time.Second}
	return waitReady(ctx, "versitygw on "+v.Addr(), v.done, func() error {
		resp, err := c.Get(v.Endpoint())
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
}

// Addr is the server's host:port.
func (v *VersityGW) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(v.port)) }

// Endpoint is the server's URL.
func (v *VersityGW) Endpoint() string { return "http://" + v.Addr() }

// NewBucket creates a bucket of a new name, a directory under the server's
// root (versitygw's posix backend keeps a bucket as a directory), and returns
// its name.
func (v *VersityGW) NewBucket() (string, error) {
	name := fmt.Sprintf("lexgate-%d-%s", v.n.Add(1), randHex(3))
	if err := os.Mkdir(filepath.Join(v.dir, "data", name), 0o700); err != nil {
		return "", fmt.Errorf("engines: bucket: %w", err)
	}
	return name, nil
}

// WriteSecret writes the secret key to a new 0600 file in dir and returns
// its path, for a store config's s3.secret_key_file.
func (v *VersityGW) WriteSecret(dir string) (string, error) {
	p := filepath.Join(dir, "s3-secret")
	if err := os.WriteFile(p, []byte(v.SecretKey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("engines: %w", err)
	}
	return p, nil
}

// StopServer stops the server (SIGTERM, then SIGKILL after 10 s) and keeps
// its directory, so that Start brings it back with its buckets.
func (v *VersityGW) StopServer() error {
	if v.cmd == nil || v.cmd.Process == nil {
		return nil
	}
	// Killed after the grace period is no error: a test stopping the
	// object store wants it gone, however it goes.
	terminate(v.cmd, v.done, 10*time.Second)
	v.cmd = nil
	return nil
}

// Stop stops the server and removes its directory.
func (v *VersityGW) Stop() error {
	err := v.StopServer()
	if rerr := os.RemoveAll(v.dir); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return errors.Join(err, rerr)
	}
	return err
}
