package transfer

import (
	"context"
	"fmt"
	"io"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/agecheck"
	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
	"github.com/lexgate/lexgate/gateway/store"
)

// Parallel uploads: on a long lossy path one connection's congestion window
// caps what it carries, so lex sends a large ciphertext as several ranges at
// once, over separate connections, into the same resumable transfer. The first
// bytes (the age header, checked by agecheck before anything is kept) go first,
// alone; the other ranges then arrive in any order. The store keeps the ranges
// beyond the contiguous prefix durably and advances the prefix, and its hash,
// as they join it, so the completion, the hash check and the seal are those of
// an in-order upload.

// UploadProgress returns how much of the caller's transfer the gateway holds
// durably: the contiguous prefix, where an in-order upload resumes, and the
// ranges of a parallel upload held beyond it, which a resumed one need not send
// again.
func (s *Service) UploadProgress(ctx context.Context, caller spiffeid.ID, id string) (int64, []api.Span, error) {
	if _, err := s.sent(ctx, caller, id); err != nil {
		return 0, nil, err
	}
	p, err := s.store.UploadProgress(ctx, id)
	if err != nil {
		return 0, nil, fmt.Errorf("transfer: upload progress of %s: %w", id, err)
	}
	return p.Offset, apiSpans(p.Ranges), nil
}

// UploadRange writes ciphertext from r into the caller's transfer at
// [offset, end), one range of a parallel upload, and returns the durable prefix
// and the ranges held beyond it afterwards. Until the prefix holds the first
// bytes, a range at offset > 0 is an *OffsetError expecting 0. A range ending
// past the declared size, or a body longer than the range, is ErrTooLarge and
// nothing of it is kept. The range that completes the upload checks the SHA-256
// as Upload does; a streamed transfer is checked at Seal.
func (s *Service) UploadRange(ctx context.Context, caller spiffeid.ID, id string, offset, end int64, r io.Reader) (int64, []api.Span, error) {
	if offset < 0 || end <= offset {
		return 0, nil, badRequest("range %d-%d is empty", offset, end)
	}
	t, err := s.sent(ctx, caller, id)
	if err != nil {
		return 0, nil, err
	}
	switch {
	case end > t.CiphertextSize:
		return t.Offset, nil, fmt.Errorf("%w: range %d-%d ends past the %d bytes the manifest declared", ErrTooLarge, offset, end, t.CiphertextSize)
	case t.State == store.StateReady: // a retried range: the completion may not be logged yet
		return t.Offset, nil, s.auditUpload(ctx, t)
	case t.State == store.StateQuarantined:
		return t.Offset, nil, ErrHashMismatch
	}
	crashpoint.Hit("transfer.upload.write")
	var p store.Progress
	if offset == 0 { // the age header passes agecheck before the store sees a byte
		r, err = agecheck.Check(r)
	}
	if err == nil {
		p, err = s.store.WriteRange(ctx, id, offset, end, r, s.now().UTC())
	}
	if err == nil && p.Offset == t.CiphertextSize && t.CiphertextSHA256 != "" && !p.Done {
		return p.Offset, nil, nil // another range completed it, and logs it
	}
	n, err := s.uploaded(ctx, caller, t, p.Offset, err)
	return n, apiSpans(p.Ranges), err
}

func apiSpans(spans []store.Span) []api.Span {
	if len(spans) == 0 {
		return nil
	}
	out := make([]api.Span, len(spans))
	for i, sp := range spans {
		out[i] = api.Span{Start: sp.Start, End: sp.End}
	}
	return out
}
