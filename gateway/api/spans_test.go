package api_test

import (
	"reflect"
	"testing"

	"github.com/lexgate/lexgate/gateway/api"
)

func TestParseSpans(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []api.Span
		ok   bool
	}{
		{"", nil, true},
		{"0-1", []api.Span{{0, 1}}, true},
		{"1048576-9437184,17825792-26214400", []api.Span{{1 << 20, 9 << 20}, {17 << 20, 25 << 20}}, true},
		{"5-5", nil, false},      // empty
		{"6-5", nil, false},      // backwards
		{"1-3,3-4", nil, false},  // adjacent: would have been one span
		{"4-6,1-2", nil, false},  // unsorted
		{"1-2,", nil, false},     // trailing comma
		{"1-2, 3-4", nil, false}, // space
		{"01-2", nil, false},     // leading zero
		{"-1-2", nil, false},     // sign
		{"1", nil, false},        // no end
		{"1-2-3", nil, false},    // two dashes
		{"1-99999999999999999999", nil, false},
	} {
		got, err := api.ParseSpans(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseSpans(%q) error %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if c.ok && !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseSpans(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// FuzzParseSpans checks that every accepted header is written back the same
// way, sorted and disjoint.
func FuzzParseSpans(f *testing.F) {
	for _, s := range []string{"", "0-1", "1048576-9437184,17825792-26214400", "1-3,3-4", "01-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		spans, err := api.ParseSpans(v)
		if err != nil {
			return
		}
		if got := api.FormatSpans(spans); got != v {
			t.Fatalf("FormatSpans(ParseSpans(%q)) = %q", v, got)
		}
		for i, s := range spans {
			if s.End <= s.Start || (i > 0 && s.Start <= spans[i-1].End) {
				t.Fatalf("ParseSpans(%q) gave %v", v, spans)
			}
		}
	})
}
