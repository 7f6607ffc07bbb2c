// Package rsyslogtest runs a real rsyslogd for tests: it receives RFC 5425
// syslog over TLS on a loopback port chosen at run time and writes each
// message's MSGID, structured data and text, one line each, to a file. The
// Debian packages rsyslog and rsyslog-gnutls provide it (make deb-deps); a
// test that needs it fails without it.
package rsyslogtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Server is a running rsyslogd.
type Server struct {
	Addr   string // host:port of its TLS syslog listener
	CAFile string // the certificate it presents, to trust
	Out    string // the file it writes what it receives to
}

// TLSFiles writes a self-signed certificate for 127.0.0.1 and its key in
// dir and returns their paths.
func TLSFiles(t testing.TB, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "syslog.crt"), filepath.Join(dir, "syslog.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// Start runs rsyslogd until the test ends.
func Start(t *testing.T) *Server {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin = "/usr/sbin/rsyslogd"
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("rsyslogd not found: install the Debian packages rsyslog and rsyslog-gnutls (make deb-deps)")
		}
	}
	dir := t.TempDir()
	cert, key := TLSFiles(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	s := &Server{Addr: addr, CAFile: cert, Out: filepath.Join(dir, "received.log")}
	conf := fmt.Sprintf(`global(workDirectory="%[1]s" maxMessageSize="64k"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="%[2]s"
  DefaultNetstreamDriverCertFile="%[2]s"
  DefaultNetstreamDriverKeyFile="%[3]s")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" address="127.0.0.1" port="%[4]s")
template(name="sd" type="string" string="%%msgid%% %%structured-data%% %%msg%%\n")
action(type="omfile" file="%[5]s" template="sd" flushOnTXEnd="on" asyncWriting="off")
`, dir, cert, key, port, s.Out)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslog.pid"))
	logf, err := os.Create(filepath.Join(dir, "rsyslogd.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("rsyslogd:\n%s", b)
		}
	})
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) { // an outside process: poll its port
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatal("rsyslogd did not listen within a minute")
		}
	}
}

// Matching lists, in the order received, the first group of re in the
// lines whose MSGID is msgid (msgid "audit" or "decision").
func (s *Server) Matching(t testing.TB, msgid string, re *regexp.Regexp) []string {
	t.Helper()
	f, err := os.Open(s.Out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if !strings.HasPrefix(sc.Text(), msgid+" ") {
			continue
		}
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}
