// Package benchkit holds what lexgate's measuring tools (lexbench, lexload,
// lexwan) share: the gateway configuration they start it with, the throwaway
// OpenSSH sshd they compare against, and reading a process's memory from /proc.
package benchkit

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lexgate/lexgate/gateway"
)

// GatewayConfig is the start of a lexgate.yaml for a measuring tool: the gateway
// listens on addr with its admin endpoints on 127.0.0.1:adminPort, takes its
// SVID and both organisations' bundles from a dev PKI directory written by
// "lexgate certs dev", and keeps its store in dataDir. Tools append their own
// sections.
func GatewayConfig(tool, addr string, adminPort int, pki, dataDir string) string {
	c := gateway.DevConfig(pki, dataDir)
	c.Listen, c.Admin = addr, fmt.Sprintf("127.0.0.1:%d", adminPort)
	c.ShutdownGrace = time.Second
	c.Log = gateway.LogConfig{Level: "info", Format: "json"}
	b, err := c.Marshal()
	if err != nil {
		panic(err) // a DevConfig always marshals
	}
	return "# lexgate config written by " + tool + "\n" + string(b)
}

// ClientConfig is a lex config.yaml for a measuring tool's user: the gateway at
// addr (the dev PKI's gateway ID), the user's SVID svid ("<trust
// domain>/<name>", as "lexgate certs dev" names its files under pki), both
// organisations' bundles, the identity and cache beside the config, and the
// audit log key the gateway printed.
func ClientConfig(addr, pki, svid, logKey string) string {
	return fmt.Sprintf(`gateway: %s
gateway_id: spiffe://harbor-law.example/gateway
svid_cert: %[2]s/%[3]s.crt
svid_key: %[2]s/%[3]s.key
bundles:
  harbor-law.example: %[2]s/harbor-law.example/bundle.pem
  manila-lpo.example: %[2]s/manila-lpo.example/bundle.pem
identity: identity.age
cache_dir: cache
log_key: %[4]s
`, addr, pki, svid, logKey)
}

// SSHD is the set-up of a throwaway OpenSSH sshd: its own host key, one client
// key authorised for root, and a config serving sftp from internal-sftp with
// password and keyboard-interactive logins off.
type SSHD struct {
	Dir       string // where its files are
	Config    string // the sshd_config file
	ClientKey string // the client's private key (its .pub is authorised)
	Log       string // where the daemon should log
}

// WriteSSHD writes a throwaway sshd's keys and config into dir, listening on
// listenAddr:port, and makes /run/sshd (the privilege-separated child chroots
// into it; the Debian package creates it only at boot). tool names the writer
// in key comments and the config's first line.
func WriteSSHD(ctx context.Context, dir, tool, listenAddr string, port int) (*SSHD, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &SSHD{Dir: dir, Config: filepath.Join(dir, "sshd_config"), ClientKey: filepath.Join(dir, "client_ed25519"), Log: filepath.Join(dir, "sshd.log")}
	hostKey := filepath.Join(dir, "host_ed25519")
	for _, k := range []string{hostKey, s.ClientKey} {
		if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", tool, "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(s.ClientKey + ".pub")
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`# throwaway sshd written by %s
Port %d
ListenAddress %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel INFO
`, tool, port, listenAddr, hostKey, filepath.Join(dir, "sshd.pid"), authorized)
	if err := os.WriteFile(s.Config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("sshd needs /run/sshd: %w", err)
	}
	return s, nil
}

// SSHBanner checks that an SSH server answers on addr with its banner.
func SSHBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	banner, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(banner, "SSH-") {
		return fmt.Errorf("no SSH banner (%q, %v)", banner, err)
	}
	return nil
}

// ProcStatus reads a "kB" field of /proc/PID/status (VmHWM, VmRSS), in bytes.
func ProcStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}
