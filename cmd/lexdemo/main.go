// Command lexdemo runs lexgate's whole story on 127.0.0.1 with the built lex and
// lexgate binaries, narrating each step: a dev PKI for two organisations, the
// gateway on embedded defaults, key registration, a send, a receive with the
// identical files back, a legacy document management system pushing a file over
// SFTP with the stock OpenSSH client, a send the policy refuses, and governance
// (a send refused for want of the client's consent, a legal hold stopping a
// deletion, a destruction certificate verified offline). "make demo" runs it (the SFTP step needs sftp and ssh-keygen: make deb-deps).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/sftpfront"
	"github.com/lexgate/lexgate/internal/engines"
)

// sentRE finds the transfer id in lex send's summary line.
var sentRE = regexp.MustCompile(`(?m)^sent ([0-9a-zA-Z._-]+):`)

// inboxDMSRE finds the id of a transfer from the DMS, filed under the account's
// matter, in lex inbox's table.
var inboxDMSRE = regexp.MustCompile(`(?m)^(\S+)\s+` + regexp.QuoteMeta(dms) + `\s+HL-2026-0042\s`)

// receiptRE finds the saved receipt in lex send's and lex ack's output.
var receiptRE = regexp.MustCompile(`(?m)^receipt: (\S+)`)

const (
	alice = "spiffe://harbor-law.example/paralegal/alice"
	team  = "spiffe://manila-lpo.example/site/review-team"
	dms   = "spiffe://harbor-law.example/legacy/dms"

	// dmsAccount is the DMS's SSH user name on the SFTP front; teamAlias names
	// the review team under /outbox/.
	dmsAccount = "dms"
	teamAlias  = "review-team"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := flag.String("bin", "bin", "directory holding the lex and lexgate binaries")
	dir := flag.String("dir", "demo-out", "working directory (emptied first)")
	flag.Parse()
	d := &demo{bin: *bin, dir: *dir, out: os.Stdout}
	if err := d.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		d.stopGateway()
		os.Exit(1)
	}
}

type demo struct {
	bin, dir string
	out      io.Writer
	gw       *exec.Cmd
	gwDone   chan error
	gwAddr   string
	sftpPort int    // the SFTP front's port on 127.0.0.1
	dmsKey   string // the DMS's SSH private key file
	logKey   string // the audit log key, pinned in the lex configs
	step     int
	// lastOutput is what the last command printed (stdout and stderr).
	lastOutput string
}

func (d *demo) say(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n\033[1m%d. %s\033[0m\n", d.step, fmt.Sprintf(format, args...))
}

func (d *demo) path(elem ...string) string { return filepath.Join(append([]string{d.dir}, elem...)...) }

// cmd runs one of the binaries (lex, lexgate) or a program on PATH, echoing the
// command and its indented output. It returns stdout and the exit code.
func (d *demo) cmd(ctx context.Context, name string, args ...string) (string, int, error) {
	shown := []string{name}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " '\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		shown = append(shown, a)
	}
	fmt.Fprintf(d.out, "   $ %s\n", strings.Join(shown, " "))
	prog := name
	if name == "lex" || name == "lexgate" {
		prog = filepath.Join(d.bin, name)
	}
	c := exec.CommandContext(ctx, prog, args...)
	var stdout bytes.Buffer
	both := &lockedBuffer{}
	c.Stdout = io.MultiWriter(&stdout, both)
	c.Stderr = both
	err := c.Run()
	d.lastOutput = both.String()
	for _, l := range strings.Split(strings.TrimRight(both.String(), "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(d.out, "     %s\n", l)
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return stdout.String(), ee.ExitCode(), nil
	}
	return stdout.String(), 0, err
}

// lockedBuffer is a buffer that stdout and stderr copiers may write at once.
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

// must runs a command that has to succeed.
func (d *demo) must(ctx context.Context, name string, args ...string) (string, error) {
	out, code, err := d.cmd(ctx, name, args...)
	if err == nil && code != 0 {
		err = fmt.Errorf("%s %s exited with %d", name, args[0], code)
	}
	return out, err
}

func (d *demo) run(ctx context.Context) error {
	if err := os.RemoveAll(d.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "lexgate demo: a German law firm sends a privileged bundle to its LPO site in Manila.")

	d.say("Mint a dev PKI: one SPIFFE trust domain per organisation")
	if _, err := d.must(ctx, "lexgate", "certs", "dev", "--out", d.path("pki")); err != nil {
		return err
	}

	d.say("The firm's document management system cannot run lex: it gets an SSH key for the gateway's SFTP front")
	d.dmsKey = d.path("dms", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(d.dmsKey), 0o700); err != nil {
		return err
	}
	if _, err := d.must(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dms@harbor-law", "-f", d.dmsKey); err != nil {
		return err
	}

	d.say("Start the gateway on embedded defaults (mTLS over QUIC and TCP on one port) with the SFTP front on")
	if err := d.startGateway(ctx); err != nil {
		return err
	}
	d.say("Pin the gateway's audit log key in every lex config (lex checks receipts and the log with it)")
	key, err := d.must(ctx, "lexgate", "log-key", "--config", d.path("lexgate.yaml"))
	if err != nil {
		return err
	}
	d.logKey = strings.TrimSpace(key)
	aliceCfg, err := d.clientConfig("alice", "harbor-law.example/paralegal-alice")
	if err != nil {
		return err
	}
	teamCfg, err := d.clientConfig("review-team", "manila-lpo.example/site-review-team")
	if err != nil {
		return err
	}

	d.say("The Manila review team makes a post-quantum age identity and registers its public key")
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "keygen"); err != nil {
		return err
	}
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "register"); err != nil {
		return err
	}

	d.say("Alice, a paralegal at Harbor Law, sends a bundle for matter HL-2026-0042")
	bundle := d.path("bundle", "HL-2026-0042")
	if err := writeBundle(bundle); err != nil {
		return err
	}
	out, err := d.must(ctx, "lex", "--config", aliceCfg, "-v", "send", "--to", team,
		"--matter", "HL-2026-0042", "--label", "privileged", "--label", "client-confidential", bundle)
	if err != nil {
		return err
	}
	m := sentRE.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("lex send printed no transfer id: %q", out)
	}
	sent := struct{ ID string }{m[1]}
	rm := receiptRE.FindStringSubmatch(out)
	if rm == nil {
		return fmt.Errorf("lex send printed no receipt: %q", out)
	}
	sendReceipt := rm[1]

	d.say("The review team lists its inbox, receives, verifies and decrypts")
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "inbox"); err != nil {
		return err
	}
	recv := d.path("received")
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "receive", sent.ID, "-o", recv); err != nil {
		return err
	}
	if err := sameTree(bundle, filepath.Join(recv, filepath.Base(bundle))); err != nil {
		return fmt.Errorf("received files differ: %w", err)
	}
	fmt.Fprintln(d.out, "   ✓ every received file is byte-for-byte identical to what Alice sent")
	ackReceipt := d.path("review-team", "receipt-"+sent.ID+".json")
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "ack", "--receipt", ackReceipt, sent.ID); err != nil {
		return err
	}

	if err := d.sftpPush(ctx, teamCfg); err != nil {
		return err
	}

	d.say("Both sides check their receipts offline: entry, inclusion proof, signed checkpoint")
	if _, err := d.must(ctx, "lex", "--config", aliceCfg, "verify", sendReceipt); err != nil {
		return err
	}
	if _, err := d.must(ctx, "lex", "--config", teamCfg, "verify", ackReceipt); err != nil {
		return err
	}

	d.say("Alice tries to send health records: no BAA between the firms, so the policy refuses")
	spoolBefore := countFiles(d.path("data", "spool"))
	_, code, err := d.cmd(ctx, "lex", "--config", aliceCfg, "send", "--to", team,
		"--matter", "HL-2026-0042", "--label", "health", bundle)
	if err != nil {
		return err
	}
	if code != 3 {
		return fmt.Errorf("the refused send exited %d, want 3 (refused by policy)", code)
	}
	if after := countFiles(d.path("data", "spool")); after != spoolBefore {
		return fmt.Errorf("the gateway's spool went from %d to %d files after a refusal", spoolBefore, after)
	}
	fmt.Fprintln(d.out, "   ✓ refused with exit code 3; the gateway's spool is unchanged")

	if err := d.governance(ctx, aliceCfg, teamCfg, bundle); err != nil {
		return err
	}

	d.say("Compliance: the matter's audit trail with proofs, and the whole log recomputed")
	exportPath := d.path("audit-HL-2026-0042.jsonl")
	if _, err := d.must(ctx, "lex", "--config", aliceCfg, "audit", "export", "--matter", "HL-2026-0042", "--out", exportPath); err != nil {
		return err
	}
	export, err := os.ReadFile(exportPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   ✓ %d entries for matter HL-2026-0042 in %s, each with its receipt\n", bytes.Count(export, []byte("\n")), exportPath)
	if _, err := d.must(ctx, "lex", "--config", aliceCfg, "audit", "verify"); err != nil {
		return err
	}

	d.say("Stop the gateway (SIGTERM: uploads in flight finish or resume later)")
	if err := d.stopGateway(); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nDone. Everything the demo wrote is in %s/ (gateway log: %s).\n", d.dir, d.path("lexgate.log"))
	return nil
}

func (d *demo) startGateway(ctx context.Context) error {
	port, err := engines.FreePort()
	if err != nil {
		return err
	}
	admin, err := engines.FreePort()
	if err != nil {
		return err
	}
	if d.sftpPort, err = engines.FreePort(); err != nil {
		return err
	}
	pub, err := os.ReadFile(d.dmsKey + ".pub")
	if err != nil {
		return err
	}
	c := gateway.DevConfig("pki", "data") // relative to the config file
	c.Listen, c.Admin = fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", admin)
	c.Log.Format = "json"
	c.Transfer.SweepInterval = time.Second // the demo waits for a retention sweep
	c.SFTP = sftpfront.Config{
		Listen:     fmt.Sprintf("127.0.0.1:%d", d.sftpPort),
		Recipients: map[string]string{teamAlias: team},
		Accounts: []sftpfront.Account{{Name: dmsAccount, ID: dms, AuthorizedKeys: []string{strings.TrimSpace(string(pub))},
			Matter: "HL-2026-0042", Labels: []string{"client-confidential"}}},
	}
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	cfg := "# lexgate config written by the demo\n" + string(b)
	cfgPath := d.path("lexgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimSpace(cfg), "\n") {
		fmt.Fprintf(d.out, "     %s\n", l)
	}
	logf, err := os.OpenFile(d.path("lexgate.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "   $ lexgate serve --config %s &   (logs: %s)\n", cfgPath, d.path("lexgate.log"))
	d.gw = exec.Command(filepath.Join(d.bin, "lexgate"), "serve", "--config", cfgPath)
	d.gw.Stdout, d.gw.Stderr = logf, logf
	if err := d.gw.Start(); err != nil {
		return err
	}
	d.gwDone = make(chan error, 1)
	go func() { d.gwDone <- d.gw.Wait(); logf.Close() }()
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", admin)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.gwDone:
			d.gw = nil
			log, _ := os.ReadFile(d.path("lexgate.log"))
			return fmt.Errorf("the gateway exited (%v):\n%s", err, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			sftpUp := false
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.sftpPort), time.Second); err == nil {
				c.Close()
				sftpUp = true
			}
			if resp.StatusCode == http.StatusOK && sftpUp {
				fmt.Fprintf(d.out, "     gateway healthy at 127.0.0.1:%d (UDP+TCP), admin %s, SFTP 127.0.0.1:%d\n", port, health, d.sftpPort)
				d.gwAddr = fmt.Sprintf("127.0.0.1:%d", port)
				return nil
			}
		}
	}
	return errors.New("the gateway did not become healthy within 15s")
}

func (d *demo) stopGateway() error {
	if d.gw == nil {
		return nil
	}
	d.gw.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.gwDone:
		d.gw = nil
		if err != nil {
			return fmt.Errorf("gateway exit: %w", err)
		}
		fmt.Fprintln(d.out, "     gateway stopped cleanly")
		return nil
	case <-time.After(40 * time.Second):
		d.gw.Process.Kill()
		return errors.New("the gateway did not stop within 40s of SIGTERM")
	}
}

// sftpPush has the DMS put a file into /outbox/<alias>/ with the stock OpenSSH
// sftp client in batch mode; the review team then finds it in its inbox and
// receives it, sealed on ingest by the gateway, byte for byte.
func (d *demo) sftpPush(ctx context.Context, teamCfg string) error {
	d.say("The firm's document management system pushes a file over SFTP (stock OpenSSH client, batch mode)")
	src := d.path("dms", "outgoing", "invoice-HL-2026-0042-03.pdf")
	if err := os.MkdirAll(filepath.Dir(src), 0o700); err != nil {
		return err
	}
	data := make([]byte, 1<<20+4321)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		return err
	}
	batch := d.path("dms", "push.sftp")
	if err := os.WriteFile(batch, []byte(fmt.Sprintf("put %s /outbox/%s/\n", src, teamAlias)), 0o600); err != nil {
		return err
	}
	if _, err := d.must(ctx, "cat", batch); err != nil {
		return err
	}
	if _, err := d.must(ctx, "sftp", "-b", batch, "-i", d.dmsKey, "-P", fmt.Sprint(d.sftpPort),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
		dmsAccount+"@127.0.0.1"); err != nil {
		return err
	}

	d.say("The review team receives it with lex, like any other transfer")
	out, err := d.must(ctx, "lex", "--config", teamCfg, "inbox")
	if err != nil {
		return err
	}
	m := inboxDMSRE.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no transfer from %s for matter HL-2026-0042 in the review team's inbox:\n%s", dms, out)
	}
	recv := d.path("received-sftp")
	out, err = d.must(ctx, "lex", "--config", teamCfg, "receive", m[1], "-o", recv)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "sealed on ingest by ") {
		return fmt.Errorf("lex receive did not say the gateway sealed the transfer on ingest:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(recv, filepath.Base(src)))
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("the received %s (%d bytes) differs from what the DMS put (%d bytes)", filepath.Base(src), len(got), len(data))
	}
	fmt.Fprintln(d.out, "   ✓ the received file is byte-for-byte identical to what the DMS put over SFTP")
	return nil
}
