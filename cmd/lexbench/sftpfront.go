package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lexgate/lexgate/internal/engines"
)

// The SFTP front mode (-sftp-front): the same stock OpenSSH sftp client puts and
// gets the test file through the throwaway sshd and through lexgate's SFTP
// front (encrypted on ingest to the account's registered age key, sealed,
// stored; the get downloads the delivery's ciphertext from /inbox). The two
// servers take turns within every run (sshd first in odd runs, the front first
// in even ones), so that other work on the host weighs on both alike, and
// before every get the file the server is about to read is put in the same
// page-cache state on both sides (-get-cache, see pagecache.go).
const (
	rowFrontPut = "sftp put via front"

	// frontAccount is the SSH user of the front; it acts as the review team and
	// uploads to itself (/outbox/self), so the upload lands in its own /inbox.
	frontAccount = "bench"

	targetFrontPut = 0.7 // sftp put via front ≥ 0.7× sftp put to sshd
	targetFrontGet = 0.8 // sftp get via front ≥ 0.8× sftp get from sshd
)

// rowGet is the get row of sshd (front false) or the front in cache state.
func rowGet(front bool, state string) string {
	name := rowSFTPGet
	if front {
		name = "sftp get via front"
	}
	return name + ", " + state + " cache"
}

// frontBench is the gateway with its SFTP front and the client that uses it.
type frontBench struct {
	g     *gateway
	c     frontClient
	spool string // the gateway's spool directory
	local string // where gets land
	stats *gatewayStats
}

// sshdBench is the throwaway sshd and where its puts and gets land.
type sshdBench struct {
	s        *sshd
	up, down string
}

// benchSFTPFront starts sshd and a gateway with its SFTP front, then times sftp
// put and get of the test file through both, taking turns.
func (b *bench) benchSFTPFront(ctx context.Context) error {
	caches, err := getCaches(b.opt.getCache)
	if err != nil {
		return err
	}
	s, up, down, err := b.startSSHDWithFiles(ctx)
	if err != nil {
		return err
	}
	sb := &sshdBench{s: s, up: up, down: down}
	fb, err := b.startFront(ctx, s.key)
	if err != nil {
		return err
	}
	for i := range b.opt.runs {
		first, second := func() error { return b.runSSHD(ctx, sb, i, caches) }, func() error { return b.runFront(ctx, fb, i, caches) }
		if i%2 == 1 {
			first, second = second, first
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	hwm, err := fb.g.mon.hwm()
	if err != nil {
		return fmt.Errorf("gateway peak RSS: %w", err)
	}
	fb.stats.PeakRSSMiB = max(mib(hwm), fb.stats.SendPeakRSSMiB, fb.stats.ReceivePeakRSSMiB)
	if err := fb.g.stop(); err != nil {
		return err
	}
	return s.stop(10 * time.Second)
}

// runSSHD is one run against sshd: a put, then a get in every cache state.
func (b *bench) runSSHD(ctx context.Context, sb *sshdBench, run int, caches []string) error {
	if err := b.inputBeforePut(rowSFTPPut); err != nil {
		return err
	}
	srv := serverCPU{cpu: func() (time.Duration, error) { return procTreeCPU(sb.s.pid()) }, settle: true}
	r, err := b.timedSFTP(rowSFTPPut, srv, func() (execResult, error) {
		return sb.s.sftp(ctx, fmt.Sprintf("put %s %s", quote(b.file), quote(sb.up)))
	})
	if err != nil {
		return fmt.Errorf("sftp put: %w", err)
	}
	if err := checkSize(sb.up, b.opt.size); err != nil {
		return fmt.Errorf("sftp put: %w", err)
	}
	b.record(rowSFTPPut, run, r.wall, r.cpu)
	if b.rep.SSHCipher == "" {
		b.rep.SSHCipher = negotiatedCipher(r.stderr)
	}
	for _, state := range caches {
		row := rowGet(false, state)
		if err := b.cacheBeforeGet(row, state, sb.up); err != nil {
			return err
		}
		r, err = b.timedSFTP(row, srv, func() (execResult, error) {
			return sb.s.sftp(ctx, fmt.Sprintf("get %s %s", quote(sb.up), quote(sb.down)))
		})
		if err != nil {
			return fmt.Errorf("sftp get: %w", err)
		}
		if err := checkSize(sb.down, b.opt.size); err != nil {
			return fmt.Errorf("sftp get: %w", err)
		}
		b.record(row, run, r.wall, r.cpu)
		os.Remove(sb.down)
	}
	return os.Remove(sb.up)
}

// timedSFTP runs one timed sftp command and records, for row, the server's
// CPU time during it and the CPU time the rest of the machine used.
func (b *bench) timedSFTP(row string, srv serverCPU, command func() (execResult, error)) (execResult, error) {
	var r execResult
	span, err := measureCPU(srv, func() (time.Duration, error) {
		var err error
		r, err = command()
		return r.cpu, err
	})
	if err != nil {
		return r, err
	}
	w := b.rep.row(row)
	w.gwcpus = append(w.gwcpus, span.server)
	w.other = append(w.other, span.other.Seconds())
	w.steal = append(w.steal, span.steal.Seconds())
	b.logf("%-34s server %.2f CPU-s, client %.2f, rest of the machine %.2f (steal %.2f)", row+":", span.server.Seconds(), r.cpu.Seconds(), span.other.Seconds(), span.steal.Seconds())
	return r, nil
}

// cacheBeforeGet puts the files a get will read in state and records how much
// of them is resident and how much of the page cache is dirty as it starts.
func (b *bench) cacheBeforeGet(row, state string, files ...string) error {
	settle()
	frac, err := prepareCache(state, files)
	if err != nil {
		return fmt.Errorf("%s: %w", row, err)
	}
	dirty := dirtyMiB()
	w := b.rep.row(row)
	w.resident = append(w.resident, frac)
	w.dirty = append(w.dirty, dirty)
	b.logf("%-34s %5.1f%% of the served file in the page cache, %.0f MiB dirty or under writeback", row+":", 100*frac, dirty)
	return nil
}

// inputBeforePut reads the test file through once before a put, so that the
// client reads all of it from memory whichever server it puts to: the kernel
// may have dropped part of it since the last put (see pagecache.go).
func (b *bench) inputBeforePut(row string) error {
	frac, err := prepareCache(cacheWarm, []string{b.file})
	if err != nil {
		return fmt.Errorf("%s: %w", row, err)
	}
	if frac < 1 {
		b.logf("%-34s %5.1f%% of the test file in the page cache after reading it through", row+":", 100*frac)
	}
	return nil
}

// startFront starts a gateway with its SFTP front, the account authorised
// with the sftp stage's client key, and registers the account's age key.
func (b *bench) startFront(ctx context.Context, key string) (*frontBench, error) {
	pki := b.path("pki")
	if _, err := runTimed(ctx, "", b.lexgate, "certs", "dev", "--out", pki); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return nil, fmt.Errorf("the sftp stage's client key: %w", err)
	}
	port, err := engines.FreePort()
	if err != nil {
		return nil, err
	}
	dir := b.path("gateway-sftp")
	g, err := b.startGateway(ctx, dir, pki, fmt.Sprintf(`sftp:
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
		return nil, err
	}
	b.logf("gateway with SFTP front on 127.0.0.1:%d (pid %d, log %s)", port, g.pid(), g.log)
	teamCfg, err := b.clientConfig(g, "review-team", "tcp", pki, teamSVID)
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{{"keygen"}, {"--transport", "tcp", "register"}} {
		if _, err := runTimed(ctx, "", b.lex, append([]string{"--config", teamCfg}, args...)...); err != nil {
			return nil, err
		}
	}
	local, err := mkdir(b.path("sftp-front", "local"))
	if err != nil {
		return nil, err
	}
	stats := &gatewayStats{Transport: "sftp front"}
	b.rep.Gateways = append(b.rep.Gateways, stats)
	return &frontBench{
		g:     g,
		c:     frontClient{dir: b.path("sftp-front"), key: key, port: port, cipher: b.opt.cipher},
		spool: filepath.Join(dir, "data", "spool"),
		local: local,
		stats: stats,
	}, nil
}

// runFront is one run through the front: a put, then a get of the delivery in
// every cache state, then its acknowledgement.
func (b *bench) runFront(ctx context.Context, fb *frontBench, run int, caches []string) error {
	g, f := fb.g, fb.c
	if err := b.inputBeforePut(rowFrontPut); err != nil {
		return err
	}
	// Each run uploads under its own name: the front recognises an identical
	// re-upload of the same name and does not deliver it twice.
	remote := fmt.Sprintf("bench-%d.bin", run)
	suffix := "-" + remote + ".age"
	srv := serverCPU{cpu: g.mon.cpu}
	g.mon.reset()
	r, err := b.timedSFTP(rowFrontPut, srv, func() (execResult, error) {
		return f.sftp(ctx, fmt.Sprintf("put %s /outbox/self/%s", quote(b.file), remote))
	})
	if err != nil {
		return fmt.Errorf("sftp put via the front: %w", err)
	}
	fb.stats.SendPeakRSSMiB = max(fb.stats.SendPeakRSSMiB, mib(g.mon.phasePeak()))
	b.record(rowFrontPut, run, r.wall, r.cpu)
	ls, err := f.sftp(ctx, "ls -1 /inbox")
	if err != nil {
		return fmt.Errorf("sftp ls /inbox: %w", err)
	}
	name := deliveryName(ls.stdout, suffix)
	if name == "" {
		return fmt.Errorf("the upload is not in /inbox: %q", ls.stdout)
	}
	// The stored ciphertext: <spool>/<id>.age for the delivery <id>-bench-N.bin.age.
	stored := filepath.Join(fb.spool, strings.TrimSuffix(name, suffix)+".age")
	if _, err := os.Stat(stored); err != nil {
		return fmt.Errorf("the delivery's stored ciphertext: %w", err)
	}
	down := filepath.Join(fb.local, name)
	for _, state := range caches {
		row := rowGet(true, state)
		if err := b.cacheBeforeGet(row, state, stored); err != nil {
			return err
		}
		g.mon.reset()
		r, err = b.timedSFTP(row, srv, func() (execResult, error) {
			return f.sftp(ctx, fmt.Sprintf("get /inbox/%s %s", name, quote(down)))
		})
		if err != nil {
			return fmt.Errorf("sftp get via the front: %w", err)
		}
		fb.stats.ReceivePeakRSSMiB = max(fb.stats.ReceivePeakRSSMiB, mib(g.mon.phasePeak()))
		if fi, err := os.Stat(down); err != nil || fi.Size() <= b.opt.size {
			return fmt.Errorf("sftp get via the front: %s is not the whole ciphertext (%v)", down, err)
		}
		b.record(row, run, r.wall, r.cpu)
		os.Remove(down)
	}
	if _, err := f.sftp(ctx, "rm /inbox/"+name); err != nil {
		return fmt.Errorf("sftp rm (acknowledge): %w", err)
	}
	return nil
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
func deliveryName(out, suffix string) string {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasSuffix(l, suffix) {
			return filepath.Base(l)
		}
	}
	return ""
}
