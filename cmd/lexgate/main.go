// Command lexgate is the lexgate gateway daemon. "lexgate serve --config FILE" runs
// it; "lexgate certs" mints a development PKI. Run "lexgate help" for details.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lexgate/lexgate/cmd/internal/cpuprof"
	"github.com/lexgate/lexgate/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := cpuprof.Start()
	code := gateway.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}
