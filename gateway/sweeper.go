package gateway

import (
	"context"

	"github.com/lexgate/lexgate/gateway/sftpfront"
	"github.com/lexgate/lexgate/gateway/transfer"
)

// startSweeper starts the retention sweeper (transfer.Service.RunSweeper),
// owned by the gateway: stopSweeper cancels it and waits for it.
func (g *Gateway) startSweeper(ctx context.Context) {
	g.sweepMu.Lock()
	defer g.sweepMu.Unlock()
	if g.sweepCancel != nil || g.svc == nil {
		return
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	g.sweepCancel, g.sweepDone = cancel, make(chan struct{})
	go func() {
		defer close(g.sweepDone)
		g.svc.RunSweeper(sctx)
	}()
}

// stopSweeper stops the sweeper and waits for it; safe to call more than once.
func (g *Gateway) stopSweeper() {
	g.sweepMu.Lock()
	cancel, done := g.sweepCancel, g.sweepDone
	g.sweepMu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Sweep runs one retention sweep now, as the sweeper does every
// transfer.sweep_interval: for operators' tools and tests.
func (g *Gateway) Sweep(ctx context.Context) (transfer.SweepReport, error) {
	return g.svc.Sweep(ctx)
}

// custodialAccounts reports the SPIFFE IDs of SFTP accounts whose age
// identity the gateway holds (custodial_inbox).
func custodialAccounts(c sftpfront.Config) func(string) bool {
	ids := map[string]bool{}
	for _, a := range c.Accounts {
		if a.CustodialInbox {
			ids[a.ID] = true
		}
	}
	return func(id string) bool { return ids[id] }
}
