package httpapi

import (
	"strconv"
	"strings"
)

// rangeStart returns the first byte a Range header asks for when that is
// known without the file's size: N for "bytes=N-" or "bytes=N-M" with one
// range, and 0 for anything else (no header, a suffix range, several ranges,
// another unit, a malformed value). The core re-hashes the stored ciphertext
// for a delivery from 0, so every doubt counts as 0.
func rangeStart(v string) int64 {
	set, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(set, ",") {
		return 0
	}
	first, _, ok := strings.Cut(strings.TrimSpace(set), "-")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
