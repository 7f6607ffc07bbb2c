// Command lexcluster runs lexgate as a cluster on 127.0.0.1 and shows that
// replicas resume each other's work: PostgreSQL (metadata), MariaDB (the one
// audit log) and versitygw (an S3 bucket for the ciphertext), three lexgate replicas on their
// own ports, then a large send started against replica 1, replica 1 killed
// with SIGKILL mid-upload, the same lex send (not run again) moving to
// replica 2 and completing from the durable offset, the transfer received
// through replica 3 and compared byte for byte, lex audit verify over the
// shared log, replica 1 restarted and a file put over SFTP through replica 2
// received through replica 1, and a revocation made through replica 3
// refusing the next request through replica 1. It exits non-zero on any failure and stops everything
// it started. "make cluster-demo" runs it (the engines and the SFTP step come
// from make deb-deps).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lexgate/lexgate/internal/engines"
)

const (
	alice = "spiffe://harbor-law.example/paralegal/alice"
	team  = "spiffe://manila-lpo.example/site/review-team"
	dms   = "spiffe://harbor-law.example/legacy/dms"
	// policyAdmin is the administrator named in policies/data/access.json.
	policyAdmin = "spiffe://harbor-law.example/security/policy-admin"
)

type demo struct {
	bin, dir string
	size     int64
	out      io.Writer
	step     int
	pg       *engines.Postgres
	my       *engines.MariaDB
	s3       *engines.VersityGW
	s3Bin    string
	pgDSN    string // the metadata database
	myDSN    string // the audit log's database
	bucket   string // the ciphertext's bucket
	s3Secret string // the file holding the S3 secret key
	replicas []*replica
	logKey   string
	dmsKey   string
}

type replica struct {
	name, addr, cfg string
	sftpPort        int
	cmd             *exec.Cmd
	done            chan error
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := flag.String("bin", "bin", "directory holding the lex and lexgate binaries")
	dir := flag.String("dir", "cluster-out", "working directory (emptied first)")
	size := flag.Int64("size", 256<<20, "bytes of the large send")
	s3Bin := flag.String("versitygw", "", "the versitygw binary (default: the one make versitygw builds)")
	flag.Parse()
	d := &demo{bin: *bin, dir: *dir, size: *size, out: os.Stdout, s3Bin: *s3Bin}
	err := d.run(ctx)
	if serr := d.stopAll(); err == nil {
		err = serr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ncluster demo failed: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintln(d.out, "\ncluster demo complete: everything it started is stopped.")
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n\033[1m%d. %s\033[0m\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) path(elem ...string) string { return filepath.Join(append([]string{d.dir}, elem...)...) }

// run narrates and checks each step.
func (d *demo) run(ctx context.Context) error {
	var err error
	if d.dir, err = filepath.Abs(d.dir); err != nil {
		return err
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return err
	}
	// 0711: the database servers run as their own users and must reach
	// their directories inside.
	if err := os.MkdirAll(d.dir, 0o711); err != nil {
		return err
	}
	os.Chmod(d.dir, 0o711)
	d.say("Start the engines: PostgreSQL (metadata), MariaDB (the audit log) and versitygw (S3, the ciphertext), private, on loopback ports")
	if err := d.startEngines(ctx); err != nil {
		return err
	}

	d.say("Mint a dev PKI and an SSH key for the firm's DMS; start three lexgate replicas sharing the store, the bucket and the log")
	if _, err := d.must(ctx, "lexgate", "certs", "dev", "--out", d.path("pki")); err != nil {
		return err
	}
	d.dmsKey = d.path("dms", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(d.dmsKey), 0o700); err != nil {
		return err
	}
	if _, err := d.mustAny(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dms@harbor-law", "-f", d.dmsKey); err != nil {
		return err
	}
	for _, name := range []string{"r1", "r2", "r3"} {
		r, err := d.startReplica(ctx, name)
		if err != nil {
			return fmt.Errorf("replica %s: %w", name, err)
		}
		d.replicas = append(d.replicas, r)
	}
	key, err := d.must(ctx, "lexgate", "log-key", "--config", d.replicas[0].cfg)
	if err != nil {
		return err
	}
	d.logKey = strings.TrimSpace(key)

	d.say("lex is given every replica's address: Alice lists replica 1 first, the review team replica 3")
	r1, r2, r3 := d.replicas[0].addr, d.replicas[1].addr, d.replicas[2].addr
	aliceCfg, err := d.clientConfig("alice", "harbor-law.example/paralegal-alice", r1, r2, r3)
	if err != nil {
		return err
	}
	teamCfg, err := d.clientConfig("team", "manila-lpo.example/site-review-team", r3, r1, r2)
	if err != nil {
		return err
	}
	for _, c := range []string{aliceCfg, teamCfg} {
		if _, err := d.must(ctx, "lex", "--config", c, "keygen"); err != nil {
			return err
		}
		if _, err := d.must(ctx, "lex", "--config", c, "register"); err != nil {
			return err
		}
	}
	if err := d.failover(ctx, aliceCfg, teamCfg); err != nil {
		return err
	}
	if err := d.sftpAcross(ctx); err != nil {
		return err
	}
	return d.revokeAcross(ctx)
}

// sftpAcross restarts replica 1, has the DMS put a file over SFTP through
// replica 2, and the review team receive it through replica 1.
func (d *demo) sftpAcross(ctx context.Context) error {
	d.say("Replica 1 comes back; the DMS puts a file over SFTP through replica 2 (stock OpenSSH client)")
	r1, err := d.startReplica(ctx, "r1")
	if err != nil {
		return fmt.Errorf("restarting replica r1: %w", err)
	}
	d.replicas[0] = r1
	src := d.path("dms", "invoice-HL-2026-0042-03.pdf")
	if err := writeRandom(src, 1<<20+4321); err != nil {
		return err
	}
	batch := d.path("dms", "push.sftp")
	if err := os.WriteFile(batch, []byte(fmt.Sprintf("put %s /outbox/review-team/\n", src)), 0o600); err != nil {
		return err
	}
	if _, err := d.mustAny(ctx, "sftp", "-b", batch, "-i", d.dmsKey, "-P", fmt.Sprint(d.replicas[1].sftpPort),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "dms@127.0.0.1"); err != nil {
		return err
	}

	d.say("The review team receives it through replica 1")
	teamCfg, err := d.clientConfig("team-via-r1", "manila-lpo.example/site-review-team", r1.addr)
	if err != nil {
		return err
	}
	idFile, err := os.ReadFile(d.path("team", "identity.age")) // the team's own age identity
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.path("team-via-r1", "identity.age"), idFile, 0o600); err != nil {
		return err
	}
	out, err := d.must(ctx, "lex", "--config", teamCfg, "inbox")
	if err != nil {
		return err
	}
	var id string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == dms {
			id = f[0]
		}
	}
	if id == "" {
		return fmt.Errorf("no transfer from %s in the inbox through replica 1:\n%s", dms, out)
	}
	recv := d.path("received-sftp")
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "receive", id, "-o", recv); err != nil {
		return err
	}
	if err := sameFile(src, filepath.Join(recv, filepath.Base(src))); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "   ✓ put through replica 2, received through replica 1, byte for byte")
	return nil
}

// failover is the heart of the demo: kill replica 1 mid-upload, finish
// through replica 2, receive through replica 3, verify the log.
func (d *demo) failover(ctx context.Context, aliceCfg, teamCfg string) error {
	bundle := d.path("bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return err
	}
	if err := writeRandom(filepath.Join(bundle, "scans.bin"), d.size); err != nil {
		return err
	}
	// 16 MiB chunks: each is durable when its request ends, so the kill
	// finds some of the upload durable and the rest not.
	send := []string{"--config", aliceCfg, "-v", "send", "--json", "--chunk", "16MiB", "--to", team,
		"--matter", "HL-2026-0042", "--label", "privileged", bundle}

	d.say("Alice sends %d MiB; replica 1 is killed with SIGKILL in the middle of the upload; the same lex send moves to replica 2", d.size>>20)
	db, err := sql.Open("pgx", d.pgDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	first := d.startCapture(ctx, "lex", send...)
	durable, err := d.killMidUpload(ctx, db, first)
	if err != nil {
		return err
	}
	killed := time.Now()
	// Failover time: from the kill to the store holding more than was
	// durable then, which only another replica can have written.
	moved, err := d.progressPast(ctx, db, durable, first)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "     failover: bytes flowing through another replica %v after the SIGKILL\n", moved.Sub(killed).Round(time.Millisecond))
	if err := <-first.done; err != nil {
		return fmt.Errorf("the lex send did not complete through the next replica: %w", err)
	}
	fmt.Fprintf(d.out, "     the same lex send finished %v after the kill, no re-run\n", time.Since(killed).Round(time.Millisecond))
	out := first.stdout.String()
	var sent struct {
		ID             string `json:"id"`
		CiphertextSize int64  `json:"ciphertext_size"`
		BytesSent      int64  `json:"bytes_sent"`
	}
	if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.ID == "" {
		return fmt.Errorf("lex send printed %q: %v", out, err)
	}
	resent := sent.BytesSent - sent.CiphertextSize
	if resent >= durable {
		return fmt.Errorf("the send put %d bytes on the wire for %d of ciphertext: it sent again what was durable (%d bytes)", sent.BytesSent, sent.CiphertextSize, durable)
	}
	fmt.Fprintf(d.out, "   ✓ transfer %s completed through replica 2 in the same run: the %d durable bytes were not sent again (%d bytes in flight at the kill were)\n",
		sent.ID, durable, max(resent, 0))

	d.say("The review team receives through replica 3 and compares byte for byte")
	recv := d.path("received")
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "receive", sent.ID, "-o", recv); err != nil {
		return err
	}
	if err := sameFile(filepath.Join(bundle, "scans.bin"), filepath.Join(recv, "bundle", "scans.bin")); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "   ✓ the received file is identical to what Alice sent")

	d.say("The one audit log, served by any replica, recomputed and verified")
	_, err = d.must(ctx, "lex", "--config", teamCfg, "audit", "verify")
	return err
}

// progressPast waits until the store holds more of the upload than durable
// bytes and returns when it saw that.
func (d *demo) progressPast(ctx context.Context, db *sql.DB, durable int64, send *proc) (time.Time, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var got sql.NullInt64
		err := db.QueryRowContext(ctx, `SELECT max(received + coalesce((SELECT sum(hi - lo) FROM upload_ranges u WHERE u.transfer_id = t.id), 0))
			FROM transfers t WHERE state IN ('uploading', 'ready') AND ciphertext_size > 0`).Scan(&got)
		if err != nil {
			return time.Time{}, fmt.Errorf("reading the upload's progress: %w", err)
		}
		if got.Valid && got.Int64 > durable {
			return time.Now(), nil
		}
		select {
		case err := <-send.done:
			send.done <- err
			if err != nil {
				return time.Time{}, fmt.Errorf("lex send gave up after the kill: %w", err)
			}
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return time.Time{}, errors.New("no upload progress on another replica within 5 minutes of the kill")
		}
	}
}

// revokeAcross revokes Alice through replica 3 and shows her next request
// through replica 1 refused at once.
func (d *demo) revokeAcross(ctx context.Context) error {
	d.say("The security admin revokes Alice through replica 3; her very next request through replica 1 is refused")
	ca := d.path("pki", "harbor-law.example")
	if _, err := d.must(ctx, "lexgate", "certs", "issue", "--ca", ca, "--id", policyAdmin,
		"--cert", filepath.Join(ca, "security-policy-admin.crt"), "--key", filepath.Join(ca, "security-policy-admin.key")); err != nil {
		return err
	}
	adminCfg, err := d.clientConfig("admin", "harbor-law.example/security-policy-admin", d.replicas[2].addr)
	if err != nil {
		return err
	}
	aliceCfg, err := d.clientConfig("alice-via-r1", "harbor-law.example/paralegal-alice", d.replicas[0].addr)
	if err != nil {
		return err
	}
	if _, err := d.must(ctx, "lex", "--config", aliceCfg, "inbox"); err != nil {
		return fmt.Errorf("alice through replica 1 before the revocation: %w", err)
	}
	if _, err := d.must(ctx, "lex", "--config", adminCfg, "admin", "revoke", alice, "--reason", "laptop stolen"); err != nil {
		return err
	}
	answered := time.Now()
	fmt.Fprintf(d.out, "   $ lex --config %s inbox   (must fail)\n", aliceCfg)
	c := exec.CommandContext(ctx, filepath.Join(d.bin, "lex"), "--config", aliceCfg, "--reconnect", "0", "inbox")
	var stderr bytes.Buffer
	c.Stdout, c.Stderr = indent{d.out}, io.MultiWriter(&stderr, indent{d.out})
	if err := c.Run(); err == nil {
		return errors.New("alice's request through replica 1 succeeded after her revocation through replica 3")
	}
	// Replica 1 refuses either the handshake (its deny list already holds
	// Alice: lex hears only that its certificate was refused) or the
	// request (identity.revoked); its log names the revocation either way.
	r1log, err := os.ReadFile(d.path("r1.log"))
	if err != nil {
		return err
	}
	if !strings.Contains(stderr.String(), "revoked") && !bytes.Contains(r1log, []byte("SPIFFE ID is revoked: "+alice)) {
		return fmt.Errorf("alice's request through replica 1 failed, but not for her revocation: %s", stderr.String())
	}
	fmt.Fprintf(d.out, "   ✓ revoked through replica 3, refused through replica 1 %v later\n", time.Since(answered).Round(time.Millisecond))
	return nil
}

// killMidUpload waits until the store holds part of the send's ciphertext,
// kills replica 1 with SIGKILL, and returns how many bytes were durable then.
func (d *demo) killMidUpload(ctx context.Context, db *sql.DB, send *proc) (int64, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var got, size sql.NullInt64
		err := db.QueryRowContext(ctx, `SELECT max(received + coalesce((SELECT sum(hi - lo) FROM upload_ranges u WHERE u.transfer_id = t.id), 0)),
			max(ciphertext_size) FROM transfers t WHERE state = 'uploading'`).Scan(&got, &size)
		if err != nil {
			return 0, fmt.Errorf("reading the upload's progress: %w", err)
		}
		if got.Valid && got.Int64 >= d.size/4 && got.Int64 < d.size/2 { // a quarter in, still uploading
			d.replicas[0].cmd.Process.Kill()
			<-d.replicas[0].done
			d.replicas[0].cmd = nil
			fmt.Fprintf(d.out, "     SIGKILL to replica 1 with %d bytes stored (of %d declared so far)\n", got.Int64, size.Int64)
			var after int64
			if err := db.QueryRowContext(ctx, `SELECT max(received) FROM transfers WHERE state = 'uploading'`).Scan(&after); err != nil {
				return 0, err
			}
			return after, nil
		}
		select {
		case err := <-send.done:
			send.done <- err
			return 0, fmt.Errorf("the send ended (%v) before replica 1 could be killed mid-upload: run with a larger -size", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, errors.New("no upload progress within 5 minutes")
		}
	}
}

func (d *demo) startReplica(ctx context.Context, name string) (*replica, error) {
	port, err := engines.FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := engines.FreePort()
	if err != nil {
		return nil, err
	}
	r := &replica{name: name, addr: fmt.Sprintf("127.0.0.1:%d", port), cfg: d.path(name + ".yaml")}
	if r.sftpPort, err = engines.FreePort(); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(d.dmsKey + ".pub")
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`# replica %[1]s of the demo cluster
listen: %[2]s
admin_listen: 127.0.0.1:%[3]d
log:
  format: json
identity:
  svid_cert: pki/harbor-law.example/gateway.crt
  svid_key: pki/harbor-law.example/gateway.key
  bundles:
    harbor-law.example: pki/harbor-law.example/bundle.pem
    manila-lpo.example: pki/manila-lpo.example/bundle.pem
store:
  dir: %[1]s-data
  driver: postgres
  postgres:
    dsn: %[4]s
  replica: %[1]s
  ciphertext: s3
  s3:
    endpoint: %[10]s
    bucket: %[11]s
    access_key_id: %[12]s
    secret_key_file: %[13]s
audit:
  key_file: shared-audit.key
  mysql:
    dsn: %[5]s
sftp:
  listen: 127.0.0.1:%[6]d
  recipients:
    review-team: %[7]s
  accounts:
    - name: dms
      spiffe_id: %[8]s
      authorized_keys: [%[9]q]
      matter: HL-2026-0042
      labels: [client-confidential]
`, name, r.addr, admin, d.pgDSN, d.myDSN, r.sftpPort, team, dms, strings.TrimSpace(string(pub)),
		d.s3.Endpoint(), d.bucket, d.s3.AccessKey, d.s3Secret)
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(d.path(name + ".log"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(d.out, "   $ lexgate serve --config %s &   (%s, logs: %s)\n", r.cfg, r.addr, d.path(name+".log"))
	r.cmd = exec.Command(filepath.Join(d.bin, "lexgate"), "serve", "--config", r.cfg)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	r.done = make(chan error, 1)
	go func() { r.done <- r.cmd.Wait(); logf.Close() }()
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", admin)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-r.done:
			r.cmd = nil
			log, _ := os.ReadFile(d.path(name + ".log"))
			return nil, fmt.Errorf("exited at start (%v):\n%s", err, log)
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			return r, errors.New("not healthy within 60s")
		}
	}
}

// stopAll stops the replicas still running and the engines.
func (d *demo) stopAll() error {
	var errs []error
	for _, r := range d.replicas {
		if r.cmd == nil {
			continue
		}
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(40 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
			errs = append(errs, fmt.Errorf("replica %s did not stop within 40s of SIGTERM", r.name))
		}
	}
	// The engines' directories stay in the demo's, with their logs.
	if d.my != nil {
		errs = append(errs, d.my.StopServer())
	}
	if d.s3 != nil {
		errs = append(errs, d.s3.StopServer())
	}
	if d.pg != nil {
		errs = append(errs, d.pg.StopServer(context.Background()))
	}
	return errors.Join(errs...)
}

func (d *demo) clientConfig(user, svid string, gateways ...string) (string, error) {
	home := d.path(user)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`gateway: %s
gateway_id: spiffe://harbor-law.example/gateway
svid_cert: ../pki/%s.crt
svid_key: ../pki/%s.key
bundles:
  harbor-law.example: ../pki/harbor-law.example/bundle.pem
  manila-lpo.example: ../pki/manila-lpo.example/bundle.pem
identity: identity.age
cache_dir: cache
log_key: %s
`, strings.Join(gateways, ","), svid, svid, d.logKey)
	path := filepath.Join(home, "config.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// proc is a command running in the background.
type proc struct {
	done   chan error
	stdout *bytes.Buffer // with startCapture: its standard output, once done
}

// startCapture runs a command in the background, echoing it and its
// standard error; its standard output is kept (read it after done).
func (d *demo) startCapture(ctx context.Context, name string, args ...string) *proc {
	fmt.Fprintf(d.out, "   $ %s %s &\n", name, strings.Join(args, " "))
	c := exec.CommandContext(ctx, filepath.Join(d.bin, name), args...)
	p := &proc{done: make(chan error, 1), stdout: &bytes.Buffer{}}
	c.Stdout, c.Stderr = p.stdout, indent{d.out}
	if err := c.Start(); err != nil {
		p.done <- err
		return p
	}
	go func() { p.done <- c.Wait() }()
	return p
}

// must runs a command that has to succeed, echoing it and its output, and
// returns its stdout.
func (d *demo) must(ctx context.Context, name string, args ...string) (string, error) {
	fmt.Fprintf(d.out, "   $ %s %s\n", name, strings.Join(args, " "))
	c := exec.CommandContext(ctx, filepath.Join(d.bin, name), args...)
	var stdout bytes.Buffer
	c.Stdout, c.Stderr = io.MultiWriter(&stdout, indent{d.out}), indent{d.out}
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w", name, args[0], err)
	}
	return stdout.String(), nil
}

// mustAny is must for a program on PATH.
func (d *demo) mustAny(ctx context.Context, name string, args ...string) (string, error) {
	fmt.Fprintf(d.out, "   $ %s %s\n", name, strings.Join(args, " "))
	c := exec.CommandContext(ctx, name, args...)
	var stdout bytes.Buffer
	c.Stdout, c.Stderr = io.MultiWriter(&stdout, indent{d.out}), indent{d.out}
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return stdout.String(), nil
}

// indent writes each line indented, under the command that printed it.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	for _, l := range strings.Split(s, "\n") {
		fmt.Fprintf(i.w, "     %s\n", l)
	}
	return len(p), nil
}

func writeRandom(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func sameFile(a, b string) error {
	ha, err := sumFile(a)
	if err != nil {
		return err
	}
	hb, err := sumFile(b)
	if err != nil {
		return err
	}
	if !bytes.Equal(ha, hb) {
		return fmt.Errorf("%s and %s differ", a, b)
	}
	return nil
}

func sumFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
