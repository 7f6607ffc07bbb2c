package cli

import "time"

// SetMinRange lowers the smallest parallel download range for a test, so a small
// transfer is fetched as several ranges; the returned func restores it.
func SetMinRange(n int64) (restore func()) {
	old := minRange
	minRange = n
	return func() { minRange = old }
}

// SetQUICTimeout sets how long auto mode waits for a QUIC handshake before
// it falls back to TCP (TestMain makes it a second, for the gateways that
// listen on TCP only); the returned func restores it. A test that requires
// auto mode to pick QUIC sets it long, so a slow machine cannot make it
// fall back.
func SetQUICTimeout(d time.Duration) (restore func()) {
	old := quicHandshakeTimeout
	quicHandshakeTimeout = d
	return func() { quicHandshakeTimeout = old }
}
