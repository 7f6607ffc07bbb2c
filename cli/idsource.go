package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// workloadAPITimeout bounds the wait for the first SVID from the Workload API.
const workloadAPITimeout = 30 * time.Second

// idSource is where lex's X.509-SVID and trust bundles come from: files
// (svid_cert, svid_key, bundles) or the SPIFFE Workload API (workload_api),
// which rotates them while lex runs. Every handshake and every signature asks
// it for the current SVID.
type idSource interface {
	x509svid.Source
	x509bundle.Source
	Close() error
}

// fileSource is an SVID and bundles read from files once.
type fileSource struct {
	*x509svid.SVID
	*x509bundle.Set
}

func (fileSource) Close() error { return nil }

// workloadSource takes the SVID from the Workload API and the bundles from the
// configured files first, then from the Workload API (its own trust domain and
// those it federates with).
type workloadSource struct {
	wl    *workloadapi.X509Source
	files *x509bundle.Set
}

func (w *workloadSource) GetX509SVID() (*x509svid.SVID, error) { return w.wl.GetX509SVID() }

func (w *workloadSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if b, ok := w.files.Get(td); ok {
		return b, nil
	}
	return w.wl.GetX509BundleForTrustDomain(td)
}

func (w *workloadSource) Close() error { return w.wl.Close() }

// openIDSource opens the identity source cfg names; checkNetwork validated it.
func (c *Config) openIDSource(ctx context.Context) (idSource, error) {
	if c.Login.enabled() {
		svid, err := c.Login.loadPersonSVID(time.Now())
		if err != nil {
			return nil, err
		}
		files, err := c.loadBundles()
		if err != nil {
			return nil, err
		}
		return fileSource{svid, files}, nil
	}
	if c.WorkloadAPI == "" {
		svid, err := c.loadSVID()
		if err != nil {
			return nil, err
		}
		files, err := c.loadBundles()
		if err != nil {
			return nil, err
		}
		return fileSource{svid, files}, nil
	}
	files, err := c.loadBundles()
	if err != nil {
		return nil, err
	}
	want := spiffeid.ID{}
	if c.SPIFFEID != "" {
		want, _ = spiffeid.FromString(c.SPIFFEID) // checked by checkNetwork
	}
	pick := func(svids []*x509svid.SVID) *x509svid.SVID {
		if want.IsZero() {
			return svids[0]
		}
		for _, s := range svids {
			if s.ID == want {
				return s
			}
		}
		return svids[0] // refused below when it is so at the start
	}
	ctx, cancel := context.WithTimeout(ctx, workloadAPITimeout)
	defer cancel()
	wl, err := workloadapi.NewX509Source(ctx,
		workloadapi.WithClientOptions(workloadapi.WithAddr(c.WorkloadAPI)),
		workloadapi.WithDefaultX509SVIDPicker(pick))
	if err != nil {
		return nil, fmt.Errorf("config %s: workload_api %s: no X.509-SVID received (is the SPIRE agent running, and is this user registered?): %w", c.Path, c.WorkloadAPI, err)
	}
	svid, err := wl.GetX509SVID()
	if err == nil && !want.IsZero() && svid.ID != want {
		err = fmt.Errorf("it offers no SVID for spiffe_id %s (the first is %s): register this workload for it", want, svid.ID)
	}
	if err != nil {
		wl.Close()
		return nil, fmt.Errorf("config %s: workload_api %s: %w", c.Path, c.WorkloadAPI, err)
	}
	return &workloadSource{wl: wl, files: files}, nil
}

var errNoSVID = errors.New("no X.509-SVID")

// currentSVID returns the SVID in force now, for a signature.
func currentSVID(s idSource) (*x509svid.SVID, error) {
	svid, err := s.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoSVID, err)
	}
	return svid, nil
}
