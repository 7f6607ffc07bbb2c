package policy

import (
	"io/fs"
	"log/slog"
	"os"
	"testing"

	"github.com/lexgate/lexgate/policies"
)

// TestVersionIndependentOfWhereLoaded: the same policy files have the same
// version whether the gateway loads them from policy.dir (an absolute path),
// lex policy explain --local loads them from a relative directory, or they are
// the embedded defaults.
func TestVersionIndependentOfWhereLoaded(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, policies.FS); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	versionOf := func(cfg Config) string {
		t.Helper()
		cfg.Logger, cfg.SkipTests = quiet, true
		e, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		return e.Version()
	}
	var fsys fs.FS = policies.FS
	embedded := versionOf(Config{FS: fsys})
	for name, cfg := range map[string]Config{
		"policy.dir (gateway)":       {Dir: dir},
		"os.DirFS (lex --local)":     {FS: os.DirFS(dir)},
		"policy.dir, path uncleaned": {Dir: dir + "/./"},
	} {
		if v := versionOf(cfg); v != embedded {
			t.Errorf("%s: version %s, embedded %s", name, v, embedded)
		}
	}
}
