package httpapi

import (
	"io"
	"net/http"
	"strconv"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/transfer"
)

func (h *Handler) registerKeys(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.KeysRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	resp, err := h.svc.RegisterKeys(r.Context(), caller, req.Recipients, req.Registration)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (h *Handler) lookupKeys(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	target, err := spiffeid.FromString(r.URL.Query().Get("id"))
	if err != nil {
		return badRequest("query parameter id must be a SPIFFE ID: " + err.Error())
	}
	resp, err := h.svc.LookupKeys(r.Context(), caller, target)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.CreateTransferRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := h.svc.Create(r.Context(), caller, req.Manifest)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if t.Offset > 0 || t.State != api.StateUploading {
		status = http.StatusOK // an existing transfer: resume
	}
	w.Header().Set("Location", api.PathTransfer+t.ID)
	writeJSON(w, status, t)
	return nil
}

func (h *Handler) seal(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var req api.SealRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	t, err := h.svc.Seal(r.Context(), caller, r.PathValue("id"), req.Manifest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	if err := h.svc.Cancel(r.Context(), caller, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// inbox lists the caller's inbox; with If-None-Match and "Prefer: wait=N"
// it is a long poll that answers 304 when nothing changed in N seconds.
func (h *Handler) inbox(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	ts, tag, changed, err := h.svc.WatchInbox(r.Context(), caller, r.Header.Get("If-None-Match"), preferWait(r.Header.Get("Prefer")))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", tag)
	if !changed {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeJSON(w, http.StatusOK, api.InboxResponse{Transfers: ts})
	return nil
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	t, err := h.svc.Status(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (h *Handler) offset(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	off, spans, err := h.svc.UploadProgress(r.Context(), caller, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set(api.HeaderUploadOffset, strconv.FormatInt(off, 10))
	if len(spans) > 0 {
		w.Header().Set(api.HeaderUploadRanges, api.FormatSpans(spans))
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) upload(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	off, err := api.ParseOffset(r.Header.Get(api.HeaderUploadOffset))
	if err != nil {
		return badRequest("header " + err.Error())
	}
	if ct := r.Header.Get("Content-Type"); ct != api.ContentTypeChunk {
		return badRequest("Content-Type must be " + api.ContentTypeChunk)
	}
	body := &countingReader{r: r.Body}
	var n int64
	var spans []api.Span
	if v := r.Header.Get(api.HeaderUploadRangeEnd); v != "" { // one range of a parallel upload
		end, perr := api.ParseOffset(v)
		if perr != nil {
			return badRequest("header " + api.HeaderUploadRangeEnd + ": " + perr.Error())
		}
		n, spans, err = h.svc.UploadRange(r.Context(), caller, r.PathValue("id"), off, end, body)
	} else {
		n, err = h.svc.Upload(r.Context(), caller, r.PathValue("id"), off, body)
	}
	h.obs.BytesIn(body.n)
	if err != nil {
		return err
	}
	w.Header().Set(api.HeaderUploadOffset, strconv.FormatInt(n, 10))
	if len(spans) > 0 {
		w.Header().Set(api.HeaderUploadRanges, api.FormatSpans(spans))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	check := transfer.CheckByGateway
	switch v := r.Header.Get(api.HeaderIntegrity); v {
	case "":
	case api.IntegrityRecipient:
		check = transfer.CheckByRecipient
	default:
		return badRequest("header " + api.HeaderIntegrity + ": " + strconv.Quote(v) + " is not a checker; send " + api.IntegrityRecipient + " or leave it out")
	}
	f, t, err := h.svc.OpenChecked(r.Context(), caller, r.PathValue("id"), deliveryStart(r), check)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+t.CiphertextSHA256+`"`)
	h.obs.BytesOut(serveRange(w, r, t.CiphertextSize, t.Completed, f))
	return nil
}

// integrityReport takes a recipient's report of a ciphertext that did not
// match its signed manifest (api.PathIntegrityReport).
func (h *Handler) integrityReport(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	var rep api.IntegrityReport
	if err := readJSON(r, &rep); err != nil {
		return err
	}
	if err := h.svc.ReportMismatch(r.Context(), caller, r.PathValue("id"), rep); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.IntegrityVerdict{Stored: "intact",
		Message: "the gateway's stored copy matches the signed manifest: the bytes changed after they left the gateway; download again"})
	return nil
}

func (h *Handler) ack(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error {
	if err := h.svc.Ack(r.Context(), caller, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}
