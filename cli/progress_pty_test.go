//go:build linux

package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// openPTY opens a pseudo-terminal and returns its two ends: what a program
// writes to the terminal end is read from the controller end.
func openPTY(t *testing.T) (controller, term *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	controller = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	term, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.Close(); controller.Close() })
	return controller, term
}

// TestSendProgressOnATerminal: on a real terminal lex send draws its progress
// bar with the rate, and leaves it at 100 % with the time taken on a line of
// its own, the result on stdout untouched by it.
func TestSendProgressOnATerminal(t *testing.T) {
	_, alice, _ := setup(t)
	controller, term := openPTY(t)
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() { io.Copy(&screen, controller); close(read) }()

	var stdout bytes.Buffer
	root, _ := bigBundle(t, 8<<20)
	code := cli.Main(t.Context(), []string{"--config", alice, "send", "--json", "--to", gatewaytest.Team, "--matter", "HL-2026-0042", root}, nil, &stdout, term)
	term.Close()
	<-read // the controller reads EIO once the terminal end is closed
	if code != cli.ExitOK {
		t.Fatalf("send: exit %d\n%s", code, screen.String())
	}
	if !json.Valid(stdout.Bytes()) {
		t.Errorf("stdout %q is not the JSON result alone", stdout.String())
	}
	out := strings.ReplaceAll(screen.String(), "\r\n", "\n") // the terminal's line discipline
	barLine, _, ok := strings.Cut(out[strings.Index(out, "sending"):], "\n")
	if !ok {
		t.Fatalf("the progress bar's line never ended:\n%q", out)
	}
	last := barLine[strings.LastIndex(barLine, "\r")+1:]
	if !strings.Contains(last, "100%") || !strings.Contains(last, "iB/s  in ") {
		t.Errorf("the bar ends as %q, want 100 %%, the rate and the time taken", last)
	}
	t.Logf("the bar ends as %q", last)
}
