package sftpfront

import (
	"errors"
	"fmt"

	"github.com/pkg/sftp"

	"github.com/lexgate/lexgate/gateway/transfer"
)

// statusError is an SFTP status with lexgate's message: pkg/sftp sends the
// code it wraps and the message as the status text.
type statusError struct {
	code error // one of sftp.ErrSSHFx…
	msg  string
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return e.code }

func denied(format string, args ...any) error {
	return &statusError{code: sftp.ErrSSHFxPermissionDenied, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &statusError{code: sftp.ErrSSHFxNoSuchFile, msg: fmt.Sprintf(format, args...)}
}

func failure(format string, args ...any) error {
	return &statusError{code: sftp.ErrSSHFxFailure, msg: fmt.Sprintf(format, args...)}
}

// status turns a core error into an SFTP status, in this one place: a policy
// refusal is permission denied (its reasons are in the audit log and in the
// message), an invisible transfer is no such file, everything else a failure.
func status(err error) error {
	var se *statusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return se
	case errors.Is(err, transfer.ErrDenied):
		return denied("refused by policy: %s", reasonText(err))
	case errors.Is(err, transfer.ErrNotFound):
		return notFound("%v", err)
	case errors.Is(err, transfer.ErrTooLarge), errors.Is(err, transfer.ErrBadRequest),
		errors.Is(err, transfer.ErrNotReady), errors.Is(err, transfer.ErrAudit):
		return failure("%v", err)
	}
	return failure("lexgate internal error; see the gateway's log")
}
