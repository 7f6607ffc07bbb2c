package siem_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/siem"
)

// rsyslog is a running rsyslogd (Debian package rsyslog, rsyslog-gnutls;
// `make deb-deps` installs them) receiving syslog over TLS (RFC 5425) and
// writing each message's structured data and text to a file.
type rsyslog struct {
	addr   string
	caFile string
	out    string
}

func tlsFiles(t testing.TB, dir string) (cert, key string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(dir, "syslog.crt"), filepath.Join(dir, "syslog.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

func startRsyslog(t *testing.T) *rsyslog {
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin = "/usr/sbin/rsyslogd"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("rsyslogd not found: install the Debian packages rsyslog and rsyslog-gnutls (make deb-deps)")
		}
	}
	dir := t.TempDir()
	cert, key := tlsFiles(t, dir)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	r := &rsyslog{addr: addr, caFile: cert, out: filepath.Join(dir, "received.log")}
	conf := fmt.Sprintf(`global(workDirectory="%[1]s" maxMessageSize="64k"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="%[2]s"
  DefaultNetstreamDriverCertFile="%[2]s"
  DefaultNetstreamDriverKeyFile="%[3]s")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" address="127.0.0.1" port="%[4]s")
template(name="sd" type="string" string="%%msgid%% %%structured-data%% %%msg%%\n")
action(type="omfile" file="%[5]s" template="sd" flushOnTXEnd="on" asyncWriting="off")
`, dir, cert, key, port, r.out)
	confPath := filepath.Join(dir, "rsyslog.conf")
	os.WriteFile(confPath, []byte(conf), 0o600)
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslog.pid"))
	logf, _ := os.Create(filepath.Join(dir, "rsyslogd.out"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("rsyslogd:\n%s", b)
		}
	})
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) { // an outside process: poll its port
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("rsyslogd did not listen within a minute")
		}
	}
}

var (
	decisionIDRE = regexp.MustCompile(`decision_id="([^"]+)"`)
	auditIndexRE = regexp.MustCompile(`audit_index="([0-9]+)"`)
)

// received lists the decision ids rsyslog wrote, in order.
func (r *rsyslog) received(t *testing.T) []string { return r.matching(t, "decision ", decisionIDRE) }

// matching lists the first group of re in the lines of MSGID msgid.
func (r *rsyslog) matching(t *testing.T, msgid string, re *regexp.Regexp) []string {
	f, err := os.Open(r.out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if !strings.HasPrefix(sc.Text(), msgid) {
			continue
		}
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// logged lists the decision ids of the decision log's files, in order.
func logged(t *testing.T, path string) []string {
	files, _ := filepath.Glob(path + ".*")
	var all []string
	for n := 1; n <= len(files); n++ {
		all = append(all, fmt.Sprintf("%s.%d", path, n))
	}
	var ids []string
	for _, p := range append(all, path) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for sc := bufio.NewScanner(f); sc.Scan(); {
			var e policy.DecisionLogEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.DecisionID)
		}
		f.Close()
	}
	return ids
}

// TestRsyslogGetsEveryDecision: a gateway forwarding to a real rsyslogd
// over TLS delivers every decision of a run — across decision log
// rotations and a gateway restart in the middle — in order, none missing,
// none twice; refusals carry their reasons.
func TestRsyslogGetsEveryDecision(t *testing.T) {
	rs := startRsyslog(t)
	env := gatewaytest.Start(t, gatewaytest.WithConfig(func(c *gateway.Config) {
		c.SIEM = siem.Config{Syslog: siem.SyslogConfig{Addr: rs.addr, CAFile: rs.caFile, Hostname: "gw-1"},
			PollInterval: 20 * time.Millisecond}
		c.Policy.DecisionLogRotate = policy.DecisionLogRotation{MaxSize: 4 << 10, MaxAge: -1}
	}))
	run := func() {
		alice, team := env.NewClient(gatewaytest.Alice, false), env.NewClient(gatewaytest.Team, false)
		for i := range 6 {
			key := team.Register()
			labels := []string{}
			if i%2 == 1 {
				labels = []string{"health"}
			}
			ct := gatewaytest.Encrypt(t, []byte("x"), key.Recipient())
			if st, _, e := alice.Create([]string{gatewaytest.Team}, labels, ct, nil); st != http.StatusCreated && st != http.StatusForbidden {
				t.Fatalf("create: %d %+v", st, e)
			}
		}
	}
	run()
	beforeRestart := len(env.AuditEvents())
	env.Restart()
	run()
	env.Stop()
	dlog := filepath.Join(env.Config.Store.Dir, "decisions.log")
	want := logged(t, dlog)
	if len(want) < 12 {
		t.Fatalf("%d decisions logged, want at least 12", len(want))
	}
	if files, _ := filepath.Glob(dlog + ".*"); len(files) < 2 {
		t.Errorf("the decision log rotated %d times; the test wants it to rotate", len(files))
	}
	var got []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) { // rsyslog writes its file on its own time
		got = rs.received(t)
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rsyslog received %d decisions, the log holds %d; they differ (order, gaps or repeats):\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	audits := rs.matching(t, "audit ", auditIndexRE)
	for i, idx := range audits {
		if idx != strconv.Itoa(i) {
			t.Fatalf("audit entries received: %v; want 0, 1, 2, … with no gap or repeat", audits)
		}
	}
	t.Logf("forwarded %d decisions and %d audit entries (%d logged before the restart)", len(got), len(audits), beforeRestart)
	if len(audits) < beforeRestart || beforeRestart == 0 {
		t.Errorf("%d audit entries received, want at least the %d logged before the restart", len(audits), beforeRestart)
	}
	b, _ := os.ReadFile(rs.out)
	if !strings.Contains(string(b), `allow="false" reasons="hipaa.no_baa"`) || !strings.Contains(string(b), `matter="HL-2026-0042"`) {
		t.Errorf("no refusal with its reason and matter in what rsyslog received:\n%s", b)
	}
}
