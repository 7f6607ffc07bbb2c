package httpapi

import "testing"

func TestRangeStart(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"bytes=0-", 0},
		{"bytes=0-99", 0},
		{"bytes=100-", 100},
		{" bytes=100-199 ", 100},
		{"bytes=-100", 0},        // suffix: the start depends on the size
		{"bytes=100-199,0-9", 0}, // several ranges
		{"items=100-", 0},        // another unit
		{"bytes=1e3-", 0},        // malformed
		{"bytes=-1-", 0},         // negative
		{"bytes=99999999999999999999-", 0},
	} {
		if got := rangeStart(c.in); got != c.want {
			t.Errorf("rangeStart(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}
