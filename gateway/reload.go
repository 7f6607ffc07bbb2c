package gateway

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/lexgate/lexgate/gateway/identity"
)

// ReloadPolicy recompiles the policy set from policy.dir and, if it compiles
// and its tests pass, puts it in force; otherwise the last good set keeps
// serving and the rejection is logged and returned. SIGHUP does the same.
func (g *Gateway) ReloadPolicy(ctx context.Context) error {
	return g.policy.Reload(ctx)
}

// ReloadIdentity loads the gateway's SVID and bundle files again (see
// identity.Source.Reload): new handshakes use the renewed SVID, no restart.
// SIGHUP does the same, and the files are also watched
// (identity.watch_interval). With the Workload API there is nothing to do.
func (g *Gateway) ReloadIdentity() error {
	if err := g.id.Reload(); err != nil && !errors.Is(err, identity.ErrNotReloadable) {
		return err
	}
	return nil
}

// PolicyVersion identifies the policy set in force, "" when none is.
func (g *Gateway) PolicyVersion() string { return g.policy.Version() }

// watchReload reloads the policy set and the identity files on SIGHUP and
// when their files change (policy.watch_interval, identity.watch_interval),
// until ctx is done or stop is called. The embedded policies and a Workload
// API identity have no files to watch.
func (g *Gateway) watchReload(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if g.cfg.Policy.Dir != "" {
			g.policy.Watch(ctx)
		}
	}()
	go func() {
		defer wg.Done()
		g.id.Watch(ctx)
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if g.cfg.Policy.Dir != "" {
					g.log.InfoContext(ctx, "SIGHUP: reloading the policy set", "dir", g.cfg.Policy.Dir)
					_ = g.policy.Reload(ctx) // a rejection is logged loudly by Reload
				}
				g.log.InfoContext(ctx, "SIGHUP: reloading the identity files")
				if err := g.ReloadIdentity(); err != nil {
					g.log.ErrorContext(ctx, "SIGHUP: the identity files do not load; the loaded SVID keeps serving", "error", err)
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
