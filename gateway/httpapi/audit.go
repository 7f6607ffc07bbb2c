package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
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

// auditBodies streams the bodies of the caller's organisation's private
// audit entries below ?size= as JSON lines.
func (h *Handler) auditBodies(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	size, err := strconv.ParseUint(r.URL.Query().Get("size"), 10, 64)
	if err != nil {
		return badRequest("query parameter size must be the tree size of a checkpoint: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/jsonl")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	wrote := false
	err = h.svc.AuditBodies(r.Context(), caller, size, func(b api.AuditBody) error {
		wrote = true
		return enc.Encode(b)
	})
	if err != nil && !wrote {
		return err
	}
	if err != nil { // mid-stream: the client sees a cut stream, not a complete one
		h.log.ErrorContext(r.Context(), "audit bodies cut", "err", err)
		panic(http.ErrAbortHandler)
	}
	if !wrote {
		w.WriteHeader(http.StatusOK)
	}
	return nil
}
