package transfer

import (
	"context"
	"errors"
	"fmt"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/store"
)

// purgeDetail is the Detail of the expiry entry a purge on acknowledgement logs.
const purgeDetail = "purged: every recipient acknowledged it (transfer.purge_on_ack)"

// purgeIfDone deletes transfer id when Config.PurgeOnAck is set and every
// recipient has acknowledged it. The expiry entry is logged first, then the
// transfer deleted: a crash in between leaves a fully acknowledged transfer,
// which Reconcile purges at the next start (its expiry may then be logged twice).
// A purge that fails is logged and left to Reconcile; the ack stands.
func (s *Service) purgeIfDone(ctx context.Context, id string) {
	if !s.cfg.PurgeOnAck {
		return
	}
	t, err := s.store.Transfer(ctx, id)
	if err == nil {
		err = s.purge(ctx, t)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) { // not found: a concurrent ack purged it
		s.log.ErrorContext(ctx, "purge after acknowledgement failed; the next start retries", "transfer", id, "err", err)
	}
}

// purge deletes t if every recipient acknowledged it and its matter is not
// on legal hold: an expiry entry, then a certified destruction (sweep.go).
func (s *Service) purge(ctx context.Context, t *store.Transfer) error {
	if t.State != store.StateReady || len(t.Acked) < len(t.Recipients) {
		return nil
	}
	if _, err := s.store.HoldOn(ctx, t.Matter); err == nil || s.staticHold(t.Matter) {
		s.log.InfoContext(ctx, "not purged: its matter is on legal hold", "transfer", t.ID, "matter", t.Matter)
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("transfer: purge %s: %w", t.ID, err)
	}
	ev := transferEvent(audit.KindExpiry, t.Sender, t)
	ev.Detail = purgeDetail
	if _, err := s.Audit(ctx, ev); err != nil {
		return err
	}
	if err := s.destroy(ctx, t, audit.WhyPurgeOnAck, "every recipient acknowledged it (transfer.purge_on_ack)"); err != nil {
		return fmt.Errorf("transfer: purge %s: %w", t.ID, err)
	}
	s.log.InfoContext(ctx, "purged after every recipient acknowledged", "transfer", t.ID)
	return nil
}
