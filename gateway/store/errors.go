package store

import (
	"errors"
	"fmt"
)

// Errors returned by [Store] methods. Callers test them with [errors.Is];
// the transfer core maps them to wire codes.
var (
	// ErrNotFound means no transfer or key registration has the given ID,
	// or the given party is not a recipient of the transfer.
	ErrNotFound = errors.New("store: not found")
	// ErrExists means a transfer with the same ID, or the same sender and
	// manifest hash, is already stored.
	ErrExists = errors.New("store: already exists")
	// ErrOffset means a write did not start at the durable upload offset.
	// The error is always an [*OffsetError] carrying the offset to resume from.
	ErrOffset = errors.New("store: upload offset mismatch")
	// ErrTooLarge means a write carried bytes past the declared ciphertext
	// size. Nothing from that write is kept.
	ErrTooLarge = errors.New("store: upload exceeds declared size")
	// ErrHashMismatch means the complete ciphertext did not hash to the
	// declared SHA-256. The transfer is quarantined and its bytes deleted.
	ErrHashMismatch = errors.New("store: ciphertext hash mismatch")
	// ErrNotComplete means the transfer's ciphertext is not ready to read
	// or acknowledge: it is still uploading, or it was quarantined.
	ErrNotComplete = errors.New("store: upload not complete")
	// ErrInvalid means an argument failed validation, such as an empty
	// sender or a malformed hash. The wrapping error says which.
	ErrInvalid = errors.New("store: invalid argument")
)

// OffsetError reports a write that did not start at the durable upload
// offset. It matches [ErrOffset] under [errors.Is]. A client resumes by
// sending the ciphertext from Expected.
type OffsetError struct {
	Expected int64 // the durable offset, where the next write must start
	Got      int64 // the offset the write asked for
}

// Error implements the error interface.
func (e *OffsetError) Error() string {
	return fmt.Sprintf("store: upload offset mismatch: write at %d, expected %d", e.Got, e.Expected)
}

// Unwrap returns [ErrOffset].
func (e *OffsetError) Unwrap() error { return ErrOffset }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
