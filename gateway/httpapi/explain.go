package httpapi

import (
	"net/http"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
)

// explain answers POST /v1/policy/explain: what the policy would decide.
func (h *Handler) explain(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.ExplainRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	resp, err := h.svc.Explain(r.Context(), caller, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
