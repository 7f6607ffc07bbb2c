package main

import "testing"

// TestLeaks: which descriptor counts after the clients left are leaks.
func TestLeaks(t *testing.T) {
	base := fdCounts{Total: 17, Sockets: 3, Database: 3, Other: 11}
	for _, c := range []struct {
		name    string
		after   fdCounts
		sockets bool
		leak    bool
	}{
		{"unchanged", base, true, false},
		{"SQLite's pool grew", fdCounts{Sockets: 3, Database: 36, Other: 11}, true, false},
		{"the audit log's body segment opened", fdCounts{Sockets: 3, Database: 3, Bodies: 1, Other: 11}, true, false},
		{"two body segments open", fdCounts{Sockets: 3, Database: 3, Bodies: 2, Other: 11}, true, true},
		{"a spool file left open", fdCounts{Sockets: 3, Spool: 1, Other: 11}, true, true},
		{"another file", fdCounts{Sockets: 3, Other: 12}, true, true},
		{"a client's socket", fdCounts{Sockets: 4, Other: 11}, true, true},
		{"a replica's pool socket, not judged", fdCounts{Sockets: 4, Other: 11}, false, false},
	} {
		if got := c.after.leaks(base, c.sockets); got != c.leak {
			t.Errorf("%s: leaks = %v, want %v", c.name, got, c.leak)
		}
	}
}
