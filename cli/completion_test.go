package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lexgate/lexgate/cli"
)

// shell returns the path of a shell the test drives, failing under CI=true
// when it is missing (make deb-deps installs it) and skipping elsewhere.
func shell(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (make deb-deps installs it)", name)
		}
		t.Skipf("%s is not installed (make deb-deps installs it)", name)
	}
	return p
}

// completionScript writes lex completion SHELL to a file and returns its path.
func completionScript(t *testing.T, sh string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := cli.Main(t.Context(), []string{"completion", sh}, nil, &out, &errOut); code != cli.ExitOK {
		t.Fatalf("lex completion %s: exit %d: %s", sh, code, errOut.String())
	}
	p := filepath.Join(t.TempDir(), "lex."+sh)
	if err := os.WriteFile(p, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompletion loads each shell's script into the real shell and asks it to
// complete: command names, a command's flags, and the command after global
// flags; zsh's script is checked for syntax.
func TestCompletion(t *testing.T) {
	t.Run("bash", func(t *testing.T) {
		bash := shell(t, "bash")
		script := completionScript(t, "bash")
		for _, tc := range []struct{ words, want string }{
			{"lex se", "send"},
			{"lex send --ma", "--matter"},
			{"lex --config x.yaml rec", "receive"},
			{"lex --transport q", "quic"},
			{"lex policy ex", "explain"},
			{"lex completion f", "fish"},
		} {
			words := strings.Fields(tc.words)
			cmd := exec.Command(bash, "-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _lex; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
			cmd.Args = append(cmd.Args, words...)
			cmd.Dir = t.TempDir() // no file names to offer beside the words
			out, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != tc.want {
				t.Errorf("bash completes %q to %q (%v), want %q", tc.words, out, err, tc.want)
			}
		}
	})
	t.Run("zsh", func(t *testing.T) {
		zsh := shell(t, "zsh")
		script := completionScript(t, "zsh")
		if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, out)
		}
	})
	t.Run("fish", func(t *testing.T) {
		fish := shell(t, "fish")
		script := completionScript(t, "fish")
		for _, tc := range []struct{ line, want string }{
			{"lex se", "send"},
			{"lex send --ma", "--matter"},
			{"lex completion z", "zsh"},
		} {
			cmd := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, tc.line)
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
			if err != nil || len(got) != 1 || got[0] != tc.want {
				t.Errorf("fish completes %q to %q (%v), want %q", tc.line, out, err, tc.want)
			}
		}
	})
	var out, errOut bytes.Buffer
	if code := cli.Main(t.Context(), []string{"completion", "tcsh"}, nil, &out, &errOut); code != cli.ExitUsage {
		t.Errorf("lex completion tcsh: exit %d, want %d", code, cli.ExitUsage)
	}
}
