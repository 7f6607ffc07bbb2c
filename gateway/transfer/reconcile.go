package transfer

import (
	"context"
	"fmt"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/store"
)

// After a crash the store and the audit log can disagree in one direction only:
// the core commits to the store first and appends to the log second (store →
// audit), so a kill in between leaves a fact in the store that the log lacks —
// a transfer created but its creation not logged, a transfer ready but its
// upload completion not logged, a recipient's ack recorded but not logged, a
// transfer quarantined but not logged. The reverse
// (logged but not stored) cannot happen: nothing is logged before it is stored.
//
// Reconcile closes that gap at start-up, before the gateway serves, by appending
// the missing entries. It does not quarantine: a ready transfer's ciphertext was
// checked against the SHA-256 of the sender's signed manifest before the store
// said ready, so it is exactly what the sender signed; throwing it away would
// lose a complete, verified upload for the lack of a log line. The entry the
// reconciler appends is the one the core would have appended, marked in its
// Detail as written at start-up, so the log shows both what happened and that
// it was logged late. The sender, retrying its last chunk or its seal, then gets
// its receipt as usual.

// logged reports whether t's upload completion is in the audit log. A transfer
// is deliverable (in an inbox, downloadable) only once it is: the log, not the
// store, is the commit point a sender's acknowledgement and a recipient's view
// both follow. A ready transfer whose completion could not be logged (a full
// disk, a crash) stays invisible until the sender's retry or Reconcile logs it.
func (s *Service) logged(t *store.Transfer) bool {
	_, ok := s.audit.Find(audit.LookupUpload(t.ID))
	return ok
}

// ReconcileReport counts what [Service.Reconcile] checked and appended.
type ReconcileReport struct {
	Uploading   int // transfers still uploading checked
	Ready       int // ready transfers checked
	Quarantined int // quarantined transfers checked
	Creations   int // transfer creations appended
	Uploads     int // upload completions appended
	Acks        int // acknowledgements appended
	Quarantines int // quarantines appended
	Purged      int // fully acknowledged transfers purged (with transfer.purge_on_ack)
}

// Appended is how many entries the reconciler added to the log.
func (r ReconcileReport) Appended() int {
	return r.Creations + r.Uploads + r.Acks + r.Quarantines
}

// reconcilePage is how many transfers Reconcile loads at a time.
const reconcilePage = 256

// reconciledDetail marks an entry appended by Reconcile.
const reconciledDetail = "logged at start-up by the reconciler: the gateway stopped after storing this and before logging it"

// Reconcile makes the audit log agree with the store after a crash: every
// transfer gets its creation, every ready transfer its upload completion, every
// recorded ack its ack entry, and every quarantined transfer its quarantine
// entry, if the log lacks them. Call it
// once at start-up, before serving. It logs each entry it appends and returns an
// error (the gateway must not serve) if the log cannot take one.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	var r ReconcileReport
	err := s.eachTransfer(ctx, store.StateUploading, func(t *store.Transfer) error {
		r.Uploading++
		return s.reconcileCreated(ctx, t, &r)
	})
	if err != nil {
		return r, err
	}
	err = s.eachTransfer(ctx, store.StateReady, func(t *store.Transfer) error {
		r.Ready++
		if err := s.reconcileCreated(ctx, t, &r); err != nil {
			return err
		}
		if _, ok := s.audit.Find(audit.LookupUpload(t.ID)); !ok {
			ev := transferEvent(audit.KindUploadComplete, t.Sender, t)
			ev.Decision = &audit.Decision{ID: t.DecisionID, Allow: true}
			if ok, err := s.reconcileAppend(ctx, t.ID, audit.LookupUpload(t.ID), ev, "upload completed "+t.Completed.Format(time.RFC3339Nano)); err != nil {
				return err
			} else if ok {
				r.Uploads++
			}
		}
		for _, rcpt := range t.Recipients {
			at, acked := t.Acked[rcpt]
			if !acked {
				continue
			}
			if _, ok := s.audit.Find(audit.LookupAck(t.ID, rcpt)); ok {
				continue
			}
			ev := transferEvent(audit.KindAck, rcpt, t)
			ev.Action = "ack"
			if ok, err := s.reconcileAppend(ctx, t.ID, audit.LookupAck(t.ID, rcpt), ev, "acknowledged "+at.Format(time.RFC3339Nano)); err != nil {
				return err
			} else if ok {
				r.Acks++
			}
		}
		if s.cfg.PurgeOnAck && len(t.Acked) == len(t.Recipients) {
			r.Purged++
			return s.purge(ctx, t) // the crash came between an ack and its purge
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	err = s.eachTransfer(ctx, store.StateQuarantined, func(t *store.Transfer) error {
		r.Quarantined++
		if err := s.reconcileCreated(ctx, t, &r); err != nil {
			return err
		}
		if _, ok := s.audit.Find(audit.LookupQuarantine(t.ID)); ok {
			return nil
		}
		ev := transferEvent(audit.KindQuarantined, t.Sender, t)
		if ok, err := s.reconcileAppend(ctx, t.ID, audit.LookupQuarantine(t.ID), ev, "the ciphertext's SHA-256 differs from the signed manifest"); err != nil {
			return err
		} else if ok {
			r.Quarantines++
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	s.log.InfoContext(ctx, "store and audit log reconciled", "uploading", r.Uploading, "ready", r.Ready,
		"quarantined", r.Quarantined, "creations_logged", r.Creations, "uploads_logged", r.Uploads, "acks_logged", r.Acks, "quarantines_logged", r.Quarantines, "purged", r.Purged)
	return r, nil
}

// reconcileCreated logs t's creation if the log lacks it.
func (s *Service) reconcileCreated(ctx context.Context, t *store.Transfer, r *ReconcileReport) error {
	if _, ok := s.audit.Find(audit.LookupCreated(t.ID)); ok {
		return nil
	}
	ev := transferEvent(audit.KindTransferCreated, t.Sender, t)
	ev.Obligations = auditObligations(t.Obligations)
	ev.Action, ev.Decision = "send", &audit.Decision{ID: t.DecisionID, Allow: true}
	if ok, err := s.reconcileAppend(ctx, t.ID, audit.LookupCreated(t.ID), ev, "created "+t.Created.Format(time.RFC3339Nano)); err != nil {
		return err
	} else if ok {
		r.Creations++
	}
	return nil
}

// reconcileAppend appends ev, marked as logged at start-up, and says so.
func (s *Service) reconcileAppend(ctx context.Context, id, key string, ev audit.Event, what string) (bool, error) {
	ev.Detail = reconciledDetail + " (" + what + ")"
	// Through logOnce: on a cluster another replica may be about to log the
	// fact itself, and then it is that replica's entry.
	ok, err := s.logOnce(ctx, id, key, ev)
	if err != nil {
		return false, fmt.Errorf("transfer: reconcile %s of %s: %w", ev.Kind, ev.Transfer, err)
	}
	if ok {
		i, _ := s.audit.Find(key)
		s.log.WarnContext(ctx, "reconciler logged a stored fact the audit log lacked", "kind", ev.Kind,
			"transfer", ev.Transfer, "actor", ev.Actor, "index", i)
	}
	return ok, nil
}

// eachTransfer calls fn for every transfer in state, a page at a time.
func (s *Service) eachTransfer(ctx context.Context, state store.State, fn func(*store.Transfer) error) error {
	after := ""
	for {
		ts, err := s.store.TransfersIn(ctx, state, after, reconcilePage)
		if err != nil {
			return fmt.Errorf("transfer: reconcile: %w", err)
		}
		for _, t := range ts {
			if err := fn(t); err != nil {
				return err
			}
		}
		if len(ts) < reconcilePage {
			return nil
		}
		after = ts[len(ts)-1].ID
	}
}
