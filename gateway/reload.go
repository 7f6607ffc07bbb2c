package gateway

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ReloadPolicy recompiles the policy set from policy.dir and, if it compiles
// and its tests pass, puts it in force; otherwise the last good set keeps
// serving and the rejection is logged and returned. SIGHUP does the same.
func (g *Gateway) ReloadPolicy(ctx context.Context) error {
	return g.policy.Reload(ctx)
}

// PolicyVersion identifies the policy set in force, "" when none is.
func (g *Gateway) PolicyVersion() string { return g.policy.Version() }

// watchPolicy reloads the policy set on SIGHUP and when its files change
// (policy.watch_interval), until ctx is done or stop is called. With the
// embedded policies there is nothing to watch.
func (g *Gateway) watchPolicy(ctx context.Context) (stop func()) {
	if g.cfg.Policy.Dir == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		g.policy.Watch(ctx)
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				g.log.InfoContext(ctx, "SIGHUP: reloading the policy set", "dir", g.cfg.Policy.Dir)
				_ = g.policy.Reload(ctx) // a rejection is logged loudly by Reload
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
