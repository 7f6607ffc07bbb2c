// Command lex is lexgate's command-line client for paralegals: it sends bundles
// end-to-end encrypted with age through a lexgate gateway and receives them.
// Run "lex help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/cmd/internal/cpuprof"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := cpuprof.Start()
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}
