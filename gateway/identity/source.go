package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// DefaultWorkloadAPITimeout bounds how long [New] waits for the first
// X.509-SVID from the Workload API when its context has no deadline.
const DefaultWorkloadAPITimeout = 30 * time.Second

// ErrClosed is returned by a [Source]'s getters after [Source.Close].
var ErrClosed = errors.New("identity: source is closed")

// Source is the gateway's identity: its own X.509-SVID and the X.509
// bundles of every trust domain it accepts, plus the deny list. It is safe
// for concurrent use.
type Source struct {
	svid    *x509svid.SVID          // file source
	wl      *workloadapi.X509Source // Workload API source
	bundles *x509bundle.Set         // from Config.Bundles
	id      spiffeid.ID             // the gateway's own ID at New
	revoked *revocations            // the deny list: config file + run time (revocation.go)
	log     *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ x509svid.Source   = (*Source)(nil)
	_ x509bundle.Source = (*Source)(nil)
)

// New checks cfg and returns the Source it describes. With the file
// source it loads the SVID and bundles and checks that the gateway's own
// SVID verifies against them. With the Workload API it waits until the
// first X.509-SVID arrives, until ctx is done or, if ctx has no deadline,
// for [DefaultWorkloadAPITimeout]. Errors name the field or file at fault.
func New(ctx context.Context, cfg Config) (*Source, error) {
	c, err := cfg.check()
	if err != nil {
		return nil, err
	}
	s := &Source{revoked: newRevocations(c.revoked), log: c.log, bundles: x509bundle.NewSet()}
	for td, path := range c.bundles {
		b, err := x509bundle.Load(td, path)
		if err != nil {
			return nil, fmt.Errorf("identity: bundles[%s]: %s: %w", td, path, err)
		}
		if b.Empty() {
			return nil, fmt.Errorf("identity: bundles[%s]: %s holds no certificate", td, path)
		}
		s.bundles.Add(b)
	}
	switch c.kind {
	case fromFiles:
		err = s.loadFiles(cfg.SVIDCert, cfg.SVIDKey)
	case fromWorkloadAPI:
		err = s.dialWorkloadAPI(ctx, c.addr)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// loadFiles loads the gateway's SVID from PEM files and verifies it.
func (s *Source) loadFiles(certPath, keyPath string) error {
	svid, err := x509svid.Load(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("identity: svid_cert %s, svid_key %s: %w", certPath, keyPath, err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, s.bundles); err != nil {
		return fmt.Errorf("identity: svid_cert %s (%s) does not verify against the configured bundles: %w", certPath, svid.ID, err)
	}
	s.svid, s.id = svid, svid.ID
	return nil
}

// dialWorkloadAPI connects to the Workload API and waits for the first SVID.
func (s *Source) dialWorkloadAPI(ctx context.Context, addr string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWorkloadAPITimeout)
		defer cancel()
	}
	wl, err := dialWorkloadAPI(ctx, addr, s.log)
	if err != nil {
		return err
	}
	svid, err := wl.GetX509SVID()
	if err != nil {
		wl.Close()
		return fmt.Errorf("identity: workload API %s: %w", addr, err)
	}
	s.wl, s.id = wl, svid.ID
	return nil
}

// Close releases the Workload API connection, if any. Later calls to the
// getters fail with [ErrClosed], so a TLS config built from s refuses every
// handshake. Close is idempotent.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.wl != nil {
			if err := s.wl.Close(); err != nil {
				s.closeErr = fmt.Errorf("identity: closing workload API source: %w", err)
			}
		}
	})
	return s.closeErr
}

// ID returns the gateway's own SPIFFE ID: with the Workload API, that of
// the current SVID (of the first one, once s is closed).
func (s *Source) ID() spiffeid.ID {
	if s.wl != nil {
		if svid, err := s.wl.GetX509SVID(); err == nil {
			return svid.ID
		}
	}
	return s.id
}

// TrustDomains returns the trust domains the gateway accepts, sorted: those
// of Config.Bundles and, with the Workload API, the gateway's own. (Bundles
// the Workload API federates with are accepted too but are not listed.)
func (s *Source) TrustDomains() []spiffeid.TrustDomain {
	tds := map[spiffeid.TrustDomain]struct{}{}
	for _, b := range s.bundles.Bundles() {
		tds[b.TrustDomain()] = struct{}{}
	}
	if s.wl != nil {
		tds[s.ID().TrustDomain()] = struct{}{}
	}
	return slices.SortedFunc(maps.Keys(tds), func(a, b spiffeid.TrustDomain) int {
		return strings.Compare(a.Name(), b.Name())
	})
}

// GetX509SVID returns the gateway's current X.509-SVID. It implements
// [x509svid.Source].
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if s.wl != nil {
		svid, err := s.wl.GetX509SVID()
		if err != nil {
			if s.closed.Load() { // closed since the check above
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("identity: %w", err)
		}
		return svid, nil
	}
	return s.svid, nil
}

// GetX509BundleForTrustDomain returns the X.509 bundle of td: the
// configured file first, then the Workload API's. It implements
// [x509bundle.Source]; an unknown trust domain is an error.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if b, ok := s.bundles.Get(td); ok {
		return b, nil
	}
	if s.wl != nil {
		if b, err := s.wl.GetX509BundleForTrustDomain(td); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("identity: unknown trust domain %q", td)
}
