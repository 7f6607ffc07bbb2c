package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/store"
)

// reportRecheck is how long an intact verdict on a report stands: the same
// report (transfer, size and SHA-256) within it is answered without hashing
// the stored copy again, so a recipient cannot make the gateway re-read a
// large file in a loop by repeating itself. A report of other bytes (the disk
// failed since) is checked.
const reportRecheck = time.Minute

// reportChecksPerHour bounds the checks of one transfer's stored copy that
// reports may cause in an hour: each reads the whole file, as a download
// does, but is not counted against the transfer's download limit. Beyond it
// a report is refused (ErrBadRequest) until the hour is over.
const reportChecksPerHour = 10

// reportChecks counts the checks reports caused, per transfer, in the
// current hour of each.
type reportChecks struct {
	mu sync.Mutex
	by map[string]checkHour
}

// checkHour is one transfer's count of checks since start.
type checkHour struct {
	start time.Time
	n     int
}

// take counts a check of transfer id at now; false (and nothing counted)
// when the transfer had reportChecksPerHour checks in its current hour,
// with the time that hour ends.
func (c *reportChecks) take(id string, now time.Time) (bool, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string]checkHour{}
	}
	h := c.by[id]
	if now.Sub(h.start) >= time.Hour {
		h = checkHour{start: now}
	}
	if h.n >= reportChecksPerHour {
		return false, h.start.Add(time.Hour)
	}
	h.n++
	c.by[id] = h
	return true, time.Time{}
}

// ReportMismatch answers a recipient's report that the ciphertext of transfer
// id it downloaded with CheckByRecipient did not match the signed manifest
// (got: what it received). The report is not evidence: the gateway hashes
// its own stored copy. A copy that differs from the manifest is quarantined
// and audited, and ReportMismatch returns an error wrapping ErrHashMismatch,
// exactly as when the gateway finds the damage while serving; an intact copy
// returns nil (the bytes changed after they left the gateway) and is logged at
// WARN. Only a recipient a download would be served to (receivable) may
// report; reports of one transfer are checked one at a time, and at most
// reportChecksPerHour times an hour.
func (s *Service) ReportMismatch(ctx context.Context, caller spiffeid.ID, id string, got api.IntegrityReport) error {
	t, _, _, err := s.receivable(ctx, caller, id)
	if err != nil {
		return err
	}
	switch t.State {
	case store.StateQuarantined:
		return fmt.Errorf("%w: transfer %s is quarantined: its stored ciphertext no longer matches the signed manifest", ErrHashMismatch, t.ID)
	case store.StateReady:
	default:
		return ErrNotReady
	}

	unlock, err := s.store.Lock(ctx, "report/"+t.ID)
	if err != nil {
		return fmt.Errorf("transfer: check of %s: %w", t.ID, err)
	}
	defer unlock()
	key := fmt.Sprintf("%s/%d/%s", t.ID, got.Size, got.SHA256)
	if at, ok := s.intact.Load(key); ok && s.now().Sub(at.(time.Time)) < reportRecheck {
		return nil
	}
	if ok, until := s.reportChecks.take(t.ID, s.now()); !ok {
		return fmt.Errorf("%w: transfer %s has been checked %d times in the last hour on reports; the gateway checks it again after %s",
			ErrBadRequest, t.ID, reportChecksPerHour, until.UTC().Format("15:04:05Z"))
	}
	f, err := s.store.Open(ctx, t.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Quarantined (and its bytes deleted) since it was read above.
		return fmt.Errorf("%w: transfer %s is quarantined: its stored ciphertext no longer matches the signed manifest", ErrHashMismatch, t.ID)
	case err != nil:
		return fmt.Errorf("transfer: open %s: %w", t.ID, err)
	}
	defer f.Close()
	if err := s.verifyStored(ctx, caller.String(), t, f); err != nil {
		return err
	}
	s.intact.Store(key, s.now())
	s.log.WarnContext(ctx, "a recipient reported a ciphertext that does not match its signed manifest, but the stored copy is intact",
		"transfer", t.ID, "recipient", caller.String(), "reported_size", got.Size, "reported_sha256", got.SHA256)
	return nil
}
