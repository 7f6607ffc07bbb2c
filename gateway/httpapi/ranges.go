package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveRange serves content (size bytes, last changed at modtime) for a GET that
// may carry a Range: http.ServeContent, with the Range first put through
// rangeFor and every 416 given its Content-Range. It returns the bytes of
// content written.
func serveRange(w http.ResponseWriter, r *http.Request, size int64, modtime time.Time, content io.ReadSeeker) int64 {
	keep, none := rangeFor(r.Header.Get("Range"))
	if none && r.Header.Get("If-Range") == "" {
		unsatisfiable(w, size)
		return 0
	}
	if !none {
		r.Header.Set("Range", keep)
	}
	cw := &countingWriter{ResponseWriter: rangeWriter{w, size}}
	http.ServeContent(cw, r, "", modtime, content)
	return cw.n
}

// deliveryStart is the first byte a download can possibly start at, for the core
// (which re-hashes the stored ciphertext for a delivery from 0): rangeStart's
// answer, but 0 whenever the request carries If-Range, with which ServeContent
// sends the whole content when the validator does not match (found by
// FuzzDeliveryStart: "bytes=100-" with any other If-Range was delivered from byte 0
// unchecked).
func deliveryStart(r *http.Request) int64 {
	if _, ok := r.Header["If-Range"]; ok {
		return 0
	}
	return rangeStart(r.Header.Get("Range"))
}

// rangeFor decides what a download's Range header v gets where http.ServeContent
// does not follow RFC 9110 on its own. It returns the Range value to hand to
// ServeContent ("" serves the whole content) and whether the request is
// unsatisfiable (416 with Content-Range "bytes */size"):
//
//   - a unit other than bytes is ignored (RFC 9110 §14.2: the server MUST ignore
//     a unit it does not understand; ServeContent answers 416); "Bytes" is bytes,
//     units being case-insensitive;
//   - a zero-length suffix range ("-0") selects nothing and is dropped from the
//     set; a set of only those is unsatisfiable (ServeContent answers a 206 whose
//     Content-Range ends before it starts, golang/go#81262).
//
// Everything else goes to ServeContent as it came.
func rangeFor(v string) (keep string, unsatisfiable bool) {
	if v == "" {
		return "", false
	}
	unit, set, ok := strings.Cut(v, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return "", false
	}
	specs := strings.Split(set, ",")
	kept := specs[:0]
	for _, s := range specs {
		if !zeroSuffix(strings.TrimSpace(s)) {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		return "", true
	}
	return "bytes=" + strings.Join(kept, ","), false
}

// zeroSuffix reports whether s is the suffix range "-0" (any number of zeros).
func zeroSuffix(s string) bool {
	digits, ok := strings.CutPrefix(s, "-")
	return ok && digits != "" && strings.Trim(digits, "0") == ""
}

// unsatisfiable answers a Range that selects no byte of size bytes.
func unsatisfiable(w http.ResponseWriter, size int64) {
	w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
	http.Error(w, "no byte of the transfer is in the requested range", http.StatusRequestedRangeNotSatisfiable)
}

// rangeWriter gives every 416 that http.ServeContent writes the Content-Range
// "bytes */size" RFC 9110 §15.5.17 asks for (it sets it only when the ranges
// miss the content, not when they do not parse).
type rangeWriter struct {
	http.ResponseWriter
	size int64
}

func (w rangeWriter) WriteHeader(code int) {
	if code == http.StatusRequestedRangeNotSatisfiable && w.Header().Get("Content-Range") == "" {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(w.size, 10))
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w rangeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
