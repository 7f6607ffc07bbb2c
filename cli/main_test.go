package cli

import (
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// Gateways started WithoutQUIC listen on TCP only; do not wait the full two seconds
	// for QUIC each time.
	quicHandshakeTimeout = time.Second
	os.Exit(m.Run())
}

// aliceID is a well-formed SPIFFE ID for usage tests.
const aliceID = "spiffe://harbor-law.example/paralegal/alice"
