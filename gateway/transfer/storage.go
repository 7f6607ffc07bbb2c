package transfer

import (
	"context"
	"io"
	"time"

	"github.com/lexgate/lexgate/gateway/risk"
	"github.com/lexgate/lexgate/gateway/store"
)

// The storage seam. The core keeps nothing of its own between requests: every
// transfer, key, hold and approval lives behind the small interfaces below, so
// that the same core runs on the embedded default (SQLite and a spool
// directory, one process) and on the cluster backends (PostgreSQL and an
// S3-compatible bucket shared by several replicas), whose invariants — one
// durable offset per upload, one completion, one quarantine, counted
// downloads — are kept by the driver, not by locks in this process.
// [store.Store] implements them all; the shared driver suite
// (gateway/store/drivers_test.go) checks every backend against the same
// assertions.

// Transfers is the metadata of transfers: who sends what to whom, their
// state, recipients' acknowledgements and counted downloads.
type Transfers interface {
	CreateTransfer(ctx context.Context, t *store.Transfer) error
	Transfer(ctx context.Context, id string) (*store.Transfer, error)
	TransferByManifest(ctx context.Context, sender, manifestHash string) (*store.Transfer, error)
	Inbox(ctx context.Context, recipient string) ([]*store.Transfer, error)
	Outbox(ctx context.Context, sender string) ([]*store.Transfer, error)
	TransfersIn(ctx context.Context, state store.State, after string, limit int) ([]*store.Transfer, error)
	// AckOnce and QuarantineOnce report whether this call made the change,
	// so that of racing replicas exactly one logs it.
	AckOnce(ctx context.Context, id, recipient string, now time.Time) (first bool, err error)
	QuarantineOnce(ctx context.Context, id string) (first bool, err error)
	DeleteTransfer(ctx context.Context, id string) error
	CountDownload(ctx context.Context, id string, d store.Download) (int, error)
	ExpiredTransfers(ctx context.Context, now time.Time, after string, limit int) ([]*store.Transfer, error)
	ExpiredOf(ctx context.Context, matter string, now time.Time) ([]*store.Transfer, error)
}

// Ciphertext is the ciphertext of transfers: uploads by offset or by range,
// sealing a streamed upload, reading a ready transfer back, and the staging
// area where the gateway writes ciphertext it encrypts itself (SFTP ingest).
type Ciphertext interface {
	WriteAt(ctx context.Context, id string, offset int64, r io.Reader, now time.Time) (int64, error)
	WriteRange(ctx context.Context, id string, offset, end int64, r io.Reader, now time.Time) (store.Progress, error)
	UploadProgress(ctx context.Context, id string) (store.Progress, error)
	Seal(ctx context.Context, id string, seal store.Seal, now time.Time) error
	CancelUpload(ctx context.Context, id string) error
	// Open returns a ready transfer's ciphertext: a spool file on the
	// embedded default, the sealed object on S3.
	Open(ctx context.Context, id string) (store.Blob, error)
	Stage() (*store.Staged, error)
	Unstage(path string) error
	CleanStaging() (int, error)
	CreateReady(ctx context.Context, t *store.Transfer, path string, now time.Time) error
}

// Keys is the registry of the age recipients each identity registered.
type Keys interface {
	PutKeys(ctx context.Context, id string, recipients []string, now time.Time) error
	Keys(ctx context.Context, id string) ([]string, time.Time, error)
	// The owner-signed registration behind an identity's keys (opaque bytes).
	PutKeyRegistration(ctx context.Context, id string, reg []byte) error
	DeleteKeyRegistration(ctx context.Context, id string) error
	KeyRegistration(ctx context.Context, id string) ([]byte, error)
}

// Governance is the state the obligations of policy decisions need: legal
// holds, four-eyes matter requests, and destruction certificates.
type Governance interface {
	PlaceHold(ctx context.Context, h store.Hold) error
	LiftHold(ctx context.Context, matter string) (store.Hold, error)
	HoldOn(ctx context.Context, matter string) (store.Hold, error)
	Holds(ctx context.Context) ([]store.Hold, error)
	CreateMatterRequest(ctx context.Context, r *store.MatterRequest) error
	ApproveMatterRequest(ctx context.Context, id, approver string, now time.Time) (store.MatterRequest, error)
	MatterRequestByID(ctx context.Context, id string) (store.MatterRequest, error)
	PendingMatterRequests(ctx context.Context) ([]store.MatterRequest, error)
	Grants(ctx context.Context, matter string) ([]store.MatterRequest, error)
	Destroy(ctx context.Context, ds ...store.Destruction) error
	DestructionOf(ctx context.Context, id string) (*store.Destruction, error)
}

// Admin is the admin plane's state (issue 16): run-time revocations and
// transfers an admin quarantined. Read from the shared store, both take
// effect on every replica that consults it.
type Admin interface {
	Revoke(ctx context.Context, r store.Revocation) error
	Unrevoke(ctx context.Context, id string) (store.Revocation, error)
	Revocations(ctx context.Context) ([]store.Revocation, error)
	AdminQuarantine(ctx context.Context, sel store.Selector, by string, at time.Time, reason string) ([]string, error)
	AdminRelease(ctx context.Context, sel store.Selector) ([]string, error)
	AdminQuarantined(ctx context.Context, id string) (bool, error)
	AdminQuarantines(ctx context.Context) ([]store.QuarantineRecord, error)
}

// Locker runs work that must happen on one replica at a time, such as the
// retention sweep (two sweeps would certify one deletion twice). Lock blocks
// until the named lock is held or ctx ends; the lock is the driver's (a
// database lock on a cluster backend), never only this process's.
type Locker interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// Outbox is the notification outbox (issue 21) as the core uses it: it
// queues the events the store's triggers cannot see (refusals), and waits
// for this process's writes to re-read an inbox. Changed wakes only on this
// replica's writes; another replica's reach a waiter when its wait ends.
type Outbox interface {
	EnqueueEvent(ctx context.Context, ev store.Event) error
	Changed() <-chan struct{}
	// Shared reports whether other processes write the same store (the
	// replicas of a cluster), so that waiters poll as well.
	Shared() bool
}

// Risk is where the per-identity risk baselines live (issue 16): one record
// per identity, read once per decision and updated atomically per
// observation, so that they survive a restart and the replicas of a cluster
// share them. It is [risk.Store]; the core hands it to the risk tracker.
type Risk interface {
	RiskBaseline(ctx context.Context, id string) ([]byte, error)
	UpdateRiskBaseline(ctx context.Context, id string, at time.Time, update func(old []byte) ([]byte, error)) error
}

var _ risk.Store = Risk(nil)

// Store is everything the core keeps, as one driver provides it.
type Store interface {
	Transfers
	Ciphertext
	Keys
	Governance
	Admin
	Locker
	Outbox
	Risk
	RecentUploads
}

var _ Store = (*store.Store)(nil)
