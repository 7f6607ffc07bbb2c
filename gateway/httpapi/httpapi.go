// Package httpapi is the HTTP/3 and HTTPS front of the gateway: a thin adapter from
// v1 API requests (see package api) to the transfer core. It owns one thing beyond
// translation: mapping core errors to HTTP status codes and api.Error documents, in
// writeError, and nowhere else.
//
// The same Handler serves HTTP/3 (QUIC) and HTTP/2 (TCP). It expects the connection
// to have passed a SPIFFE mutual-TLS handshake; a request without a verified peer
// certificate is refused with 401 before any route runs.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/identity"
	"github.com/lexgate/lexgate/gateway/transfer"
)

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 256 << 10

// Observer receives per-request facts for metrics. All methods must be cheap.
type Observer interface {
	Request(route string, status int, d time.Duration)
	BytesIn(n int64)
	BytesOut(n int64)
}

type nopObserver struct{}

func (nopObserver) Request(string, int, time.Duration) {}
func (nopObserver) BytesIn(int64)                      {}
func (nopObserver) BytesOut(int64)                     {}

// Handler serves the v1 API over svc.
type Handler struct {
	svc *transfer.Service
	log *slog.Logger
	obs Observer
	mux *http.ServeMux
}

// New returns the API handler. log and obs may be nil.
func New(svc *transfer.Service, log *slog.Logger, obs Observer) *Handler {
	if log == nil {
		log = slog.Default()
	}
	if obs == nil {
		obs = nopObserver{}
	}
	h := &Handler{svc: svc, log: log, obs: obs, mux: http.NewServeMux()}
	h.route("PUT "+api.PathKeys, h.registerKeys)
	h.route("GET "+api.PathKeys, h.lookupKeys)
	h.route("POST "+api.PathTransfers, h.create)
	h.route("GET "+api.PathInbox, h.inbox)
	h.route("GET "+api.PathTransfer+"{id}", h.status)
	h.route("HEAD "+api.PathTransfer+"{id}/content", h.offset)
	h.route("PATCH "+api.PathTransfer+"{id}/content", h.upload)
	h.route("GET "+api.PathTransfer+"{id}/content", h.download)
	h.route("POST "+api.PathTransfer+"{id}/seal", h.seal)
	h.route("DELETE "+api.PathTransfer+"{id}", h.cancel)
	h.route("POST "+api.PathTransfer+"{id}/ack", h.ack)
	h.route("POST "+api.PathTransfer+"{id}"+api.PathIntegrityReport, h.integrityReport)
	h.route("POST "+api.PathPolicyExplain, h.explain)
	h.route("GET "+api.PathTransfer+"{id}/receipt", h.receipt)
	h.governanceRoutes()
	h.adminRoutes()
	return h
}

type callerKey struct{}
type reqIDKey struct{}

// handlerFunc is a route: it returns an error instead of writing one.
type handlerFunc func(w http.ResponseWriter, r *http.Request, caller spiffeid.ID) error

func (h *Handler) route(pattern string, fn handlerFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if sw, ok := w.(*statusWriter); ok {
			sw.route = pattern
		}
		caller, _ := r.Context().Value(callerKey{}).(spiffeid.ID)
		if err := fn(w, r, caller); err != nil {
			h.writeError(w, r, err)
		}
	})
}

// ServeHTTP authenticates the request from its TLS state, tags the context with the
// caller and a request id, and dispatches it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := newRequestID()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	sw.Header().Set("X-Request-Id", rid)
	log := h.log.With("method", r.Method, "path", r.URL.Path, "proto", r.Proto)
	caller, err := identity.PeerID(r.TLS)
	if err != nil {
		log.Warn("request without a verified SPIFFE identity", "request_id", rid, "err", err)
		writeJSON(sw, http.StatusUnauthorized, api.Error{Code: "unauthenticated",
			Message: "a verified SPIFFE client certificate is required", RequestID: rid})
		return
	}
	ctx := withLogAttrs(r.Context(), slog.String("request_id", rid), slog.String("caller", caller.String()))
	ctx = context.WithValue(ctx, callerKey{}, caller)
	ctx = context.WithValue(ctx, reqIDKey{}, rid)
	h.mux.ServeHTTP(sw, r.WithContext(ctx))
	route := sw.route
	if route == "" {
		route = "unmatched"
	}
	d := time.Since(start)
	h.obs.Request(route, sw.status, d)
	log.InfoContext(ctx, "request", "status", sw.status, "duration_ms", d.Milliseconds(), "bytes_out", sw.n)
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusWriter struct {
	http.ResponseWriter
	route  string // the matched route pattern, for metrics
	status int
	n      int64
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxJSONBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: " + err.Error())
	}
	return nil
}

// badRequestError is an input error found by the front itself.
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

func badRequest(msg string) error { return &badRequestError{msg} }

// writeError is the one place where errors become HTTP statuses and api.Error documents.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	rid, _ := r.Context().Value(reqIDKey{}).(string)
	e := api.Error{Message: err.Error(), RequestID: rid}
	status := http.StatusInternalServerError
	var (
		denied *transfer.DeniedError
		offErr *transfer.OffsetError
		bad    *badRequestError
		maxErr *http.MaxBytesError
	)
	switch {
	case errors.As(err, &denied):
		status, e.Code, e.DecisionID = http.StatusForbidden, api.CodeDenied, denied.Decision.ID
		e.Message = strings.ReplaceAll(denied.Action, "_", " ") + " not allowed"
		for _, rs := range denied.Decision.Reasons {
			e.Reasons = append(e.Reasons, api.Reason{Code: rs.Code, Message: rs.Message})
		}
	case errors.Is(err, transfer.ErrNotFound):
		status, e.Code = http.StatusNotFound, api.CodeNotFound
	case errors.As(err, &offErr):
		status, e.Code, e.Offset = http.StatusConflict, api.CodeConflict, offErr.Expected
		w.Header().Set(api.HeaderUploadOffset, strconv.FormatInt(offErr.Expected, 10))
	case errors.As(err, &bad), errors.Is(err, transfer.ErrBadRequest):
		status, e.Code = http.StatusBadRequest, api.CodeBadRequest
	case errors.As(err, &maxErr), errors.Is(err, transfer.ErrTooLarge):
		status, e.Code = http.StatusRequestEntityTooLarge, api.CodeTooLarge
	case errors.Is(err, transfer.ErrHashMismatch):
		status, e.Code = http.StatusUnprocessableEntity, api.CodeHashMismatch
	case errors.Is(err, transfer.ErrNotReady):
		status, e.Code = http.StatusConflict, api.CodeNotReady
	case errors.Is(err, transfer.ErrNoSpace):
		status, e.Code, e.Message = http.StatusInsufficientStorage, api.CodeUnavailable, "the gateway's storage is full; nothing was acknowledged (an upload resumes from its last acknowledged offset), retry later"
	case errors.Is(err, transfer.ErrUnavailable):
		status, e.Code, e.Message = http.StatusServiceUnavailable, api.CodeUnavailable, "the gateway's ciphertext storage is unavailable; nothing past the durable offset was acknowledged (an upload resumes from there), retry later"
	case errors.Is(err, transfer.ErrAudit):
		status, e.Code, e.Message = http.StatusServiceUnavailable, api.CodeUnavailable, "the audit log could not record this action; nothing was acknowledged, retry later"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status, e.Code, e.Message = http.StatusServiceUnavailable, api.CodeUnavailable, "request cancelled"
	default:
		e.Code, e.Message = api.CodeInternal, "internal error; quote request id "+rid
	}
	if status == http.StatusNotFound {
		e.Message = "no such transfer or key" // identical for absent and not-yours
	}
	lvl := slog.LevelInfo
	if status >= 500 {
		lvl = slog.LevelError
	}
	h.log.Log(r.Context(), lvl, "request failed", "status", status, "code", e.Code, "err", err)
	writeJSON(w, status, e)
}
