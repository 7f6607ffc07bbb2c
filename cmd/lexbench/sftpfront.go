package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The SFTP front mode (-sftp-front): the same stock OpenSSH sftp client puts and
// gets the test file through lexgate's SFTP front (encrypted on ingest to the
// account's registered age key, sealed, stored; the get downloads the delivery's
// ciphertext from /inbox) beside the throwaway sshd of the sftp stage.
const (
	rowFrontPut = "sftp put via front"
	rowFrontGet = "sftp get via front"

	// frontAccount is the SSH user of the front; it acts as the review team and
	// uploads to itself (/outbox/self), so the upload lands in its own /inbox.
	frontAccount = "bench"

	targetFrontPut = 0.7 // sftp put via front ≥ 0.7× sftp put to sshd
	targetFrontGet = 0.8 // sftp get via front ≥ 0.8× sftp get from sshd
)

// benchFront starts a gateway with its SFTP front, registers the account's age
// key, and times sftp put and get of the test file through the front.
func (b *bench) benchFront(ctx context.Context) error {
	pki := b.path("pki")
	if _, err := runTimed(ctx, "", b.lexgate, "certs", "dev", "--out", pki); err != nil {
		return err
	}
	key := b.path("sshd", "client_ed25519") // the sftp stage's client key
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return fmt.Errorf("the sftp stage's client key: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	g, err := b.startGateway(ctx, b.path("gateway-sftp"), pki, fmt.Sprintf(`sftp:
  listen: 127.0.0.1:%[1]d
  recipients:
    self: %[2]s
  accounts:
    - name: %[3]s
      spiffe_id: %[2]s
      authorized_keys: [%[4]q]
      matter: %[5]s
`, port, team, frontAccount, strings.TrimSpace(string(pub)), matter))
	if err != nil {
		return err
	}
	b.logf("gateway with SFTP front on 127.0.0.1:%d (pid %d, log %s)", port, g.pid(), g.log)
	teamCfg, err := b.clientConfig(g, "review-team", "tcp", pki, teamSVID)
	if err != nil {
		return err
	}
	for _, args := range [][]string{{"keygen"}, {"--transport", "tcp", "register"}} {
		if _, err := runTimed(ctx, "", b.lex, append([]string{"--config", teamCfg}, args...)...); err != nil {
			return err
		}
	}
	stats := &gatewayStats{Transport: "sftp front"}
	b.rep.Gateways = append(b.rep.Gateways, stats)
	local, err := mkdir(b.path("sftp-front", "local"))
	if err != nil {
		return err
	}
	f := frontClient{dir: b.path("sftp-front"), key: key, port: port, cipher: b.opt.cipher}
	for i := range b.opt.runs {
		g.mon.reset()
		cpu0, _ := g.mon.cpu()
		r, err := f.sftp(ctx, fmt.Sprintf("put %s /outbox/self/bench.bin", quote(b.file)))
		if err != nil {
			return fmt.Errorf("sftp put via the front: %w", err)
		}
		b.gatewayPhase(g, rowFrontPut, &stats.SendPeakRSSMiB, cpu0)
		b.record(rowFrontPut, i, r.wall, r.cpu)
		ls, err := f.sftp(ctx, "ls -1 /inbox")
		if err != nil {
			return fmt.Errorf("sftp ls /inbox: %w", err)
		}
		name := deliveryName(ls.stdout)
		if name == "" {
			return fmt.Errorf("the upload is not in /inbox: %q", ls.stdout)
		}
		down := filepath.Join(local, name)
		g.mon.reset()
		cpu0, _ = g.mon.cpu()
		r, err = f.sftp(ctx, fmt.Sprintf("get /inbox/%s %s", name, quote(down)))
		if err != nil {
			return fmt.Errorf("sftp get via the front: %w", err)
		}
		b.gatewayPhase(g, rowFrontGet, &stats.ReceivePeakRSSMiB, cpu0)
		if fi, err := os.Stat(down); err != nil || fi.Size() <= b.opt.size {
			return fmt.Errorf("sftp get via the front: %s is not the whole ciphertext (%v)", down, err)
		}
		b.record(rowFrontGet, i, r.wall, r.cpu)
		if _, err := f.sftp(ctx, "rm /inbox/"+name); err != nil {
			return fmt.Errorf("sftp rm (acknowledge): %w", err)
		}
		os.Remove(down)
	}
	hwm, err := g.mon.hwm()
	if err != nil {
		return fmt.Errorf("gateway peak RSS: %w", err)
	}
	stats.PeakRSSMiB = max(mib(hwm), stats.SendPeakRSSMiB, stats.ReceivePeakRSSMiB)
	return g.stop()
}

// frontClient runs the stock sftp client against the gateway's SFTP front.
type frontClient struct {
	dir    string // for the batch file
	key    string
	port   int
	cipher string // -c, if set
}

// sftp runs one batch command, timed like the sshd stage's (connection set-up
// included). The front's host key is new every run, so it is not checked.
func (f frontClient) sftp(ctx context.Context, command string) (execResult, error) {
	batch := filepath.Join(f.dir, "batch")
	if err := os.WriteFile(batch, []byte(command+"\n"), 0o600); err != nil {
		return execResult{}, err
	}
	sftp, err := lookPath("sftp")
	if err != nil {
		return execResult{}, err
	}
	settle()
	return runTimed(ctx, "", sftp, append(cipherArgs(f.cipher), "-b", batch, "-i", f.key, "-P", strconv.Itoa(f.port),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
		"-o", "LogLevel=ERROR", frontAccount+"@127.0.0.1")...)
}

// deliveryName finds the delivery in "ls -1 /inbox" output.
func deliveryName(out string) string {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasSuffix(l, "-bench.bin.age") {
			return filepath.Base(l)
		}
	}
	return ""
}
