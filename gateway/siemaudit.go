package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/siem"
	"github.com/lexgate/lexgate/gateway/store"
)

// auditEntries lets the SIEM forwarder follow the audit log: the entries
// from an index up to the latest signed checkpoint.
type auditEntries struct {
	log *audit.Log
	v   note.Verifier
}

func newAuditEntries(l *audit.Log) (*auditEntries, error) {
	v, err := audit.ParseVerifier(l.VerifierKey())
	if err != nil {
		return nil, fmt.Errorf("gateway: audit verifier: %w", err)
	}
	return &auditEntries{log: l, v: v}, nil
}

// Entries calls fn for each entry from index from that the latest
// checkpoint covers, in order.
func (a *auditEntries) Entries(ctx context.Context, from uint64, fn func(index uint64, entry []byte) error) error {
	raw, err := a.log.Reader().ReadCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("gateway: audit checkpoint: %w", err)
	}
	cp, err := audit.OpenCheckpoint(raw, a.v)
	if err != nil {
		return err
	}
	if cp.Size <= from {
		return nil
	}
	return audit.WalkFrom(ctx, a.log.Reader(), from, cp.Size, func(i uint64, entry []byte) error {
		lf, err := audit.ParseLeaf(entry)
		if err != nil || lf.Public != nil {
			return fn(i, entry) // a public event (or one the SIEM reports as malformed)
		}
		// A private entry's leaf is only a commitment: the SIEM, the
		// operator's own, gets its body, checked against the commitment.
		ev, err := a.log.Event(ctx, i)
		if err != nil {
			return fmt.Errorf("gateway: audit entry %d for the SIEM: %w", i, err)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("gateway: audit entry %d for the SIEM: %w", i, err)
		}
		return fn(i, b)
	})
}

// siemLockName is the store lock the cluster's SIEM audit forwarder holds.
const siemLockName = "siem-audit"

// siemCursor is the SIEM forwarder's audit cursor and election on a store
// the replicas share: the audit log is one for the cluster, so one
// replica at a time forwards it, from where the last one stopped.
type siemCursor struct{ s *store.Store }

var _ siem.SharedCursor = siemCursor{}

func (c siemCursor) Lock(ctx context.Context) (func(), error) { return c.s.Lock(ctx, siemLockName) }
func (c siemCursor) Load(ctx context.Context) (uint64, error) { return c.s.SIEMAuditCursor(ctx) }
func (c siemCursor) Save(ctx context.Context, next uint64) error {
	return c.s.SetSIEMAuditCursor(ctx, next)
}
