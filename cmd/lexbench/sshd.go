package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/lexgate/lexgate/cmd/internal/benchkit"
	"github.com/lexgate/lexgate/internal/engines"
)

// sshdPath is the OpenSSH server; it must be started by its absolute path.
const sshdPath = "/usr/sbin/sshd"

// sshd is a throwaway OpenSSH server on 127.0.0.1 with its own configuration, host
// key and authorized_keys, all in the bench's working directory.
type sshd struct {
	*daemon
	dir    string // its config, keys, log
	port   int
	key    string // the client's private key
	log    string
	cipher string // -c for sftp, if set
}

// benchSFTP starts a private sshd and times sftp put and get of the test file.
func (b *bench) benchSFTP(ctx context.Context) error {
	s, up, down, err := b.startSSHDWithFiles(ctx)
	if err != nil {
		return err
	}
	srv := s.cpu()
	for i := range b.opt.runs {
		r, err := b.timedSFTP(rowSFTPPut, srv, func() (execResult, error) {
			return s.sftp(ctx, fmt.Sprintf("put %s %s", quote(b.file), quote(up)))
		})
		if err != nil {
			return fmt.Errorf("sftp put: %w", err)
		}
		if err := checkSize(up, b.opt.size); err != nil {
			return fmt.Errorf("sftp put: %w", err)
		}
		b.record(rowSFTPPut, i, r.wall, r.cpu)
		if b.rep.SSHCipher == "" {
			b.rep.SSHCipher = negotiatedCipher(r.stderr)
		}
		r, err = b.timedSFTP(rowSFTPGet, srv, func() (execResult, error) {
			return s.sftp(ctx, fmt.Sprintf("get %s %s", quote(up), quote(down)))
		})
		if err != nil {
			return fmt.Errorf("sftp get: %w", err)
		}
		if err := checkSize(down, b.opt.size); err != nil {
			return fmt.Errorf("sftp get: %w", err)
		}
		b.record(rowSFTPGet, i, r.wall, r.cpu)
		os.Remove(up)
		os.Remove(down)
	}
	return s.stop(10 * time.Second)
}

// startSSHDWithFiles starts sshd and returns the paths its puts write (up,
// on the server's side) and its gets write (down, on the client's side).
func (b *bench) startSSHDWithFiles(ctx context.Context) (s *sshd, up, down string, err error) {
	if s, err = b.startSSHD(ctx); err != nil {
		return nil, "", "", err
	}
	remote, err := mkdir(b.path("sftp", "remote"))
	if err != nil {
		return nil, "", "", err
	}
	local, err := mkdir(b.path("sftp", "local"))
	if err != nil {
		return nil, "", "", err
	}
	return s, filepath.Join(remote, "bench.bin"), filepath.Join(local, "bench.bin"), nil
}

// startSSHD writes the server's files, starts "sshd -D -e" on a free port and waits
// for its banner.
func (b *bench) startSSHD(ctx context.Context) (*sshd, error) { return b.startSSHDIn(ctx, "sshd") }

// startSSHDIn is startSSHD with the server's files in the directory name of
// the working directory.
func (b *bench) startSSHDIn(ctx context.Context, name string) (*sshd, error) {
	if _, err := lookPath("ssh-keygen"); err != nil {
		return nil, err
	}
	port, err := engines.FreePort()
	if err != nil {
		return nil, err
	}
	set, err := benchkit.WriteSSHD(ctx, b.path(name), "lexbench", "127.0.0.1", port)
	if err != nil {
		return nil, err
	}
	s := &sshd{dir: set.Dir, key: set.ClientKey, log: set.Log, port: port, cipher: b.opt.cipher}
	if _, err := runTimed(ctx, "", sshdPath, "-t", "-f", set.Config); err != nil {
		return nil, fmt.Errorf("sshd rejects its config: %w", err)
	}
	if s.daemon, err = b.startDaemon("sshd", s.log, sshdPath, "-D", "-e", "-f", set.Config); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	if err := waitFor(ctx, s.daemon, s.log, 10*time.Second, func() error { return benchkit.SSHBanner(addr) }); err != nil {
		return nil, err
	}
	b.logf("sshd (%s) listening on %s", sshdPath, addr)
	return s, nil
}

// sftp runs one batch command with the stock sftp client and times the whole run,
// connection set-up included. -v makes ssh log the negotiated cipher.
// cpu measures sshd's CPU time with its sessions': a session's shows once
// sshd has reaped it, shortly after the client exits.
func (s *sshd) cpu() serverCPU {
	return serverCPU{cpu: func() (time.Duration, error) { return procTreeCPU(s.pid()) }, settle: true}
}

func (s *sshd) sftp(ctx context.Context, command string) (execResult, error) {
	batch := filepath.Join(s.dir, "batch")
	if err := os.WriteFile(batch, []byte(command+"\n"), 0o600); err != nil {
		return execResult{}, err
	}
	sftp, err := lookPath("sftp")
	if err != nil {
		return execResult{}, err
	}
	settle()
	return runTimed(ctx, "", sftp, append(cipherArgs(s.cipher), "-v", "-b", batch, "-i", s.key, "-P", strconv.Itoa(s.port),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
		"root@127.0.0.1")...)
}

// frontCipher is the cipher -sftp-front compares on: the SFTP front offers
// only AES-GCM, while sshd would pick chacha20-poly1305, which costs the
// client (and sshd) more CPU per byte; comparing on one cipher measures the
// servers, not the ciphers.
const frontCipher = "aes128-gcm@openssh.com"

// cipherArgs is sftp's -c option for cipher, none if it is empty.
func cipherArgs(cipher string) []string {
	if cipher == "" {
		return nil
	}
	return []string{"-c", cipher}
}

var cipherLine = regexp.MustCompile(`kex: server->client cipher: (\S+)`)

// negotiatedCipher finds the cipher in ssh -v output.
func negotiatedCipher(stderr string) string {
	if m := cipherLine.FindStringSubmatch(stderr); m != nil {
		return m[1]
	}
	return ""
}

// quote double-quotes a path for an sftp batch file.
func quote(p string) string { return strconv.Quote(p) }
