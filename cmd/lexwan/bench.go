package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lexgate/lexgate/cmd/lexwan/emu"
)

// options is a parsed lexwan command line.
type options struct {
	bin      string
	size     int64
	profiles string
	timeout  time.Duration
	keep     bool
	verbose  bool
	cc       string
	sends    string // comma-separated lex send transports to time
	receive  bool   // also time sftp get and lex receive
}

// profile is one emulated path; its conditions apply to both directions.
type profile struct {
	Name string
	RTT  time.Duration
	Loss float64 // each way
	Rate int64   // bits/s each way; 0 = none
}

// profiles are the paths measured. The clean and lossy 150 ms paths are capped at
// 480 Mbit/s (60 MB/s), about what the forwarder can carry on two shared cores
// (roughly 1 % of a core per MB/s); the 250 ms path models a 100 Mbit/s line.
var profiles = []profile{
	{Name: "150ms", RTT: 150 * time.Millisecond, Rate: 480e6},
	{Name: "150ms-0.5%", RTT: 150 * time.Millisecond, Loss: 0.005, Rate: 480e6},
	{Name: "250ms-1%-100M", RTT: 250 * time.Millisecond, Loss: 0.01, Rate: 100e6},
}

func (p profile) params() emu.Params {
	return emu.Params{Delay: p.RTT / 2, Loss: p.Loss, Rate: p.Rate}
}

func (p profile) String() string {
	s := fmt.Sprintf("RTT %v", p.RTT)
	if p.Loss > 0 {
		s += fmt.Sprintf(", %g%% random loss each way", p.Loss*100)
	}
	if p.Rate > 0 {
		s += fmt.Sprintf(", %g Mbit/s cap", float64(p.Rate)/1e6)
	}
	return s
}

// bench is one lexwan run.
type bench struct {
	opt      options
	out, log io.Writer
	dir      string
	file     string
	lex      string
	lexgate  string
	path     *emu.Path
	daemons  []*daemon
	gw       *gateway
	ssh      *sshd
	alice    string // lex config of the sender, in the LPO namespace
	team     string // lex config of the recipient, same namespace
}

// run sets up the path, the gateway and sshd, measures every profile and prints
// the report on out; progress goes to log. Everything it started is stopped and
// the namespaces removed before it returns.
func run(ctx context.Context, o options, out, log io.Writer) (err error) {
	b := &bench{opt: o, out: out, log: log}
	var sel []profile
	for _, name := range strings.Split(o.profiles, ",") {
		i := slices.IndexFunc(profiles, func(p profile) bool { return p.Name == name })
		if i < 0 {
			return fmt.Errorf("no profile %q", name)
		}
		sel = append(sel, profiles[i])
	}
	if err := b.checkPrograms(); err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "lexwan-"); err != nil {
		return err
	}
	defer b.cleanup()
	b.file = filepath.Join(b.dir, "input", "bundle.bin")
	if err := writeRandomFile(b.file, o.size); err != nil {
		return fmt.Errorf("writing the test file: %w", err)
	}
	b.logf("working directory %s, test file %s", b.dir, humanBytes(o.size))
	if b.path, err = emu.Setup(ctx, fmt.Sprintf("lexwan%d", os.Getpid()), sel[0].params(), sel[0].params()); err != nil {
		return err
	}
	b.logf("namespaces %s (%v: lex, sftp) and %s (%v: gateway, sshd)", b.path.A.Name, b.path.A.Addr, b.path.B.Name, b.path.B.Addr)
	if o.cc != "" {
		for _, n := range []emu.Netns{b.path.A, b.path.B} {
			if err := n.Sysctl("net.ipv4.tcp_congestion_control", o.cc); err != nil {
				return err
			}
		}
	}
	if err := b.startServers(ctx); err != nil {
		return err
	}
	var reports []*profileReport
	for _, p := range sel {
		r, err := b.runProfile(ctx, p)
		if err != nil {
			return fmt.Errorf("profile %s: %w", p.Name, err)
		}
		r.write(out)
		reports = append(reports, r)
	}
	writeSummary(out, reports, o)
	return nil
}

// checkPrograms fails early, naming what is missing.
func (b *bench) checkPrograms() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces and TUN devices)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun (the tun kernel module)")
	}
	var err error
	if b.lex, err = filepath.Abs(filepath.Join(b.opt.bin, "lex")); err != nil {
		return err
	}
	if b.lexgate, err = filepath.Abs(filepath.Join(b.opt.bin, "lexgate")); err != nil {
		return err
	}
	for _, p := range []string{b.lex, b.lexgate} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p+` (run "make build")`)
		}
	}
	if _, err := os.Stat(sshdPath); err != nil {
		missing = append(missing, sshdPath+` (run "make deb-deps")`)
	}
	for _, name := range []string{"ip", "sftp", "ssh-keygen"} {
		if _, err := exec.LookPath(name); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

// startServers mints the dev PKI, starts the gateway and sshd in the firm's
// namespace and prepares the two lex users in the LPO's.
func (b *bench) startServers(ctx context.Context) error {
	pki := filepath.Join(b.dir, "pki")
	if out, err := exec.CommandContext(ctx, b.lexgate, "certs", "dev", "--out", pki).CombinedOutput(); err != nil {
		return fmt.Errorf("lexgate certs dev: %v: %s", err, out)
	}
	var err error
	if b.gw, err = b.startGateway(ctx, pki); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if b.alice, err = b.clientConfig("alice", pki, aliceSVID); err != nil {
		return err
	}
	if b.team, err = b.clientConfig("review-team", pki, teamSVID); err != nil {
		return err
	}
	if _, err := b.lexCmd(ctx, b.team, "keygen"); err != nil {
		return err
	}
	if _, err := b.lexCmd(ctx, b.team, "--transport", "tcp", "register"); err != nil {
		return err
	}
	if b.ssh, err = b.startSSHD(ctx); err != nil {
		return fmt.Errorf("sshd: %w", err)
	}
	return nil
}

// lexCmd runs lex with cfg in the LPO namespace and returns its stdout.
func (b *bench) lexCmd(ctx context.Context, cfg string, args ...string) (string, error) {
	cmd := b.path.A.Command(ctx, b.lex, append([]string{"--config", cfg}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("lex %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "lexwan: "+format+"\n", args...)
}

// cleanup stops every daemon, removes the namespaces and, unless -keep, the
// working directory.
func (b *bench) cleanup() {
	for i := len(b.daemons) - 1; i >= 0; i-- {
		if err := b.daemons[i].stop(10 * time.Second); err != nil {
			b.logf("stopping %s: %v", b.daemons[i].name, err)
		}
	}
	if b.path != nil {
		if err := b.path.Close(); err != nil {
			b.logf("removing the namespaces: %v", err)
		}
	}
	if b.opt.keep {
		b.logf("kept %s", b.dir)
		return
	}
	os.RemoveAll(b.dir)
}

// writeRandomFile writes size random bytes to path (incompressible, like a
// bundle of scanned PDFs).
func writeRandomFile(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, rand.Reader, size)
	return errors.Join(err, f.Close())
}
