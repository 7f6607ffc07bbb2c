package identity

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// SocketEnv is the environment variable holding the default Workload API
// address, as the SPIFFE Workload Endpoint specification names it.
const SocketEnv = workloadapi.SocketEnv

// dialWorkloadAPI starts go-spiffe's X.509 source on the Workload API at
// addr and waits, until ctx is done, for the first X.509-SVID. The source
// then keeps the SVID and bundles (federated ones included) up to date,
// reconnecting with go-spiffe's backoff, until it is closed.
func dialWorkloadAPI(ctx context.Context, addr string, pick spiffeid.ID, log *slog.Logger) (*workloadapi.X509Source, error) {
	wlog := &workloadLogger{log: log.With(slog.String("workload_api", addr)), want: pick}
	src, err := workloadapi.NewX509Source(ctx,
		workloadapi.WithClientOptions(workloadapi.WithAddr(addr), workloadapi.WithLogger(wlog)),
		workloadapi.WithDefaultX509SVIDPicker(wlog.pick),
	)
	if err != nil {
		err = fmt.Errorf("identity: workload API %s: no X.509-SVID received (is a SPIRE agent listening there, and is this workload registered?): %w", addr, err)
		if last := wlog.lastError(); last != "" {
			err = fmt.Errorf("%w; last error: %s", err, last)
		}
		return nil, err
	}
	return src, nil
}

// workloadLogger passes go-spiffe's Workload API client logs to slog and
// remembers the last error, so that a failed [New] can say why.
type workloadLogger struct {
	log  *slog.Logger
	want spiffeid.ID // Config.SPIFFEID

	mu   sync.Mutex
	last string
}

func (l *workloadLogger) Debugf(format string, args ...any) {
	l.log.Debug("identity: workload API: " + fmt.Sprintf(format, args...))
}

func (l *workloadLogger) Infof(format string, args ...any) {
	l.log.Info("identity: workload API: " + fmt.Sprintf(format, args...))
}

func (l *workloadLogger) Warnf(format string, args ...any) {
	l.log.Warn("identity: workload API: " + fmt.Sprintf(format, args...))
}

func (l *workloadLogger) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.last = msg
	l.mu.Unlock()
	l.log.Error("identity: workload API: " + msg)
}

func (l *workloadLogger) lastError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// pick chooses the default SVID of each Workload API update: the one with
// Config.SPIFFEID if set and offered, else the first as the specification
// says, and logs it. The list is never empty: go-spiffe rejects an update
// without SVIDs.
func (l *workloadLogger) pick(svids []*x509svid.SVID) *x509svid.SVID {
	svid := svids[0]
	if !l.want.IsZero() {
		found := false
		for _, s := range svids {
			if s.ID == l.want {
				svid, found = s, true
			}
		}
		if !found {
			l.log.Error("identity: the workload API no longer offers an SVID for spiffe_id; check the registration entries", slog.String("spiffe_id", l.want.String()), slog.String("offered_first", svid.ID.String()))
		}
	}
	l.log.Info("identity: X.509-SVID updated from the workload API", slog.String("spiffe_id", svid.ID.String()), slog.Time("not_after", svid.Certificates[0].NotAfter))
	return svid
}

// checkWorkloadAddr validates a Workload API address: unix:///path or
// tcp://IP:port. It is stricter than go-spiffe (no host in a unix address)
// and its errors say what is expected.
func checkWorkloadAddr(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return fmt.Errorf("identity: workload API address %q: %w", addr, err)
	}
	bad := func(why string) error {
		return fmt.Errorf("identity: workload API address %q: %s (want unix:///path/to/socket or tcp://IP:port)", addr, why)
	}
	switch {
	case u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return bad("unexpected opaque part, user, query or fragment")
	case u.Scheme == "unix":
		if u.Host != "" || u.Path == "" {
			return bad("a unix address has a path and no host")
		}
	case u.Scheme == "tcp":
		if u.Path != "" || net.ParseIP(u.Hostname()) == nil || u.Port() == "" {
			return bad("a tcp address is an IP and a port")
		}
	default:
		return bad("unsupported scheme")
	}
	if err := workloadapi.ValidateAddress(addr); err != nil {
		return bad(err.Error())
	}
	return nil
}
