package gateway

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/prometheus/client_golang/prometheus"
)

// A refused handshake has no identity, so it leaves no audit entry: it is counted
// here and logged by the identity package instead.

func newRefusalCounter(reg *prometheus.Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lexgate_tls_handshake_refusals_total",
		Help: "Client certificates refused during the mutual-TLS handshake, by transport (no identity: no audit entry).",
	}, []string{"transport"})
	reg.MustRegister(c)
	return c
}

// Both listeners request a client certificate rather than require one
// (tls.RequestClientCert): with RequireAnyClientCert, crypto/tls refuses a
// handshake without a certificate before the SPIFFE verifier runs, so it was
// neither counted nor logged. Requested, an empty chain reaches the verifier,
// which refuses it (and logs why), and countRefusals counts it. The outcome is
// the same refusal: no identity, no connection.

// countRefusals makes cfg count every client certificate its verifier refuses.
func countRefusals(cfg *tls.Config, c prometheus.Counter) *tls.Config {
	verify := cfg.VerifyPeerCertificate
	if verify == nil {
		return cfg
	}
	cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		err := verify(raw, chains)
		if err != nil {
			c.Inc()
		}
		return err
	}
	return cfg
}
