package httpapi

import (
	"strconv"
	"strings"
	"time"
)

// preferWait reads the wait preference of a Prefer header (RFC 7240,
// "Prefer: wait=30"): how long the client lets a long poll wait, in
// seconds. Anything else is no wait.
func preferWait(h string) time.Duration {
	for _, pref := range strings.FieldsFunc(h, func(r rune) bool { return r == ',' || r == ';' }) {
		k, v, ok := strings.Cut(strings.TrimSpace(pref), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "wait") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return 0
		}
		return time.Duration(min(n, 3600)) * time.Second
	}
	return 0
}
