package cli

import (
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The fake gateway often listens on TCP only; do not wait the full two seconds
	// for QUIC each time.
	quicHandshakeTimeout = 300 * time.Millisecond
	os.Exit(m.Run())
}
