//go:build crashpoints

package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Enabled reports whether the binary was built with crash points.
const Enabled = true

// target is the point named by $LEXGATE_CRASH_AT and the hit it kills at.
var target, nth = parse(os.Getenv("LEXGATE_CRASH_AT"))

var hits atomic.Int64

func parse(v string) (string, int64) {
	name, count, ok := strings.Cut(v, "#")
	if !ok {
		return name, 1
	}
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil || n < 1 {
		os.Stderr.WriteString("crashpoint: bad LEXGATE_CRASH_AT " + strconv.Quote(v) + ", want NAME or NAME#N\n")
		os.Exit(2)
	}
	return name, n
}

// Hit kills the process with SIGKILL if name is the point $LEXGATE_CRASH_AT
// names and this is the hit it asks for.
func Hit(name string) {
	if name != target || hits.Add(1) != nth {
		return
	}
	os.Stderr.WriteString("crashpoint: " + name + "\n")
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; never go on past the point
}
