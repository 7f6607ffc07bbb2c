package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Defaults of a [Federation] entry.
const (
	// DefaultFederationRefresh is the longest wait between two fetches of a
	// federated bundle when its endpoint gives no shorter refresh hint.
	DefaultFederationRefresh = 5 * time.Minute
	// federationRetryMin is the first wait after a failed fetch; it doubles
	// up to the refresh interval.
	federationRetryMin = time.Second
	// federationFetchTimeout bounds one fetch.
	federationFetchTimeout = 30 * time.Second
)

// ErrBundleExpired is wrapped when a federated trust domain's last good
// bundle holds no authority valid any more: its endpoint has not delivered
// a fresh one in time, and the trust domain is refused (fail closed).
var ErrBundleExpired = errors.New("identity: federated bundle expired")

// Federation is one partner trust domain whose bundle the gateway fetches
// from the partner's SPIFFE bundle endpoint (the SPIFFE Federation API),
// with the https_spiffe profile: the endpoint authenticates with an
// X.509-SVID of the partner's trust domain, verified against the partner's
// last good bundle. The first bundle comes out of band (BootstrapBundle,
// e.g. "spire-server bundle show" run by the partner).
//
//	identity:
//	  federation:
//	    - trust_domain: manila-lpo.example
//	      bundle_endpoint_url: https://spire.manila-lpo.example:8443
//	      endpoint_spiffe_id: spiffe://manila-lpo.example/spire/server
//	      bootstrap_bundle: pki/manila-lpo.example/bundle.pem
//
// The bundle is fetched again at the endpoint's refresh hint, at most every
// Refresh. A failed fetch (unreachable, bad TLS, bad document) keeps the
// last good bundle, logged, and is retried; once none of that bundle's
// authorities is valid any more the trust domain fails closed with
// [ErrBundleExpired] until a fetch succeeds.
type Federation struct {
	TrustDomain      string `yaml:"trust_domain"`
	BundleEndpoint   string `yaml:"bundle_endpoint_url"`
	EndpointSPIFFEID string `yaml:"endpoint_spiffe_id"`
	BootstrapBundle  string `yaml:"bootstrap_bundle"`
	// Refresh is the longest wait between fetches (default
	// DefaultFederationRefresh).
	Refresh time.Duration `yaml:"refresh"`
}

// federated is one Federation at run time.
type federated struct {
	td       spiffeid.TrustDomain
	url      string
	endpoint spiffeid.ID
	refresh  time.Duration
	log      *slog.Logger

	bundle  atomic.Pointer[x509bundle.Bundle] // last good
	lastErr atomic.Pointer[string]            // the last fetch's error, nil after a success
}

// checkFederation validates the federation entries, naming the one at fault.
func checkFederation(fs []Federation, static map[spiffeid.TrustDomain]string) ([]*federated, error) {
	var out []*federated
	seen := map[spiffeid.TrustDomain]bool{}
	for i, f := range fs {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("identity: federation[%d] (%s): %s", i, f.TrustDomain, fmt.Sprintf(format, args...))
		}
		td, err := spiffeid.TrustDomainFromString(f.TrustDomain)
		if err != nil {
			return nil, bad("trust_domain: %v", err)
		}
		if seen[td] {
			return nil, bad("trust domain listed twice")
		}
		if _, ok := static[td]; ok {
			return nil, bad("trust domain also in bundles: a static bundle would take precedence for ever; list it in one place")
		}
		seen[td] = true
		u, err := url.Parse(f.BundleEndpoint)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, bad("bundle_endpoint_url %q: want https://host:port[/path]", f.BundleEndpoint)
		}
		ep, err := spiffeid.FromString(f.EndpointSPIFFEID)
		if err != nil {
			return nil, bad("endpoint_spiffe_id %q (the https_spiffe profile needs the endpoint server's SPIFFE ID): %v", f.EndpointSPIFFEID, err)
		}
		if f.BootstrapBundle == "" {
			return nil, bad("bootstrap_bundle: the partner's first bundle (PEM) is needed to authenticate its endpoint")
		}
		if f.Refresh < 0 {
			return nil, bad("refresh %v is negative", f.Refresh)
		}
		refresh := f.Refresh
		if refresh == 0 {
			refresh = DefaultFederationRefresh
		}
		out = append(out, &federated{td: td, url: f.BundleEndpoint, endpoint: ep, refresh: refresh})
	}
	return out, nil
}

// loadBootstrap loads a federation entry's first bundle from its file.
func (f *federated) loadBootstrap(path string) error {
	b, err := x509bundle.Load(f.td, path)
	if err != nil {
		return fmt.Errorf("identity: federation %s: bootstrap_bundle %s: %w", f.td, path, err)
	}
	if b.Empty() {
		return fmt.Errorf("identity: federation %s: bootstrap_bundle %s holds no certificate", f.td, path)
	}
	f.bundle.Store(b)
	return nil
}

// GetX509BundleForTrustDomain implements x509bundle.Source for the
// endpoint's authentication: the last good bundle.
func (f *federated) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != f.td {
		return nil, fmt.Errorf("identity: federation %s: no bundle for %s", f.td, td)
	}
	return f.bundle.Load(), nil
}

// current returns the last good bundle, or an error wrapping
// ErrBundleExpired once none of its authorities is valid at now.
func (f *federated) current(now time.Time) (*x509bundle.Bundle, error) {
	b := f.bundle.Load()
	for _, c := range b.X509Authorities() {
		if !now.After(c.NotAfter) && !now.Before(c.NotBefore) {
			return b, nil
		}
	}
	why := "no fetch has failed"
	if e := f.lastErr.Load(); e != nil {
		why = "the last fetch failed: " + *e
	}
	return nil, fmt.Errorf("%w: every authority of %s's last good bundle has expired, and its bundle endpoint %s has not delivered a new one (%s); refusing the trust domain until it does",
		ErrBundleExpired, f.td, f.url, why)
}

// run fetches the bundle now and then at the refresh interval, until ctx
// is done.
func (f *federated) run(ctx context.Context) {
	retry := federationRetryMin
	for {
		next := f.refresh
		hint, err := f.fetch(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			msg := err.Error()
			if prev := f.lastErr.Swap(&msg); prev == nil || *prev != msg {
				f.log.Warn("identity: federated bundle fetch failed; the last good bundle stays in force until it expires",
					slog.String("trust_domain", f.td.Name()), slog.String("url", f.url), slog.String("error", msg))
			}
			next, retry = min(retry, f.refresh), min(2*retry, f.refresh)
		default:
			retry = federationRetryMin
			if hint > 0 && hint < next {
				next = hint
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// fetch fetches the bundle once and, if it is good, puts it in force. It
// returns the bundle's refresh hint.
func (f *federated) fetch(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, federationFetchTimeout)
	defer cancel()
	sb, err := federation.FetchBundle(ctx, f.td, f.url, federation.WithSPIFFEAuth(f, f.endpoint))
	if err != nil {
		return 0, err
	}
	b := sb.X509Bundle()
	if b.Empty() {
		return 0, fmt.Errorf("the bundle endpoint served a bundle with no X.509 authority")
	}
	hint, _ := sb.RefreshHint()
	if old := f.bundle.Load(); !old.Equal(b) {
		f.log.Info("identity: federated bundle updated", slog.String("trust_domain", f.td.Name()),
			slog.Int("x509_authorities", len(b.X509Authorities())), slog.String("url", f.url))
	}
	f.bundle.Store(b)
	f.lastErr.Store(nil)
	return hint, nil
}

// federations runs every federation entry's refresh loop.
type federations struct {
	byTD   map[spiffeid.TrustDomain]*federated
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// start loads the bootstrap bundles and starts the refresh loops.
func startFederation(fs []*federated, files []Federation, log *slog.Logger) (*federations, error) {
	out := &federations{byTD: map[spiffeid.TrustDomain]*federated{}}
	for i, f := range fs {
		f.log = log
		if err := f.loadBootstrap(files[i].BootstrapBundle); err != nil {
			return nil, err
		}
		out.byTD[f.td] = f
	}
	ctx, cancel := context.WithCancel(context.Background())
	out.cancel = cancel
	for _, f := range fs {
		out.wg.Add(1)
		go func() {
			defer out.wg.Done()
			f.run(ctx)
		}()
	}
	return out, nil
}

// stop stops the refresh loops and waits for them.
func (fs *federations) stop() {
	if fs == nil {
		return
	}
	fs.cancel()
	fs.wg.Wait()
}

// FederationErrors returns, for each federated trust domain refused at now
// (its last good bundle expired), an error saying why; nil when all are in
// force. The gateway's /readyz lists them.
func (s *Source) FederationErrors(now time.Time) []error {
	if s.fed == nil {
		return nil
	}
	var errs []error
	for _, f := range s.fed.byTD {
		if _, err := f.current(now); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
