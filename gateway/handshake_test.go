package gateway_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"regexp"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// TestHandshakeWithoutCertificate: a client that presents no certificate is
// refused over TCP and over QUIC, and each refusal is counted in
// lexgate_tls_handshake_refusals_total under its transport. (Over TCP it was
// refused by crypto/tls before the SPIFFE verifier ran, and not counted.)
func TestHandshakeWithoutCertificate(t *testing.T) {
	env := gatewaytest.Start(t)
	conf := func(proto string) *tls.Config {
		// The test checks the server's refusal, not the server's certificate.
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{proto}}
	}

	c, err := tls.Dial("tcp", env.Gateway.Addr(), conf("http/1.1"))
	if err == nil {
		// In TLS 1.3 the server's verdict on the client arrives after the
		// client's handshake is done: at the first read.
		io.WriteString(c, "GET /v1/inbox HTTP/1.1\r\nHost: x\r\n\r\n")
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil {
		t.Fatal("a TCP client without a certificate was served")
	}
	t.Logf("tcp: %v", err)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	qc, err := quic.DialAddr(ctx, env.Gateway.Addr(), conf("h3"), nil)
	if err == nil {
		_, err = qc.AcceptStream(ctx) // the refusal closes the connection
		qc.CloseWithError(0, "")
	}
	if err == nil {
		t.Fatal("a QUIC client without a certificate was served")
	}
	t.Logf("quic: %v", err)

	for _, tr := range []string{"tcp", "quic"} {
		re := regexp.MustCompile(`lexgate_tls_handshake_refusals_total\{transport="` + tr + `"\} 1\n`)
		waitFor(t, func() bool { return re.MatchString(scrape(t, env)) }, "the "+tr+" refusal to be counted")
	}
}

// scrape returns the admin listener's /metrics.
func scrape(t *testing.T, env *gatewaytest.Env) string {
	t.Helper()
	resp, err := http.Get("http://" + env.Gateway.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
