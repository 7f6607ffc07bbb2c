// Package transfer is lexgate's protocol-independent core. Every action a front
// (HTTP/3, HTTPS, SFTP) performs goes through one fixed sequence here:
//
//	authenticate → policy → verify/seal → store → audit
//
// The caller arrives already authenticated: a front passes the spiffeid.ID of the
// verified peer certificate and nothing else about who it is. The core asks the
// policy engine before every action, verifies signed manifests, keeps ciphertext and
// metadata in the store, and returns errors from a small documented set (ErrNotFound,
// ErrDenied, ErrBadRequest, …) that each front maps to its own wire codes.
//
// Visibility rule: a transfer exists for a caller only if the caller sent it or the
// sender's signed manifest names the caller as a recipient. Anything else is
// ErrNotFound, so transfer IDs cannot be probed.
package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/audit"
	"github.com/lexgate/lexgate/gateway/internal/crashpoint"
	"github.com/lexgate/lexgate/gateway/policy"
	"github.com/lexgate/lexgate/gateway/risk"
	"github.com/lexgate/lexgate/gateway/store"
)

// Decider is the policy decision point the core asks before every action.
type Decider interface {
	Decide(ctx context.Context, in policy.Input) (policy.Decision, error)
}

var _ Decider = (*policy.Engine)(nil)

// Config holds the core's limits.
type Config struct {
	// MaxCiphertextSize is the largest transfer accepted, in bytes (default 16 GiB).
	MaxCiphertextSize int64 `yaml:"max_ciphertext_size"`
	// MaxKeys is how many age recipients one identity may register (default 8).
	MaxKeys int `yaml:"max_keys"`
	// PurgeOnAck deletes a transfer's ciphertext and metadata as soon as every
	// recipient has acknowledged it (default false: kept until deleted). The
	// audit log keeps the transfer's history and receipts either way.
	PurgeOnAck bool `yaml:"purge_on_ack"`
	// ResumeWindow is how long after a recipient's last counted download it
	// may still fetch ranges that do not start at byte 0 once it is at the
	// transfer's max_downloads (default 1h; see obligations.go).
	ResumeWindow time.Duration `yaml:"resume_window"`
	// SweepInterval is how often the retention sweeper runs (default 1m).
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// SweepBatch is how many expired transfers the sweeper loads at a time
	// (default 256).
	SweepBatch int `yaml:"sweep_batch"`
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.MaxCiphertextSize == 0 {
		out.MaxCiphertextSize = 16 << 30
	}
	if out.MaxKeys == 0 {
		out.MaxKeys = 8
	}
	if out.ResumeWindow == 0 {
		out.ResumeWindow = time.Hour
	}
	if out.SweepInterval == 0 {
		out.SweepInterval = time.Minute
	}
	if out.SweepBatch == 0 {
		out.SweepBatch = 256
	}
	return out
}

// Validate reports a config that cannot work.
func (c *Config) Validate() error {
	if c.MaxCiphertextSize < 0 || c.MaxKeys < 0 || c.ResumeWindow < 0 || c.SweepInterval < 0 || c.SweepBatch < 0 {
		return errors.New("transfer: limits, resume_window, sweep_interval and sweep_batch must not be negative")
	}
	return nil
}

// Service is the core. It is safe for concurrent use.
type Service struct {
	cfg     Config
	store   Store
	policy  Decider
	bundles x509bundle.Source
	revoked func(spiffeid.ID) bool
	now     func() time.Time
	log     *slog.Logger
	audit   Auditor
	// custodial reports whether the gateway holds the age identity of a
	// recipient (a custodial SFTP account), for destruction certificates.
	custodial  func(id string) bool
	staticHeld func(matter string) bool
	gatewayID  string
	watches    watchStop // ends inbox long polls at shutdown
	// deliveries are the downloads in progress, cut when their transfer is
	// quarantined or destroyed (cut.go).
	deliveries liveDeliveries
	revoker    Revoker // nil: revocations cannot be enforced (admin.go)
	// risk keeps the statistical baselines (risk.go); nil: none.
	risk        *risk.Tracker
	onRiskAlert func()
	refresh     func(context.Context) error // nil: revoked is always current
	// reportChecks bounds the checks reports cause and remembers the
	// intact verdicts (report.go).
	reportChecks reportChecks
}

// Deps are what the core runs on. Revoked and Now may be nil; Audit may not.
type Deps struct {
	// Store is the storage driver: the embedded default or a cluster backend.
	Store   Store
	Policy  Decider
	Bundles x509bundle.Source
	Revoked func(spiffeid.ID) bool
	Now     func() time.Time
	Log     *slog.Logger
	Audit   Auditor
	// Custodial reports whether the gateway holds the age identity of an
	// identity (a custodial SFTP account); nil: of none. Destruction
	// certificates say so.
	Custodial func(id string) bool
	// GatewayID is the gateway's own SPIFFE ID, named in certificates.
	GatewayID string
	// StaticHold reports a legal hold recorded in the policy data's matter
	// registry; nil: the sweeper obeys only the holds in the store.
	StaticHold func(matter string) bool
	// Revoker enforces the admin plane's revocations on the running
	// gateway; nil: revoke and unrevoke fail with ErrNoRevoker.
	Revoker Revoker
	// Risk keeps per-identity baselines whose assessment every decision's
	// input carries (input.risk); nil: none, input.risk_score is 0.
	Risk *risk.Tracker
	// RiskAlert is called for every risk alert (a metric); may be nil.
	RiskAlert func()
	// Refresh brings what Revoked reads up to date with the shared store
	// before each caller is checked, so a revocation recorded by another
	// replica refuses this replica's next request; an error refuses the
	// request (fail closed). nil: Revoked is always current (one process).
	Refresh func(context.Context) error
}

// New returns a core on deps.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Policy == nil || deps.Bundles == nil || deps.Audit == nil {
		return nil, errors.New("transfer: store, policy, bundles and audit are required")
	}
	s := &Service{cfg: cfg.withDefaults(), store: deps.Store, policy: deps.Policy,
		bundles: deps.Bundles, revoked: deps.Revoked, now: deps.Now, log: deps.Log, audit: deps.Audit,
		custodial: deps.Custodial, gatewayID: deps.GatewayID, staticHeld: deps.StaticHold, revoker: deps.Revoker,
		risk: deps.Risk, onRiskAlert: deps.RiskAlert, refresh: deps.Refresh}
	if s.custodial == nil {
		s.custodial = func(string) bool { return false }
	}
	if s.revoked == nil {
		s.revoked = func(spiffeid.ID) bool { return false }
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// decide asks the policy and turns a refusal into a *DeniedError. An evaluation
// error denies too: the core fails closed.
func (s *Service) decide(ctx context.Context, in policy.Input) (policy.Decision, error) {
	in.Version = 1
	if in.Time.IsZero() {
		in.Time = s.now().UTC()
	}
	r, err := s.assessRisk(ctx, &in)
	if err != nil {
		s.log.ErrorContext(ctx, "risk assessment failed: refusing", "action", in.Action, "id", in.Source.ID, "err", err)
		d := riskUnavailable()
		s.auditRefusal(ctx, in, d)
		return d, &DeniedError{Decision: d, Action: in.Action}
	}
	d, err := s.policy.Decide(ctx, in)
	s.riskAlert(ctx, in, r, d)
	if err != nil {
		s.log.ErrorContext(ctx, "policy evaluation failed", "action", in.Action, "err", err)
		if len(d.Reasons) == 0 {
			d.Reasons = []policy.Reason{{Code: "policy.error", Message: "the policy could not be evaluated; the gateway refuses until it can"}}
		}
		s.auditRefusal(ctx, in, d)
		return d, &DeniedError{Decision: d, Action: in.Action}
	}
	if !d.Allow {
		s.auditRefusal(ctx, in, d)
		return d, &DeniedError{Decision: d, Action: in.Action}
	}
	return d, nil
}

func party(id spiffeid.ID) policy.Party {
	return policy.Party{ID: id.String(), TrustDomain: id.TrustDomain().Name(), Path: id.Path()}
}

func parties(ids []string) ([]policy.Party, error) {
	out := make([]policy.Party, 0, len(ids))
	for _, s := range ids {
		id, err := spiffeid.FromString(s)
		if err != nil {
			return nil, badRequest("recipient %q: %v", s, err)
		}
		out = append(out, party(id))
	}
	return out, nil
}

// checkCaller refuses a revoked identity even if its handshake raced the deny list.
func (s *Service) checkCaller(ctx context.Context, caller spiffeid.ID, action string) error {
	if caller.IsZero() {
		return badRequest("no caller identity")
	}
	if s.refresh != nil {
		if err := s.refresh(ctx); err != nil {
			return fmt.Errorf("transfer: revocations: %w", err)
		}
	}
	if s.revoked(caller) {
		d := policy.Decision{Reasons: []policy.Reason{{Code: "identity.revoked", Message: caller.String() + " is revoked"}}}
		s.auditRefusal(ctx, policy.Input{Action: action, Source: party(caller)}, d)
		return &DeniedError{Action: action, Decision: d}
	}
	return nil
}

// RegisterKeys replaces the caller's own age recipients. Nobody can register a key
// for another identity: the identity is the caller's certificate. reg, when
// given, is the registration signed by the caller (or, for a custodial
// account, by the gateway): it is checked, stored and logged with the keys,
// and lex send refuses keys without one (registration.go).
func (s *Service) RegisterKeys(ctx context.Context, caller spiffeid.ID, recipients []string, reg *api.SignedRegistration) (api.KeysResponse, error) {
	if err := s.checkCaller(ctx, caller, "register_key"); err != nil {
		return api.KeysResponse{}, err
	}
	if len(recipients) == 0 || len(recipients) > s.cfg.MaxKeys {
		return api.KeysResponse{}, badRequest("register 1 to %d age recipients, got %d", s.cfg.MaxKeys, len(recipients))
	}
	for _, r := range recipients {
		if err := ParseRecipient(r); err != nil {
			return api.KeysResponse{}, err
		}
	}
	regJSON, err := s.checkRegistration(caller, recipients, reg)
	if err != nil {
		return api.KeysResponse{}, err
	}
	d, err := s.decide(ctx, policy.Input{Action: "register_key", Source: party(caller)})
	if err != nil {
		return api.KeysResponse{}, err
	}
	now := s.now().UTC()
	if err := s.store.PutKeys(ctx, caller.String(), recipients, now); err != nil {
		return api.KeysResponse{}, fmt.Errorf("transfer: register keys: %w", err)
	}
	if regJSON != nil {
		err = s.store.PutKeyRegistration(ctx, caller.String(), regJSON)
	} else {
		err = s.store.DeleteKeyRegistration(ctx, caller.String())
	}
	if err != nil {
		return api.KeysResponse{}, fmt.Errorf("transfer: register keys: %w", err)
	}
	if _, err := s.Audit(ctx, audit.Event{Kind: audit.KindKeyRegistration, Actor: caller.String(),
		Action: "register_key", Keys: recipients, Decision: auditDecision(d, true), Registration: regJSON}); err != nil {
		return api.KeysResponse{}, err
	}
	s.log.InfoContext(ctx, "keys registered", "count", len(recipients), "signed", regJSON != nil)
	return api.KeysResponse{ID: caller.String(), Recipients: recipients, Updated: now, Registration: reg}, nil
}

// ParseRecipient checks that s is an age recipient lexgate accepts: hybrid
// post-quantum "age1pq1…" or X25519 "age1…".
func ParseRecipient(s string) error {
	var err error
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		_, err = age.ParseHybridRecipient(s)
	case strings.HasPrefix(s, "age1"):
		_, err = age.ParseX25519Recipient(s)
	default:
		err = errors.New("not an age1… or age1pq1… recipient")
	}
	if err != nil {
		return badRequest("age recipient %.20q…: %v", s, err)
	}
	return nil
}

// LookupKeys returns target's registered recipients.
func (s *Service) LookupKeys(ctx context.Context, caller, target spiffeid.ID) (api.KeysResponse, error) {
	if err := s.checkCaller(ctx, caller, "lookup_key"); err != nil {
		return api.KeysResponse{}, err
	}
	in := policy.Input{Action: "lookup_key", Source: party(caller), Destinations: []policy.Party{party(target)}}
	d, err := s.decide(ctx, in)
	if err != nil {
		return api.KeysResponse{}, err
	}
	if err := s.auditAllowed(ctx, in, d, ""); err != nil {
		return api.KeysResponse{}, err
	}
	if s.revoked(target) {
		return api.KeysResponse{}, fmt.Errorf("%w: no keys for %s", ErrNotFound, target)
	}
	recips, updated, err := s.store.Keys(ctx, target.String())
	if errors.Is(err, store.ErrNotFound) {
		return api.KeysResponse{}, fmt.Errorf("%w: %s has registered no age key", ErrNotFound, target)
	}
	if err != nil {
		return api.KeysResponse{}, fmt.Errorf("transfer: lookup keys: %w", err)
	}
	rcpt, err := s.keyReceipt(ctx, target.String())
	if err != nil {
		return api.KeysResponse{}, err
	}
	reg, err := s.storedRegistration(ctx, target.String())
	if err != nil {
		return api.KeysResponse{}, err
	}
	return api.KeysResponse{ID: target.String(), Recipients: recips, Updated: updated, LogReceipt: rcpt, Registration: reg}, nil
}

// visible loads a transfer if the caller may see it, as sender or as a recipient
// named in the stored signed manifest; otherwise ErrNotFound.
func (s *Service) visible(ctx context.Context, caller spiffeid.ID, id string) (*store.Transfer, bool, error) {
	t, err := s.store.Transfer(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, ErrNotFound
	}
	if err != nil {
		return nil, false, fmt.Errorf("transfer: load %s: %w", id, err)
	}
	me := caller.String()
	if t.Sender == me {
		return t, true, nil
	}
	if slices.Contains(t.Recipients, me) && namedRecipient(t, me) {
		return t, false, nil
	}
	return nil, false, ErrNotFound
}

// Status returns a transfer the caller sent or receives.
func (s *Service) Status(ctx context.Context, caller spiffeid.ID, id string) (*api.Transfer, error) {
	if err := s.checkCaller(ctx, caller, "status"); err != nil {
		return nil, err
	}
	t, _, err := s.visible(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	v, err := view(t, caller.String())
	if err != nil {
		return nil, err
	}
	if v.HeldPastExpiry, err = s.heldPastExpiry(ctx, t); err != nil {
		return nil, err
	}
	return v, nil
}

// Inbox lists the ready transfers addressed to the caller that it has not acknowledged.
func (s *Service) Inbox(ctx context.Context, caller spiffeid.ID) ([]api.Transfer, error) {
	if err := s.checkCaller(ctx, caller, "list_inbox"); err != nil {
		return nil, err
	}
	in := policy.Input{Action: "list_inbox", Source: party(caller)}
	d, err := s.decide(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := s.auditAllowed(ctx, in, d, ""); err != nil {
		return nil, err
	}
	ts, err := s.store.Inbox(ctx, caller.String())
	if err != nil {
		return nil, fmt.Errorf("transfer: inbox: %w", err)
	}
	out := make([]api.Transfer, 0, len(ts))
	for _, t := range ts {
		if !s.logged(t) {
			continue // its completion is not in the audit log yet (see reconcile.go)
		}
		if !namedRecipient(t, caller.String()) {
			s.log.ErrorContext(ctx, "stored transfer names a recipient its signed manifest does not", "transfer", t.ID)
			continue
		}
		v, err := view(t, caller.String())
		if err != nil {
			return nil, err
		}
		if v.HeldPastExpiry, err = s.heldPastExpiry(ctx, t); err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, nil
}

// view turns a stored transfer into its wire form as seen by viewer.
func view(t *store.Transfer, viewer string) (*api.Transfer, error) {
	v := &api.Transfer{
		ID: t.ID, Sender: t.Sender, Recipients: t.Recipients, Matter: t.Matter, Labels: t.Labels,
		FileCount: t.FileCount, PlaintextSize: t.PlaintextSize, CiphertextSize: t.CiphertextSize,
		CiphertextSHA256: t.CiphertextSHA256, ManifestHash: t.ManifestHash, DecisionID: t.DecisionID,
		State: string(t.State), Offset: t.Offset, Created: t.Created, Completed: t.Completed,
	}
	if _, ok := t.Acked[viewer]; ok {
		v.State = api.StateAcknowledged
	}
	if o := t.Obligations; o != (store.Obligations{}) {
		v.Obligations = &api.Obligations{RetentionDays: o.RetentionDays, MaxDownloads: o.MaxDownloads, ExpiresAt: o.ExpiresAt}
	}
	v.Downloads = t.Downloads[viewer]
	if err := json.Unmarshal(t.Manifest, &v.Manifest); err != nil {
		return nil, fmt.Errorf("transfer: stored manifest of %s: %w", t.ID, err)
	}
	return v, nil
}

// Open returns the ciphertext of a ready transfer for a recipient, after the
// policy allows the delivery. The decision is asked again at every delivery, so a
// recipient revoked or an agreement expired after upload stops delivery. The
// stored ciphertext is checked against the signed manifest (see Delivery): if it
// changed since the upload the transfer is quarantined (ErrHashMismatch) and is
// never served whole. Open is OpenFrom at 0. The caller closes the Delivery.
func (s *Service) Open(ctx context.Context, caller spiffeid.ID, id string) (*Delivery, *api.Transfer, error) {
	return s.OpenFrom(ctx, caller, id, 0)
}

// OpenFrom is Open for a delivery that starts at byte from (a ranged request).
// Only a delivery from 0 re-hashes the stored ciphertext, so the parallel or
// resumed ranges of one download cost one extra read of the file, not one each;
// the recipient verifies the whole file against the signed manifest anyway.
func (s *Service) OpenFrom(ctx context.Context, caller spiffeid.ID, id string, from int64) (*Delivery, *api.Transfer, error) {
	return s.OpenChecked(ctx, caller, id, from, CheckByGateway)
}

// receivable makes the checks that come before anything is served to caller
// of transfer id, or done on its behalf (ReportMismatch): caller is a live
// identity, one of the recipients the signed manifest names, the transfer is
// not quarantined by an administrator, and the policy allows the receive. It
// returns the transfer, the decision's input and the decision.
func (s *Service) receivable(ctx context.Context, caller spiffeid.ID, id string) (*store.Transfer, policy.Input, policy.Decision, error) {
	var in policy.Input
	if err := s.checkCaller(ctx, caller, "receive"); err != nil {
		return nil, in, policy.Decision{}, err
	}
	t, isSender, err := s.visible(ctx, caller, id)
	if err != nil {
		return nil, in, policy.Decision{}, err
	}
	if isSender && !slices.Contains(t.Recipients, caller.String()) {
		return nil, in, policy.Decision{}, ErrNotFound // senders upload; only recipients download
	}
	if err := s.refuseQuarantined(ctx, caller, t); err != nil {
		return nil, in, policy.Decision{}, err
	}
	m, err := s.boundManifest(t)
	if err != nil {
		return nil, in, policy.Decision{}, err
	}
	if !slices.Contains(m.Recipients, caller.String()) {
		return nil, in, policy.Decision{}, ErrNotFound
	}
	srcID, _ := spiffeid.FromString(t.Sender)
	in = policy.Input{Action: "receive", Source: party(caller),
		Destinations: []policy.Party{party(srcID)}, Bundle: bundleOf(m, t.ManifestHash)}
	d, err := s.decideMatter(ctx, in)
	if err != nil {
		return nil, in, policy.Decision{}, err
	}
	return t, in, d, nil
}

// OpenChecked is OpenFrom with the check of the delivery named: CheckByGateway
// (what OpenFrom does) or CheckByRecipient, for a recipient that hashes the
// whole ciphertext itself and reports a mismatch (ReportMismatch).
func (s *Service) OpenChecked(ctx context.Context, caller spiffeid.ID, id string, from int64, check Check) (*Delivery, *api.Transfer, error) {
	t, in, d, err := s.receivable(ctx, caller, id)
	if err != nil {
		return nil, nil, err
	}
	if t.State != store.StateReady || !s.logged(t) {
		return nil, nil, ErrNotReady
	}
	detail, err := s.enforce(ctx, caller.String(), t, from, in, d)
	if err != nil {
		return nil, nil, err
	}
	f, err := s.store.Open(ctx, id)
	if errors.Is(err, store.ErrNotComplete) {
		return nil, nil, ErrNotReady
	}
	if err != nil {
		return nil, nil, fmt.Errorf("transfer: open %s: %w", id, err)
	}
	dv, err := s.deliver(ctx, caller.String(), t, f, from, check)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	v, err := view(t, caller.String())
	if err != nil {
		dv.Close()
		return nil, nil, err
	}
	ev := transferEvent(audit.KindDelivery, caller.String(), t)
	ev.Action, ev.Decision, ev.Detail = "receive", auditDecision(d, true), detail
	if _, err := s.Audit(ctx, ev); err != nil {
		dv.Close()
		return nil, nil, err
	}
	s.log.InfoContext(ctx, "delivery", "transfer", id, "sender", t.Sender)
	return dv, v, nil
}

// boundManifest decodes the stored signed manifest and checks that the stored
// metadata is still the one the policy decided on: same manifest hash, recipients,
// size and ciphertext hash.
func (s *Service) boundManifest(t *store.Transfer) (api.Manifest, error) {
	var sm api.SignedManifest
	if err := json.Unmarshal(t.Manifest, &sm); err != nil {
		return api.Manifest{}, fmt.Errorf("transfer: stored manifest of %s: %w", t.ID, err)
	}
	m, err := sm.Decode()
	if err != nil {
		return api.Manifest{}, fmt.Errorf("transfer: stored manifest of %s: %w", t.ID, err)
	}
	if sm.Hash() != t.ManifestHash || m.CiphertextSHA256 != t.CiphertextSHA256 ||
		m.CiphertextSize != t.CiphertextSize || !slices.Equal(m.Recipients, t.Recipients) {
		s.log.Error("stored transfer no longer matches its signed manifest", "transfer", t.ID)
		return api.Manifest{}, fmt.Errorf("transfer: %s does not match its signed manifest", t.ID)
	}
	return m, nil
}

func bundleOf(m api.Manifest, manifestHash string) *policy.Bundle {
	return &policy.Bundle{Matter: m.Matter, Labels: m.Labels, Regions: m.Regions,
		Size: m.PlaintextSize, CiphertextSize: m.CiphertextSize, FileCount: m.FileCount, ManifestHash: manifestHash}
}

// Ack records that the caller, a recipient, has received the transfer.
func (s *Service) Ack(ctx context.Context, caller spiffeid.ID, id string) error {
	if err := s.checkCaller(ctx, caller, "ack"); err != nil {
		return err
	}
	t, _, err := s.visible(ctx, caller, id)
	if err != nil {
		return err
	}
	if !slices.Contains(t.Recipients, caller.String()) {
		return ErrNotFound
	}
	if t.State != store.StateReady {
		return ErrNotReady
	}
	m, err := s.boundManifest(t)
	if err != nil {
		return err
	}
	srcID, _ := spiffeid.FromString(t.Sender)
	d, err := s.decideMatter(ctx, policy.Input{Action: "ack", Source: party(caller),
		Destinations: []policy.Party{party(srcID)}, Bundle: bundleOf(m, t.ManifestHash)})
	if err != nil {
		return err
	}
	// Under the transfer's lock, on every replica: of concurrent acks one
	// records and logs it; a retry after a crash between the two logs it.
	unlock, err := s.store.Lock(ctx, "transfer/"+id)
	if err != nil {
		return fmt.Errorf("transfer: ack %s: %w", id, err)
	}
	defer unlock()
	first, err := s.store.AckOnce(ctx, id, caller.String(), s.now().UTC())
	if err != nil {
		return fmt.Errorf("transfer: ack %s: %w", id, err)
	}
	crashpoint.Hit("transfer.ack.committed")
	if _, logged := s.audit.Find(audit.LookupAck(id, caller.String())); first || !logged {
		ev := transferEvent(audit.KindAck, caller.String(), t)
		ev.Action, ev.Decision = "ack", auditDecision(d, true)
		if _, err := s.Audit(ctx, ev); err != nil {
			return err
		}
	}
	s.log.InfoContext(ctx, "acknowledged", "transfer", id)
	s.purgeIfDone(ctx, id)
	return nil
}
