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

// SetCheckpointEvery makes a receive take a checkpoint every n age chunks (of
// 64 KiB), at one of the window chunks after each, so a small transfer has
// several; the returned func restores the defaults.
func SetCheckpointEvery(n, window int64) (restore func()) {
	oldN, oldW := checkpointEvery, checkpointWindow
	checkpointEvery, checkpointWindow = n, window
	return func() { checkpointEvery, checkpointWindow = oldN, oldW }
}

// OnCheckpoint calls f after every checkpoint a receive writes (with its
// path); the returned func removes it.
func OnCheckpoint(f func(path string)) (restore func()) {
	checkpointWritten = f
	return func() { checkpointWritten = nil }
}
