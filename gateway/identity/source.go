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
	files   *fileSet                       // file source: the files to (re)load; nil with the Workload API
	svid    atomic.Pointer[x509svid.SVID]  // file source, swapped by Reload
	wl      *workloadapi.X509Source        // Workload API source
	bundles atomic.Pointer[x509bundle.Set] // from Config.Bundles, swapped by Reload
	id      spiffeid.ID                    // the gateway's own ID at New
	revoked *revocations                   // the deny list: config file + run time (revocation.go)
	log     *slog.Logger
	reload  sync.Mutex                // one Reload at a time
	loaded  atomic.Pointer[fileStamp] // what Reload last loaded
	watch   time.Duration             // Config.WatchInterval, defaulted
	fed     *federations              // Config.Federation; nil without

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
	s := &Source{revoked: newRevocations(c.revoked), log: c.log, watch: c.watch}
	switch c.kind {
	case fromFiles:
		s.files = &fileSet{cert: cfg.SVIDCert, key: cfg.SVIDKey, bundles: c.bundles}
		err = s.Reload()
	case fromWorkloadAPI:
		var set *x509bundle.Set
		if set, err = loadBundles(c.bundles); err == nil {
			s.bundles.Store(set)
			err = s.dialWorkloadAPI(ctx, c.addr, c.pick)
		}
	}
	if err != nil {
		return nil, err
	}
	if len(c.fed) > 0 {
		if s.fed, err = startFederation(c.fed, cfg.Federation, s.log); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// loadBundles loads the configured bundle files.
func loadBundles(files map[spiffeid.TrustDomain]string) (*x509bundle.Set, error) {
	set := x509bundle.NewSet()
	for td, path := range files {
		b, err := x509bundle.Load(td, path)
		if err != nil {
			return nil, fmt.Errorf("identity: bundles[%s]: %s: %w", td, path, err)
		}
		if b.Empty() {
			return nil, fmt.Errorf("identity: bundles[%s]: %s holds no certificate", td, path)
		}
		set.Add(b)
	}
	return set, nil
}

// dialWorkloadAPI connects to the Workload API and waits for the first SVID.
func (s *Source) dialWorkloadAPI(ctx context.Context, addr string, pick spiffeid.ID) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWorkloadAPITimeout)
		defer cancel()
	}
	wl, err := dialWorkloadAPI(ctx, addr, pick, s.log)
	if err != nil {
		return err
	}
	svid, err := wl.GetX509SVID()
	if err == nil && !pick.IsZero() && svid.ID != pick {
		err = fmt.Errorf("it offers no SVID for spiffe_id %s (only %s): register this workload for it", pick, svid.ID)
	}
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
		s.fed.stop()
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
	if svid := s.svid.Load(); svid != nil {
		return svid.ID
	}
	return s.id
}

// TrustDomains returns the trust domains the gateway accepts, sorted: those
// of Config.Bundles and, with the Workload API, the gateway's own. (Bundles
// the Workload API federates with are accepted too but are not listed.)
func (s *Source) TrustDomains() []spiffeid.TrustDomain {
	tds := map[spiffeid.TrustDomain]struct{}{}
	for _, b := range s.bundles.Load().Bundles() {
		tds[b.TrustDomain()] = struct{}{}
	}
	if s.fed != nil {
		for td := range s.fed.byTD {
			tds[td] = struct{}{}
		}
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
	return s.svid.Load(), nil
}

// GetX509BundleForTrustDomain returns the X.509 bundle of td: the
// configured file first, then the federated one (Config.Federation: the last
// good bundle fetched, refused once expired), then the Workload API's. It implements
// [x509bundle.Source]; an unknown trust domain is an error.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if b, ok := s.bundles.Load().Get(td); ok {
		return b, nil
	}
	if s.fed != nil {
		if f, ok := s.fed.byTD[td]; ok {
			return f.current(time.Now())
		}
	}
	if s.wl != nil {
		if b, err := s.wl.GetX509BundleForTrustDomain(td); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("identity: unknown trust domain %q", td)
}
