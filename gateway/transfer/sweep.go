package transfer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/store"
)

// Retention: the sweeper deletes the ciphertext and metadata of every
// transfer past its expires_at obligation, unless its matter is on legal
// hold, and certifies each deletion (see package audit, Certificate). The
// order is sign → log → delete: a crash after the log entry and before the
// deletion leaves the transfer, which the next sweep certifies and deletes
// again (its destruction is then logged twice); nothing is ever deleted
// without its entry.

// SweepReport counts what one sweep did.
type SweepReport struct {
	Expired   int // transfers found past their expiry
	Destroyed int // deleted, each with a certificate
	Held      int // kept: their matter is on legal hold
	Failed    int // could not be deleted this time (logged; the next sweep retries)
}

// heldDetail is the detail of a held_past_expiry entry.
const heldDetail = "expired, kept by a legal hold on its matter; deleted by the first sweep after the hold is lifted"

// Sweep deletes every transfer past its expiry whose matter is not held, and
// logs each expired transfer a hold keeps (once). It returns an error only
// when it cannot list the transfers; one that fails to delete is counted and
// retried by the next sweep.
func (s *Service) Sweep(ctx context.Context) (SweepReport, error) {
	var r SweepReport
	// One sweep at a time, on any replica: two would certify a deletion twice.
	unlock, err := s.store.Lock(ctx, "sweep")
	if err != nil {
		return r, fmt.Errorf("transfer: sweep: %w", err)
	}
	defer unlock()
	now := s.now().UTC()
	holds, err := s.store.Holds(ctx)
	if err != nil {
		return r, fmt.Errorf("transfer: sweep: %w", err)
	}
	held := make(map[string]bool, len(holds))
	for _, h := range holds {
		held[h.Matter] = true
	}
	after := ""
	for {
		ts, err := s.store.ExpiredTransfers(ctx, now, after, s.cfg.SweepBatch)
		if err != nil {
			return r, fmt.Errorf("transfer: sweep: %w", err)
		}
		var doomed []*store.Transfer
		for _, t := range ts {
			after = t.ID
			r.Expired++
			if held[t.Matter] || s.staticHold(t.Matter) {
				r.Held++
				s.noteHeld(ctx, t)
				continue
			}
			doomed = append(doomed, t)
		}
		n, err := s.destroyAll(ctx, doomed, audit.WhyExpired, func(t *store.Transfer) string {
			return "its retention obligation expired on " + t.Obligations.ExpiresAt.Format(time.RFC3339)
		})
		r.Destroyed += n
		r.Failed += len(doomed) - n
		if err != nil {
			s.log.ErrorContext(ctx, "sweep: some deletions failed; the next sweep retries", "failed", len(doomed)-n, "err", err)
		}
		if len(ts) < s.cfg.SweepBatch {
			break
		}
	}
	if r.Expired > 0 {
		s.log.InfoContext(ctx, "sweep", "expired", r.Expired, "destroyed", r.Destroyed, "held", r.Held, "failed", r.Failed)
	}
	return r, nil
}

// staticHold reports a hold in the policy data's matter registry.
func (s *Service) staticHold(matter string) bool {
	return s.staticHeld != nil && s.staticHeld(matter)
}

// noteHeld logs, once per transfer, that a hold keeps it past its expiry.
func (s *Service) noteHeld(ctx context.Context, t *store.Transfer) {
	if _, ok := s.audit.Find(audit.LookupHeld(t.ID)); ok {
		return
	}
	ev := transferEvent(audit.KindHeldPastExpiry, s.actor(), t)
	ev.Detail = heldDetail
	ev.Obligations = auditObligations(t.Obligations)
	s.Audit(ctx, ev)
}

// actor is who the gateway's own actions are logged as.
func (s *Service) actor() string {
	if s.gatewayID != "" {
		return s.gatewayID
	}
	return "lexgate"
}

// RunSweeper sweeps every Config.SweepInterval until ctx is done. Its caller
// owns it: cancel ctx and wait for it to return.
func (s *Service) RunSweeper(ctx context.Context) {
	tick := time.NewTicker(s.cfg.SweepInterval)
	defer tick.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "sweep failed; retrying at the next interval", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sweepWorkers is how many destruction entries the sweeper appends at once:
// the audit log sequences concurrent appends in one batch, where one at a
// time would each wait for its own. A whole default page (SweepBatch) at
// once: 64 at a time took 2.6 times as long.
const sweepWorkers = 256

// destroy certifies and deletes t (destroyAll of one).
func (s *Service) destroy(ctx context.Context, t *store.Transfer, why, detail string) error {
	_, err := s.destroyAll(ctx, []*store.Transfer{t}, why, func(*store.Transfer) string { return detail })
	return err
}

// destroyAll certifies and deletes ts: for each it signs the destruction
// statement and logs the destruction entry that commits to it (concurrently),
// then it deletes every transfer whose entry is logged, keeping the
// certificates in their place, in one store transaction. It returns how many
// it deleted.
func (s *Service) destroyAll(ctx context.Context, ts []*store.Transfer, why string, detail func(*store.Transfer) string) (int, error) {
	if len(ts) == 0 {
		return 0, nil
	}
	now := s.now().UTC()
	ds := make([]store.Destruction, len(ts))
	errs := make([]error, len(ts))
	sem := make(chan struct{}, sweepWorkers)
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ds[i], errs[i] = s.certify(ctx, t, why, detail(t), now)
		}()
	}
	wg.Wait()
	logged := ds[:0]
	for i := range ds {
		if errs[i] == nil {
			logged = append(logged, ds[i])
		}
	}
	if err := s.store.Destroy(context.WithoutCancel(ctx), logged...); err != nil {
		return 0, fmt.Errorf("transfer: destroy: %w", errors.Join(append(errs, err)...))
	}
	for _, d := range logged {
		s.deliveries.cut(d.TransferID, fmt.Errorf("%w: transfer %s was destroyed (%s) during the download", ErrNotFound, d.TransferID, why))
		s.log.InfoContext(ctx, "transfer destroyed and certified", "transfer", d.TransferID, "why", why, "audit_index", d.AuditIndex)
	}
	return len(logged), errors.Join(errs...)
}

// certify signs t's destruction statement and logs its destruction entry.
func (s *Service) certify(ctx context.Context, t *store.Transfer, why, detail string, now time.Time) (store.Destruction, error) {
	stored := t.Completed
	if stored.IsZero() {
		stored = t.Created
	}
	st := audit.Statement{Gateway: s.actor(), Log: s.audit.Origin(), Transfer: t.ID, Sender: t.Sender,
		Recipients: t.Recipients, Matter: t.Matter, ManifestSHA256: t.ManifestHash,
		CiphertextSHA256: t.CiphertextSHA256, CiphertextSize: t.CiphertextSize,
		StoredAt: stored, DestroyedAt: now, Why: why, Detail: detail}
	if t.State != store.StateReady {
		st.Detail += fmt.Sprintf(" (state %s: %d bytes of ciphertext were held)", t.State, t.Offset)
	}
	for _, r := range t.Recipients {
		if s.custodial(r) {
			st.GatewayHeldKey = true
			st.KeyHeldFor = append(st.KeyHeldFor, r)
		}
	}
	signed, sum, err := s.audit.SignStatement(st)
	if err != nil {
		return store.Destruction{}, err
	}
	ev := transferEvent(audit.KindDestruction, s.actor(), t)
	ev.Detail, ev.StatementSHA256, ev.Time = why+": "+st.Detail, sum, now
	idx, err := s.Audit(ctx, ev)
	if err != nil {
		return store.Destruction{}, err
	}
	return store.Destruction{TransferID: t.ID, Sender: t.Sender, Recipients: t.Recipients, Matter: t.Matter,
		Destroyed: now, AuditIndex: idx, Certificate: signed}, nil
}

// Certificate returns the destruction certificate of transfer id to its
// sender or one of its recipients (policy action fetch_certificate): the
// signed statement and the receipt of its destruction entry. A transfer not
// yet destroyed is ErrNotReady; anyone else's is ErrNotFound.
func (s *Service) Certificate(ctx context.Context, caller spiffeid.ID, id string) (*audit.Certificate, error) {
	if err := s.checkCaller(ctx, caller, "fetch_certificate"); err != nil {
		return nil, err
	}
	d, err := s.store.DestructionOf(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		if _, _, verr := s.visible(ctx, caller, id); verr == nil {
			return nil, fmt.Errorf("%w: transfer %s is not destroyed: it has no destruction certificate yet", ErrNotReady, id)
		}
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("transfer: certificate of %s: %w", id, err)
	}
	me := caller.String()
	if d.Sender != me && !slices.Contains(d.Recipients, me) {
		return nil, ErrNotFound
	}
	in := policy.Input{Action: "fetch_certificate", Source: party(caller), Bundle: &policy.Bundle{Matter: d.Matter}}
	if other, err := spiffeid.FromString(d.Sender); err == nil && d.Sender != me {
		in.Destinations = []policy.Party{party(other)}
	}
	dec, err := s.decide(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := s.auditAllowed(ctx, in, dec, id); err != nil {
		return nil, err
	}
	rcpt, err := s.audit.Receipt(ctx, d.AuditIndex)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAudit, err)
	}
	return &audit.Certificate{Version: audit.CertificateVersion, Statement: string(d.Certificate), Receipt: rcpt}, nil
}
