package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"
)

// DefaultWatchInterval is how often Watch looks at Config.Dir when
// Config.WatchInterval is zero.
const DefaultWatchInterval = 2 * time.Second

// Watch reloads the policy set whenever a file under Config.Dir changes
// (a file added, removed, resized or modified), until ctx is done. It
// polls every Config.WatchInterval: no platform file-notification API, so
// editors that replace files by renaming them are seen too. A rejected set
// is logged by Reload and the last good one keeps serving. Watch returns
// at once for a set from FS or a negative interval.
func (e *Engine) Watch(ctx context.Context) {
	if e.cfg.Dir == "" || e.cfg.WatchInterval < 0 {
		return
	}
	last := fingerprint(e.cfg.Dir)
	t := time.NewTicker(e.cfg.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := fingerprint(e.cfg.Dir)
		if now == last {
			continue
		}
		last = now
		e.cfg.Logger.InfoContext(ctx, "policy files changed; reloading", slog.String("dir", e.cfg.Dir))
		_ = e.Reload(ctx) // Reload logs a rejection loudly
	}
}

// fingerprint summarises the names, sizes and modification times of the
// files under dir.
func fingerprint(dir string) string {
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(h, "%s\x00error\x00", p)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}
