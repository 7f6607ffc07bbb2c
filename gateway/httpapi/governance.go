package httpapi

import (
	"net/http"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
)

// Governance routes (issue 14): destruction certificates, four-eyes matter
// requests and legal holds. Each is one call into the core.
func (h *Handler) governanceRoutes() {
	h.route("GET "+api.PathTransfer+"{id}/certificate", h.certificate)
	h.route("POST "+api.PathMatterRequests, h.requestRecipient)
	h.route("GET "+api.PathMatterRequests, h.pendingRequests)
	h.route("POST "+api.PathMatterRequests+"/{id}/approve", h.approveRequest)
	h.route("POST "+api.PathHolds, h.placeHold)
	h.route("POST "+api.PathHolds+"/{matter}/lift", h.liftHold)
	h.route("GET "+api.PathHolds, h.holds)
}

func (h *Handler) certificate(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	c, err := h.svc.Certificate(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(c.Marshal())
	return nil
}

func (h *Handler) requestRecipient(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.MatterRequestCreate
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := h.svc.RequestRecipient(r.Context(), caller, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) pendingRequests(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	rs, err := h.svc.PendingRequests(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.MatterRequestList{Requests: rs})
	return nil
}

func (h *Handler) approveRequest(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	out, err := h.svc.ApproveRequest(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) placeHold(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.HoldRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := h.svc.PlaceHold(r.Context(), caller, req.Matter, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) liftHold(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.HoldRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := h.svc.LiftHold(r.Context(), caller, r.PathValue("matter"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) holds(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	hs, err := h.svc.Holds(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.HoldList{Holds: hs})
	return nil
}
