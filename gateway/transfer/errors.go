package transfer

import (
	"errors"
	"fmt"

	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// Errors of the core. The fronts turn them into wire codes in one place each.
var (
	// ErrNotFound: no such transfer or key visible to the caller. A transfer that
	// exists but is not the caller's is reported exactly like one that does not.
	ErrNotFound = errors.New("transfer: not found")
	// ErrBadRequest: the caller's input is malformed; the wrapped message says how.
	ErrBadRequest = errors.New("transfer: bad request")
	// ErrDenied is wrapped by every *DeniedError.
	ErrDenied = errors.New("transfer: refused by policy")
	// ErrNotReady: the transfer's upload is not complete.
	ErrNotReady = errors.New("transfer: upload not complete")
	// ErrTooLarge: more bytes than the manifest declared, or over a configured limit.
	ErrTooLarge = errors.New("transfer: too large")
	// ErrHashMismatch: the complete upload's SHA-256 differs from the manifest; the
	// transfer is quarantined and never deliverable.
	ErrHashMismatch = errors.New("transfer: ciphertext hash mismatch")
	// ErrUnavailable: the ciphertext storage (an object store) could not be
	// reached or failed; nothing past the durable offset was acknowledged, and
	// the same request succeeds once it is back. It is the store's sentinel,
	// named here so that the fronts need not import the store.
	ErrUnavailable = store.ErrUnavailable
)

// DeniedError is a policy refusal, with the decision and its reasons.
type DeniedError struct {
	Decision policy.Decision
	// Recipient is set when a per-recipient check refused.
	Action string
}

func (e *DeniedError) Error() string {
	msg := fmt.Sprintf("transfer: %s refused by policy (decision %s)", e.Action, e.Decision.ID)
	for _, r := range e.Decision.Reasons {
		msg += "; " + r.Code + ": " + r.Message
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// OffsetError says that an upload chunk did not start at the durable offset.
type OffsetError struct {
	Expected int64
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("transfer: upload offset mismatch, the gateway holds %d bytes", e.Expected)
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, args...)...)
}
