package transfer

import (
	"errors"
	"strings"
	"syscall"
)

// ErrNoSpace: the gateway's disk is full. Nothing of the request was
// acknowledged; an upload keeps only what its last acknowledged offset covers
// and resumes from there once space returns. It comes with ErrAudit when the
// audit log is what could not be written.
var ErrNoSpace = errors.New("transfer: the gateway's storage is full")

// noSpace reports whether err comes from a full disk: ENOSPC from the spool or
// the audit log's files, or SQLite's SQLITE_FULL. The audit log and SQLite report
// it as text, not as a wrapped errno, so the text is checked too.
func noSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, "database or disk is full")
}
