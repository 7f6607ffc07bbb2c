package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// DefaultWatchInterval is how often Watch looks at Config.Dir when
// Config.WatchInterval is zero.
const DefaultWatchInterval = 2 * time.Second

// Watch reloads the policy set whenever the files under Config.Dir differ
// from those the last load attempt read (a file added, removed or its
// content changed), until ctx is done, so a change made before Watch
// starts is not missed. It polls every Config.WatchInterval: no platform
// file-notification API, so editors that replace files by renaming them
// are seen too. A rejected set
// is logged by Reload and the last good one keeps serving. Watch returns
// at once for a set from FS or a negative interval.
func (e *Engine) Watch(ctx context.Context) {
	if e.cfg.Dir == "" || e.cfg.WatchInterval < 0 {
		return
	}
	t := time.NewTicker(e.cfg.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if last := e.seen.Load(); last != nil && fingerprint(e.cfg.Dir) == *last {
			continue
		}
		e.cfg.Logger.InfoContext(ctx, "policy files changed; reloading", slog.String("dir", e.cfg.Dir))
		_ = e.Reload(ctx) // Reload logs a rejection loudly
	}
}

// fingerprint summarises the names and contents of the files under dir.
// Contents rather than modification times: two writes within one tick of
// a coarse file-system clock must still differ. Policy sets are small.
func fingerprint(dir string) string {
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(h, "%s\x00error\x00", p)
			return nil
		}
		if d.IsDir() {
			fmt.Fprintf(h, "%s/\x00", p)
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(h, "%s\x00unreadable\x00", p)
			return nil
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}
