package httpapi

import (
	"strings"
	"testing"
)

func TestRangeFor(t *testing.T) {
	for _, c := range []struct {
		in, keep string
		none     bool
	}{
		{"", "", false},
		{"bytes=0-9", "bytes=0-9", false},
		{"Bytes=0-9", "bytes=0-9", false},
		{"bytes=-0", "", true},
		{"bytes=-000", "", true},
		{"bytes= -0 , -0", "", true},
		{"bytes=-0,5-9", "bytes=5-9", false},
		{"bytes=-10", "bytes=-10", false},
		{"bytes=0-", "bytes=0-", false},
		{"items=0-9", "", false},
		{"0-9", "", false},
		{"bytes=5-4", "bytes=5-4", false}, // ServeContent refuses it (416, Content-Range added by rangeWriter)
	} {
		keep, none := rangeFor(c.in)
		if keep != c.keep || none != c.none {
			t.Errorf("rangeFor(%q) = %q, %v; want %q, %v", c.in, keep, none, c.keep, c.none)
		}
	}
}

// FuzzRangeFor: what rangeFor passes on is a bytes range set made of the
// request's own range specs minus the zero-length suffixes, and passing it again
// changes nothing; it calls a request unsatisfiable only when every spec of a
// bytes range set is a zero-length suffix; any other unit is ignored.
func FuzzRangeFor(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		keep, none := rangeFor(v)
		unit, set, hasUnit := strings.Cut(v, "=")
		isBytes := hasUnit && strings.EqualFold(strings.TrimSpace(unit), "bytes")
		switch {
		case !isBytes:
			if keep != "" || none {
				t.Fatalf("rangeFor(%q) = %q, %v for a unit that is not bytes", v, keep, none)
			}
			return
		case none:
			if keep != "" {
				t.Fatalf("rangeFor(%q) is unsatisfiable but passes on %q", v, keep)
			}
			for _, s := range strings.Split(set, ",") {
				if !zeroSuffix(strings.TrimSpace(s)) {
					t.Fatalf("rangeFor(%q) is unsatisfiable, but %q selects bytes", v, s)
				}
			}
			return
		}
		rest, ok := strings.CutPrefix(keep, "bytes=")
		if !ok {
			t.Fatalf("rangeFor(%q) passes on %q, not a bytes range set", v, keep)
		}
		orig := strings.Split(set, ",")
		for _, s := range strings.Split(rest, ",") {
			if zeroSuffix(strings.TrimSpace(s)) {
				t.Fatalf("rangeFor(%q) kept the zero-length suffix %q", v, s)
			}
			i := indexOf(orig, s)
			if i < 0 {
				t.Fatalf("rangeFor(%q) passes on %q, which the request did not ask for (or not in its order)", v, s)
			}
			orig = orig[i+1:]
		}
		if again, none := rangeFor(keep); again != keep || none {
			t.Fatalf("rangeFor is not idempotent: %q → %q → %q, %v", v, keep, again, none)
		}
	})
}

func indexOf(list []string, s string) int {
	for i, e := range list {
		if e == s {
			return i
		}
	}
	return -1
}
