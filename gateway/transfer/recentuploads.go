package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/store"
)

// Recent uploads (issue 17): the SFTP front lists each upload it finished
// within its upload window, keeps the times a client sets on it, and does
// not deliver an identical re-upload twice. That memory lives in the store,
// so it survives a restart and every replica of a cluster shares it; the
// duplicate check is made in the transaction that creates the transfer
// ([store.Store.CreateReadyUpload]), so two identical uploads finishing at
// once on two replicas make one transfer.

// RecentUploads is the store's memory of the uploads the SFTP front finished
// within its window.
type RecentUploads interface {
	CreateReadyUpload(ctx context.Context, t *store.Transfer, path string, now time.Time, u store.RecentUpload, aliases ...string) error
	FindUpload(ctx context.Context, u store.RecentUpload, now time.Time, aliases ...string) (store.RecentUpload, error)
	RecordUpload(ctx context.Context, u store.RecentUpload) error
	ForgetUpload(ctx context.Context, u store.RecentUpload) error
	RecentUploadOf(ctx context.Context, account, dir, name string, now time.Time) (store.RecentUpload, error)
	RecentUploads(ctx context.Context, account, dir string, now time.Time) ([]store.RecentUpload, error)
	RenameUpload(ctx context.Context, account, dir, from, toDir, to string, now time.Time) error
	SetUploadTime(ctx context.Context, account, dir, name string, mod, now time.Time) error
	SweepUploads(ctx context.Context, now time.Time) (int, error)
}

// RecentUpload is an upload the SFTP front finished within its window: the
// store's record, named here so that the front need not import the store.
type RecentUpload = store.RecentUpload

// uploadClaim is what an Ingest's Commit records with its transfer.
type uploadClaim struct {
	u       RecentUpload
	aliases []string
}

// CommitUpload is Commit for an upload of the SFTP front described by u
// (account, directory, name, size, SHA-256 of the content, times and
// expiry; u.Finished is the time the window is checked at). If an identical
// upload — same account, directory, size and SHA-256, named u.Name or one
// of aliases — finished before u.Finished and has not expired, the ingest
// is discarded, the re-upload is audited (kind duplicate_upload, naming the
// transfer it repeats) and recorded under u.Name with that transfer, and
// dup is true. Otherwise the transfer is created as by Commit and u is
// recorded with it, in one transaction. id is the transfer delivered.
func (in *Ingest) CommitUpload(ctx context.Context, u RecentUpload, aliases ...string) (id string, dup bool, err error) {
	s := in.s
	// The cheap check first: a retry after the window opened finds its
	// original without a policy decision or a seal.
	of, err := s.store.FindUpload(ctx, u, u.Finished, aliases...)
	switch {
	case err == nil:
		in.Abort()
		return of.Transfer, true, s.duplicateUpload(ctx, in, u, of)
	case !errors.Is(err, store.ErrNotFound):
		// CreateReadyUpload checks again, authoritatively.
		s.log.WarnContext(ctx, "ingest: looking for an identical upload failed; the seal checks again", "err", err)
	}
	in.upload = &uploadClaim{u: u, aliases: aliases}
	t, err := in.Commit(ctx)
	var de *store.DuplicateUploadError
	if errors.As(err, &de) {
		return de.Of.Transfer, true, s.duplicateUpload(ctx, in, u, de.Of)
	}
	if err != nil {
		return "", false, err
	}
	return t.ID, false, nil
}

// createReady stores the sealed transfer t from the staged file name,
// claiming in.upload with it when set.
func (in *Ingest) createReady(ctx context.Context, t *store.Transfer, name string) error {
	if in.upload == nil {
		return in.s.store.CreateReady(ctx, t, name, in.s.now())
	}
	return in.s.store.CreateReadyUpload(ctx, t, name, in.s.now(), in.upload.u, in.upload.aliases...)
}

// unclaim forgets the upload recorded with transfer id, which could not be
// kept after all: a retry of it must be delivered.
func (in *Ingest) unclaim(ctx context.Context, id string) {
	if in.upload == nil {
		return
	}
	u := in.upload.u
	u.Transfer = id
	if err := in.s.store.ForgetUpload(ctx, u); err != nil {
		in.s.log.ErrorContext(ctx, "ingest: forgetting the record of an upload not kept failed; a retry within the window is taken for a duplicate",
			"transfer", id, "err", err)
	}
}

// duplicateUpload audits the upload u of in as a repeat of of, and records
// it under its own name with of's transfer. The audit entry comes first: a
// re-upload is acknowledged only once it is logged.
func (s *Service) duplicateUpload(ctx context.Context, in *Ingest, u, of RecentUpload) error {
	ev := audit.Event{Kind: audit.KindDuplicateUpload, Actor: in.caller.String(), Transfer: of.Transfer,
		Recipients: []string{in.req.Recipient.String()}, Matter: in.req.Matter, Labels: in.req.Labels}
	if t, err := s.store.Transfer(ctx, of.Transfer); err == nil {
		ev = transferEvent(audit.KindDuplicateUpload, in.caller.String(), t)
	}
	ev.Action = "send"
	ev.Detail = fmt.Sprintf("identical SFTP re-upload of %d bytes within sftp.upload_window: not delivered again", u.Size)
	if _, err := s.Audit(ctx, ev); err != nil {
		return err
	}
	u.Transfer = of.Transfer
	if err := s.store.RecordUpload(ctx, u); err != nil {
		return fmt.Errorf("transfer: record upload: %w", err)
	}
	return nil
}

// RecentUploadOf returns the upload account finished in dir under name
// within the window at now; none is ErrNotFound.
func (s *Service) RecentUploadOf(ctx context.Context, account, dir, name string, now time.Time) (RecentUpload, error) {
	u, err := s.store.RecentUploadOf(ctx, account, dir, name, now)
	return u, recentErr(err)
}

// RecentUploads lists the uploads account finished in dir within the
// window at now, by name.
func (s *Service) RecentUploads(ctx context.Context, account, dir string, now time.Time) ([]RecentUpload, error) {
	us, err := s.store.RecentUploads(ctx, account, dir, now)
	return us, recentErr(err)
}

// RenameRecentUpload moves the upload account finished in dir under from
// to toDir/to (a client that uploads under a temporary name and renames);
// none within the window at now is ErrNotFound.
func (s *Service) RenameRecentUpload(ctx context.Context, account, dir, from, toDir, to string, now time.Time) error {
	return recentErr(s.store.RenameUpload(ctx, account, dir, from, toDir, to, now))
}

// SetRecentUploadTime sets the time the upload account finished in dir
// under name shows; none within the window at now is ErrNotFound.
func (s *Service) SetRecentUploadTime(ctx context.Context, account, dir, name string, mod, now time.Time) error {
	return recentErr(s.store.SetUploadTime(ctx, account, dir, name, mod, now))
}

// SweepRecentUploads deletes the records of uploads expired at now.
func (s *Service) SweepRecentUploads(ctx context.Context, now time.Time) (int, error) {
	n, err := s.store.SweepUploads(ctx, now)
	return n, recentErr(err)
}

// recentErr gives the store's not-found the core's sentinel.
func recentErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return fmt.Errorf("transfer: recent uploads: %w", err)
}
