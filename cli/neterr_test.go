package cli_test

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestNetworkErrorMessages: when lex cannot talk to the gateway, the error names
// the likely cause, each made real: a port nobody listens on, the gateway's
// admin port, a name that does not exist, a gateway whose certificate has
// expired, and an SVID of ours that has.
func TestNetworkErrorMessages(t *testing.T) {
	env := gatewaytest.Start(t)
	alice := env.ClientConfig(gatewaytest.Alice)
	home := filepath.Dir(alice)
	cfg, _ := os.ReadFile(alice)
	withGateway := func(name, addr string) string {
		p := filepath.Join(home, name+".yaml")
		write(t, p, bytes.Replace(cfg, []byte("gateway: "+env.Addr), []byte("gateway: "+addr), 1))
		return p
	}

	// A port that was free a moment ago: nothing listens there, on TCP or UDP.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	// A TLS server presenting the gateway's SPIFFE ID in a certificate that expired.
	harborCA, err := certs.LoadCA(filepath.Join(env.PKI, "harbor-law.example"))
	if err != nil {
		t.Fatal(err)
	}
	expiredAt := time.Now().Add(-time.Hour).UTC()
	gwSVID, err := harborCA.MintSVID(spiffeid.RequireFromString(gatewaytest.GatewayID), certs.SVIDOptions{NotBefore: expiredAt.Add(-time.Hour), NotAfter: expiredAt})
	if err != nil {
		t.Fatal(err)
	}
	leaf := tls.Certificate{PrivateKey: gwSVID.PrivateKey}
	for _, c := range gwSVID.Certificates {
		leaf.Certificate = append(leaf.Certificate, c.Raw)
	}
	stale, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go srv.Serve(stale)
	t.Cleanup(func() { srv.Close() })

	// An SVID of ours that expired.
	oldSVID, err := harborCA.MintSVID(spiffeid.RequireFromString(gatewaytest.Alice), certs.SVIDOptions{NotBefore: expiredAt.Add(-time.Hour), NotAfter: expiredAt})
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(home, "old.crt"), filepath.Join(home, "old.key")
	if err := certs.WriteSVID(crt, key, oldSVID); err != nil {
		t.Fatal(err)
	}
	c, k := env.SVIDFiles(gatewaytest.Alice)
	oldConfig := filepath.Join(home, "old.yaml")
	write(t, oldConfig, []byte(strings.NewReplacer(c, crt, k, key).Replace(string(cfg))))

	day := expiredAt.Format("2006-01-02 15:04:05")
	for _, tc := range []struct {
		name, config, transport, want string
	}{
		{"nothing listening", withGateway("closed", closed), "auto", "no gateway is listening at " + closed},
		{"nothing listening, tcp", withGateway("closed", closed), "tcp", "no gateway is listening at " + closed},
		{"the admin port", withGateway("admin", env.Gateway.AdminAddr()), "tcp", env.Gateway.AdminAddr() + " answers plain HTTP, not TLS: that looks like the gateway's admin port"},
		{"the admin port, auto", withGateway("admin", env.Gateway.AdminAddr()), "auto", "that looks like the gateway's admin port"},
		{"name not found", withGateway("nxdomain", "gateway.invalid:8443"), "tcp", `the name "gateway.invalid"`},
		{"gateway certificate expired", withGateway("stale", stale.Addr().String()), "tcp", "the gateway's certificate expired on " + day},
		{"our SVID expired", oldConfig, "auto", "your SVID (svid_cert " + crt + ") expired on " + day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := lex(t, tc.config, "--transport", tc.transport, "inbox")
			if code != cli.ExitError || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q\nwant exit %d and %q", code, errOut, cli.ExitError, tc.want)
			}
		})
	}
}
