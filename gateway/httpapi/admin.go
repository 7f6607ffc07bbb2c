package httpapi

import (
	"net/http"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
)

// adminRoutes are the admin plane's routes (issue 16): revocations and
// quarantines, each one call into the core, which asks the policy.
func (h *Handler) adminRoutes() {
	h.route("GET "+api.PathAdminRevocations, h.revocations)
	h.route("POST "+api.PathAdminRevocations, h.revoke)
	h.route("POST "+api.PathAdminUnrevoke, h.unrevoke)
	h.route("GET "+api.PathAdminQuarantines, h.quarantines)
	h.route("POST "+api.PathAdminQuarantines, h.quarantine)
	h.route("POST "+api.PathAdminRelease, h.release)
	h.route("GET "+api.PathAuditBodies, h.auditBodies)
}

func (h *Handler) revocations(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	rs, err := h.svc.Revocations(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RevocationList{Revocations: rs})
	return nil
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.RevokeRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := h.svc.Revoke(r.Context(), caller, req.ID, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) unrevoke(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.RevokeRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := h.svc.Unrevoke(r.Context(), caller, req.ID, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) quarantines(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	qs, err := h.svc.Quarantines(r.Context(), caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.QuarantineList{Quarantines: qs})
	return nil
}

func (h *Handler) quarantine(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.QuarantineRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := h.svc.Quarantine(r.Context(), caller, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) release(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.QuarantineRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	out, err := h.svc.Release(r.Context(), caller, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
