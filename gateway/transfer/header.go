package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/store"
)

// maxAgeHeader bounds the bytes read to find a stored ciphertext's age header.
const maxAgeHeader = 1 << 20

// AgeHeader returns the age header of a ready transfer addressed to caller,
// for a front that must state the decrypted size before a download starts (the
// SFTP front's custodial inbox, where a stat must give the size served). The
// header's length and the ciphertext's size determine the plaintext's size.
// It asks no policy decision and writes no audit entry: the caller is a
// recipient, the header is what its inbox listing already exposes as the start
// of the ciphertext, and nothing of the payload is read.
func (s *Service) AgeHeader(ctx context.Context, caller spiffeid.ID, id string) ([]byte, int64, error) {
	t, _, err := s.visible(ctx, caller, id)
	if err != nil {
		return nil, 0, err
	}
	if !slices.Contains(t.Recipients, caller.String()) {
		return nil, 0, ErrNotFound
	}
	if t.State != store.StateReady {
		return nil, 0, ErrNotReady
	}
	f, err := s.store.Open(ctx, id)
	if errors.Is(err, store.ErrNotComplete) {
		return nil, 0, ErrNotReady
	}
	if err != nil {
		return nil, 0, fmt.Errorf("transfer: open %s: %w", id, err)
	}
	defer f.Close()
	hdr, err := age.ExtractHeader(bufio.NewReader(io.LimitReader(store.NewBlobStream(f), maxAgeHeader)))
	if err != nil {
		return nil, 0, fmt.Errorf("transfer: %s: %w", id, err)
	}
	return hdr, t.CiphertextSize, nil
}
