package audit

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strings"
)

// Handler serves the log read-only in the tlog-tiles layout, relative to where it
// is mounted (strip the prefix first): "checkpoint", "tile/<L>/<N>[.p/<W>]" and
// "tile/entries/<N>[.p/<W>]". Nothing else in the log's directory is served.
// Checkpoints are not cached; tiles, which never change once full, are.
func (l *Log) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		if p != "checkpoint" && !strings.HasPrefix(p, "tile/") || strings.Contains(p, "..") || !fs.ValidPath(p) {
			http.NotFound(w, r)
			return
		}
		if l.cfg.shared() {
			l.serveReader(w, r, p)
			return
		}
		root, err := os.OpenRoot(l.cfg.Dir)
		if err != nil {
			http.Error(w, "audit log unavailable", http.StatusInternalServerError)
			return
		}
		defer root.Close()
		b, err := root.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			http.Error(w, "audit log unavailable", http.StatusInternalServerError)
			return
		}
		if p == "checkpoint" {
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
			if !strings.Contains(p, ".p/") {
				w.Header().Set("Cache-Control", "max-age=31536000, immutable")
			}
		}
		w.Write(b)
	})
}
