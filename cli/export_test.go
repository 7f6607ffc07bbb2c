package cli

// SetMinRange lowers the smallest parallel download range for a test, so a small
// transfer is fetched as several ranges; the returned func restores it.
func SetMinRange(n int64) (restore func()) {
	old := minRange
	minRange = n
	return func() { minRange = old }
}
