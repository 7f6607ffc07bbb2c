package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/store"
)

// maxRegistrationSkew bounds how far a signed registration's time may be
// from the gateway's clock.
const maxRegistrationSkew = 10 * time.Minute

// checkRegistration checks a signed registration of recipients by caller
// and returns it as JSON to store and log; nil, nil without one.
func (s *Service) checkRegistration(caller spiffeid.ID, recipients []string, reg *api.SignedRegistration) ([]byte, error) {
	if reg == nil {
		return nil, nil
	}
	custodial, err := reg.OwnerSigned(s.bundles, caller.String(), s.gatewayID, recipients)
	if err != nil {
		return nil, badRequest("signed registration: %v", err)
	}
	if custodial && !s.custodial(caller.String()) {
		return nil, badRequest("signed registration: %s is not a custodial account of this gateway", caller)
	}
	r, _, _ := reg.Verify(s.bundles)
	if d := s.now().Sub(r.Time); d > maxRegistrationSkew || d < -maxRegistrationSkew {
		return nil, badRequest("signed registration: made at %s, %v from the gateway's clock: sign it again", r.Time.Format(time.RFC3339), d.Round(time.Second))
	}
	b, err := json.Marshal(reg)
	if err != nil {
		return nil, fmt.Errorf("transfer: registration: %w", err)
	}
	return b, nil
}

// storedRegistration returns id's stored signed registration, or nil.
func (s *Service) storedRegistration(ctx context.Context, id string) (*api.SignedRegistration, error) {
	b, err := s.store.KeyRegistration(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transfer: lookup keys: %w", err)
	}
	var reg api.SignedRegistration
	if err := json.Unmarshal(b, &reg); err != nil {
		return nil, fmt.Errorf("transfer: stored registration of %s: %w", id, err)
	}
	return &reg, nil
}
