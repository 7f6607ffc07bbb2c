package api_test

import (
	"strconv"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
)

func TestParseOffset(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"1048576", 1 << 20, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"-0", 0, false},
		{"+5", 0, false},
		{"007", 0, false},
		{"00", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"5\x00", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
		{"1e3", 0, false},
		{"５", 0, false}, // fullwidth digit
	} {
		got, err := api.ParseOffset(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseOffset(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

// FuzzParseOffset: an offset has exactly one spelling. ParseOffset accepts a
// value if and only if it is what strconv.FormatInt writes for a non-negative
// int64, and it then returns that number.
func FuzzParseOffset(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		n, err := api.ParseOffset(v)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseOffset(%q) failed but returned %d", v, n)
			}
			if m, perr := strconv.ParseInt(v, 10, 64); perr == nil && m >= 0 && strconv.FormatInt(m, 10) == v {
				t.Fatalf("ParseOffset(%q) refused the canonical offset %d: %v", v, m, err)
			}
			return
		}
		if n < 0 || strconv.FormatInt(n, 10) != v {
			t.Fatalf("ParseOffset(%q) = %d, which is written %q", v, n, strconv.FormatInt(n, 10))
		}
	})
}
