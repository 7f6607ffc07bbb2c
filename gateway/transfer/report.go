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

// reportChecks is what reports have cost, per transfer: the checks they
// caused in the transfer's current hour, and the reports answered "intact"
// in the last reportRecheck. Entries of transfers with neither are dropped.
type reportChecks struct {
	mu sync.Mutex
	by map[string]*checkHour
}

// checkHour is one transfer's count of checks since start, and when each
// report (size and SHA-256) last found its stored copy intact.
type checkHour struct {
	start  time.Time
	n      int
	intact map[string]time.Time
}

// stale reports whether h says nothing any more at now: its hour is over and
// no intact verdict stands.
func (h *checkHour) stale(now time.Time) bool {
	if now.Sub(h.start) < time.Hour {
		return false
	}
	for _, at := range h.intact {
		if now.Sub(at) < reportRecheck {
			return false
		}
	}
	return true
}

// reportKey names a report of a transfer: what the recipient received.
func reportKey(got api.IntegrityReport) string {
	return fmt.Sprintf("%d/%s", got.Size, got.SHA256)
}

// wasIntact reports whether the same report of transfer id found its stored
// copy intact less than reportRecheck before now.
func (c *reportChecks) wasIntact(id string, got api.IntegrityReport, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.by[id]
	if h == nil {
		return false
	}
	at, ok := h.intact[reportKey(got)]
	return ok && now.Sub(at) < reportRecheck
}

// foundIntact records that report got of transfer id found its stored copy
// intact at now.
func (c *reportChecks) foundIntact(id string, got api.IntegrityReport, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.by[id]; h != nil {
		if h.intact == nil {
			h.intact = map[string]time.Time{}
		}
		h.intact[reportKey(got)] = now
	}
}

// take counts a check of transfer id at now; false (and nothing counted)
// when the transfer had reportChecksPerHour checks in its current hour,
// with the time that hour ends. It drops what went stale: other transfers'
// entries, this one's intact verdicts older than reportRecheck.
func (c *reportChecks) take(id string, now time.Time) (bool, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[string]*checkHour{}
	}
	for k, h := range c.by {
		if k != id && h.stale(now) {
			delete(c.by, k)
		}
	}
	h := c.by[id]
	if h == nil {
		h = &checkHour{start: now}
		c.by[id] = h
	}
	if now.Sub(h.start) >= time.Hour {
		h.start, h.n = now, 0
	}
	for k, at := range h.intact {
		if now.Sub(at) >= reportRecheck {
			delete(h.intact, k)
		}
	}
	if h.n >= reportChecksPerHour {
		return false, h.start.Add(time.Hour)
	}
	h.n++
	return true, time.Time{}
}

// quarantinedMismatch is the answer to a report of a transfer already
// quarantined.
func quarantinedMismatch(id string) error {
	return fmt.Errorf("%w: transfer %s is quarantined: its stored ciphertext no longer matches the signed manifest", ErrHashMismatch, id)
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
		return quarantinedMismatch(t.ID)
	case store.StateReady:
	default:
		return ErrNotReady
	}

	unlock, err := s.store.Lock(ctx, "report/"+t.ID)
	if err != nil {
		return fmt.Errorf("transfer: check of %s: %w", t.ID, err)
	}
	defer unlock()
	if s.reportChecks.wasIntact(t.ID, got, s.now()) {
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
		return quarantinedMismatch(t.ID)
	case err != nil:
		return fmt.Errorf("transfer: open %s: %w", t.ID, err)
	}
	defer f.Close()
	if err := s.verifyStored(ctx, caller.String(), t, f); err != nil {
		return err
	}
	s.reportChecks.foundIntact(t.ID, got, s.now())
	s.log.WarnContext(ctx, "a recipient reported a ciphertext that does not match its signed manifest, but the stored copy is intact",
		"transfer", t.ID, "recipient", caller.String(), "reported_size", got.Size, "reported_sha256", got.SHA256)
	return nil
}
