// Package cpuprof lets lexgate's commands write a CPU profile for developers
// measuring them: when LEXGATE_CPUPROFILE names a directory, Start profiles
// the process into <dir>/<command>-<pid>.pprof until the returned stop runs,
// so a benchmark that starts both lex and lexgate gets one profile of each.
package cpuprof

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// Env is the environment variable naming the profile directory.
const Env = "LEXGATE_CPUPROFILE"

// Start begins a CPU profile into the directory named by [Env], if set,
// and returns the function that ends it. A file that cannot be created is
// reported on stderr and the command runs unprofiled.
func Start() (stop func()) {
	dir := os.Getenv(Env)
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", filepath.Base(os.Args[0]), os.Getpid()))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Env, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Env, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
