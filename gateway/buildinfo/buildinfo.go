// Package buildinfo describes the running binary for --version: lexgate's
// version and commit, the Go toolchain, and the versions of the libraries that
// decide what it can talk to and how it encrypts (age, OPA, quic-go, go-spiffe,
// pkg/sftp, tessera), all read from the build information the Go linker embeds
// ([runtime/debug.ReadBuildInfo]). It is a leaf package: lex and lexgate both
// print it.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// commit is the VCS revision, set by the Makefile's build with
// -ldflags "-X github.com/lexgate/lexgate/gateway/buildinfo.commit=…" for
// builds where the go command does not stamp it (-buildvcs=false, a git
// worktree); the go command's own stamp wins when there is one.
var commit string

// Libraries are the modules --version reports, in this order.
var Libraries = []string{
	"filippo.io/age",
	"github.com/open-policy-agent/opa",
	"github.com/quic-go/quic-go",
	"github.com/spiffe/go-spiffe/v2",
	"github.com/pkg/sftp",
	"github.com/transparency-dev/tessera",
}

// Info is what --version prints.
type Info struct {
	Program string `json:"program"`
	// Version is the lexgate module's version: a release tag, a pseudo-version,
	// or "(devel)" for a build from a checkout.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, "" if unknown;
	// Modified says the checkout had uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// Libraries maps each module of Libraries linked into the binary to its
	// version.
	Libraries map[string]string `json:"libraries"`
}

// Read returns the Info of the running binary, called program.
func Read(program string) Info {
	in := Info{Program: program, Version: "(unknown)", Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Libraries: map[string]string{}}
	in.Commit = commit
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	in.Version = bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" { // a commit given at build time wins
				in.Commit = s.Value
			}
		case "vcs.modified":
			in.Modified = s.Value == "true"
		case "vcs.time":
			in.Time = s.Value
		}
	}
	for _, m := range bi.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		for _, lib := range Libraries {
			if m.Path == lib {
				in.Libraries[lib] = m.Version
			}
		}
	}
	return in
}

// String is the human form: the program and version on the first line, then
// one fact a line.
func (in Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", in.Program, in.Version)
	if in.Commit != "" {
		mod := ""
		if in.Modified {
			mod = " (modified)"
		}
		fmt.Fprintf(&b, "commit  %s\n", strings.TrimSpace(in.Commit+mod+" "+in.Time))
	}
	fmt.Fprintf(&b, "go      %s %s\n", in.Go, in.Platform)
	for _, lib := range Libraries {
		if v, ok := in.Libraries[lib]; ok {
			fmt.Fprintf(&b, "        %s %s\n", lib, v)
		}
	}
	return b.String()
}
