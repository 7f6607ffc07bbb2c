package buildinfo_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/gateway/buildinfo"
)

// moduleVersions asks the go command for the version of each library in go.mod.
func moduleVersions(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-m", "-f", "{{.Path}} {{.Version}}"}, buildinfo.Libraries...)...).Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, v, _ := strings.Cut(line, " ")
		m[path] = v
	}
	return m
}

// TestVersionFlags builds lex and lexgate as the Makefile does and checks what
// --version prints: the program, the commit given at build time, the Go
// toolchain, and the versions of age, OPA and quic-go (and the other
// libraries) that go.mod pins.
func TestVersionFlags(t *testing.T) {
	dir := t.TempDir()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	const commit = "0123456789abcdef0123456789abcdef01234567"
	build := exec.Command("go", "build", "-ldflags", "-X github.com/lexgate/lexgate/gateway/buildinfo.commit="+commit, "-o", dir+"/", "./cmd/lex", "./cmd/lexgate")
	build.Dir = strings.TrimSpace(string(root))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := moduleVersions(t)
	for _, tc := range []struct {
		program string
		args    []string
	}{
		{"lex", []string{"--version"}},
		{"lexgate", []string{"--version"}},
		{"lexgate", []string{"version"}},
	} {
		out, err := exec.Command(filepath.Join(dir, tc.program), tc.args...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", tc.program, tc.args, err)
		}
		text := string(out)
		lines := []string{tc.program + " ", "commit  " + commit, "go      " + runtime.Version()}
		for _, lib := range []string{"filippo.io/age", "github.com/open-policy-agent/opa", "github.com/quic-go/quic-go"} {
			lines = append(lines, lib+" "+want[lib])
		}
		for _, l := range lines {
			if !strings.Contains(text, l) {
				t.Errorf("%s %v printed\n%s\nwithout %q", tc.program, tc.args, text, l)
			}
		}
		if !strings.HasPrefix(text, tc.program+" ") {
			t.Errorf("%s %v: first line %q does not name the program", tc.program, tc.args, strings.SplitN(text, "\n", 2)[0])
		}
	}
	for _, program := range []string{"lex", "lexgate"} {
		args := []string{"--json", "--version"}
		if program == "lexgate" {
			args = []string{"version", "--json"}
		}
		out, err := exec.Command(filepath.Join(dir, program), args...).Output()
		var in buildinfo.Info
		if err != nil || json.Unmarshal(out, &in) != nil || in.Program != program || in.Commit != commit || in.Libraries["filippo.io/age"] != want["filippo.io/age"] {
			t.Errorf("%s %v: %v, %s", program, args, err, out)
		}
	}
}

func TestInfoString(t *testing.T) {
	in := buildinfo.Info{Program: "lex", Version: "v1.2.3", Commit: "abc", Modified: true, Go: "go1.99", Platform: "linux/amd64",
		Libraries: map[string]string{"filippo.io/age": "v1.3.2"}}
	want := "lex v1.2.3\ncommit  abc (modified)\ngo      go1.99 linux/amd64\n        filippo.io/age v1.3.2\n"
	if got := in.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
