package httpapi

import (
	"net/http"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
)

// ServeLog serves the audit log read-only under api.PathLog in the tlog-tiles
// layout (checkpoint, tile/…, tile/entries/…), to any authenticated caller. lh is
// the log's handler, which sees paths relative to api.PathLog.
func (h *Handler) ServeLog(lh http.Handler) {
	h.route("GET "+api.PathLog+"{path...}", func(w http.ResponseWriter, r *http.Request, _ spiffeid.ID) error {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + strings.TrimPrefix(r.URL.Path, api.PathLog)
		r2.URL.RawPath = ""
		lh.ServeHTTP(w, r2)
		return nil
	})
}

// receipt returns the caller's audit receipt for a transfer (the sender's upload
// completion, a recipient's acknowledgement) as an audit.Receipt document.
func (h *Handler) receipt(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	rc, err := h.svc.Receipt(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(rc.Marshal())
	return nil
}
