package crashpoint

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestPointsListed: every crashpoint.Hit call in the gateway names a point in
// Points, and every point in Points is called somewhere, so a crash test that
// checks its names against Points never waits for a point nobody reaches.
func TestPointsListed(t *testing.T) {
	hit := regexp.MustCompile(`crashpoint\.Hit\("([^"]+)"\)`)
	called := map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range hit.FindAllSubmatch(src, -1) {
			name := string(m[1])
			called[name] = true
			if !slices.Contains(Points, name) {
				t.Errorf("%s calls Hit(%q), which Points does not list", path, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Points {
		if !called[p] {
			t.Errorf("Points lists %q, which nothing calls", p)
		}
	}
}
