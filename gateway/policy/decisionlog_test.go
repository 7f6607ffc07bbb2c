package policy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/policies"
)

// TestDecisionLogWrittenOffThePath: the decision log is written by its own
// goroutine, yet a refusal's line is in the file when Decide returns (the
// refused client looks its id up), and after Close every decision of
// concurrent callers is there exactly once. Decisions after Close are not
// logged, and do not fail.
func TestDecisionLogWrittenOffThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	eng, err := policy.New(t.Context(), policy.Config{FS: policies.FS, Logger: quiet, DecisionLog: path, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 25
	var mu sync.Mutex
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				labels := []string{}
				if i%2 == 1 {
					labels = []string{"health"} // no BAA with Manila: refused
				}
				d, err := eng.Decide(t.Context(), send(june, labels, manila))
				if err != nil || d.Allow == (i%2 == 1) {
					t.Errorf("decision %+v, %v", d, err)
					return
				}
				if !d.Allow && i%10 == 1 && w == 0 {
					if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), d.ID) {
						t.Errorf("refusal %s not in the decision log when Decide returned (%v)", d.ID, err)
					}
				}
				mu.Lock()
				ids[d.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Decide(t.Context(), send(june, nil, manila)); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var e policy.DecisionLogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if seen[e.DecisionID] || !ids[e.DecisionID] {
			t.Errorf("decision %s logged twice or never made", e.DecisionID)
		}
		seen[e.DecisionID] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d decisions logged, want %d", len(seen), workers*each)
	}
}

// TestDecisionLogRotation: rotated by size or by age, the decision log's
// files PATH.1, PATH.2, … then PATH hold every decision exactly once, each
// line whole, in the order they were written; a reopened log rotates on
// into the next number, renaming no file twice.
func TestDecisionLogRotation(t *testing.T) {
	for _, tc := range []struct {
		name string
		rot  policy.DecisionLogRotation
	}{
		{"size", policy.DecisionLogRotation{MaxSize: 8 << 10, MaxAge: -1}},
		{"age", policy.DecisionLogRotation{MaxSize: -1, MaxAge: time.Nanosecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.log")
			var ids []string
			for range 2 {
				eng, err := policy.New(t.Context(), policy.Config{FS: policies.FS, Logger: quiet, DecisionLog: path,
					DecisionLogRotate: tc.rot, Timeout: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				for i := range 40 {
					labels := []string{}
					if i%4 == 3 {
						labels = []string{"health"} // refused: waits for its line, so lines come in batches
					}
					d, err := eng.Decide(t.Context(), send(june, labels, manila))
					if err != nil {
						t.Fatal(err)
					}
					ids = append(ids, d.ID)
				}
				if err := eng.Close(); err != nil {
					t.Fatal(err)
				}
			}
			files, _ := filepath.Glob(path + ".*")
			if len(files) < 3 {
				t.Fatalf("%d rotated files, want several", len(files))
			}
			var got []string
			for n := 1; n <= len(files); n++ {
				got = append(got, readIDs(t, fmt.Sprintf("%s.%d", path, n))...)
			}
			got = append(got, readIDs(t, path)...)
			if strings.Join(got, ",") != strings.Join(ids, ",") {
				t.Errorf("read back %d decisions (in file order), want the %d written, in order", len(got), len(ids))
			}
		})
	}
}

func readIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var e policy.DecisionLogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		ids = append(ids, e.DecisionID)
	}
	return ids
}
