package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// SocketEnv is the environment variable holding the default Workload API
// address, as the SPIFFE Workload Endpoint specification names it.
const SocketEnv = "SPIFFE_ENDPOINT_SOCKET"

// Backoff between two attempts to reach the Workload API.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// workloadSource keeps the latest X.509-SVID and bundles streamed by the
// SPIFFE Workload API (FetchX509SVID), reconnecting with backoff. Its
// goroutine is owned by it: close cancels it and waits for it.
//
// It talks to the Workload API with the generated gRPC client rather than
// go-spiffe's workloadapi package, whose JWT support pulls in a module
// this repository does not pin.
type workloadSource struct {
	addr   string
	conn   *grpc.ClientConn
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.RWMutex
	svid    *x509svid.SVID
	bundles *x509bundle.Set
	lastErr error
}

// dialWorkloadAPI connects to the Workload API at addr and waits, until
// ctx is done, for the first X.509-SVID.
func dialWorkloadAPI(ctx context.Context, addr string, log *slog.Logger) (*workloadSource, error) {
	target, err := workloadTarget(addr)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("identity: workload API %s: %w", addr, err)
	}
	watchCtx, cancel := context.WithCancel(context.Background())
	w := &workloadSource{addr: addr, conn: conn, log: log.With("workload_api", addr), cancel: cancel, done: make(chan struct{})}
	first := make(chan struct{})
	go w.watch(watchCtx, first)
	select {
	case <-first:
		return w, nil
	case <-ctx.Done():
		w.close()
		w.mu.RLock()
		last := w.lastErr
		w.mu.RUnlock()
		err := fmt.Errorf("identity: workload API %s: no X.509-SVID received (is a SPIRE agent listening there, and is this workload registered?): %w", addr, ctx.Err())
		if last != nil {
			err = fmt.Errorf("%w; last error: %v", err, last)
		}
		return nil, err
	}
}

// watch streams X.509 contexts until ctx is done, closing first after the
// first one.
func (w *workloadSource) watch(ctx context.Context, first chan struct{}) {
	defer close(w.done)
	client := workload.NewSpiffeWorkloadAPIClient(w.conn)
	ctx = metadata.AppendToOutgoingContext(ctx, "workload.spiffe.io", "true")
	backoff := minBackoff
	var once sync.Once
	for {
		err := w.stream(ctx, client, func() { once.Do(func() { close(first) }); backoff = minBackoff })
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		w.lastErr = err
		w.mu.Unlock()
		w.log.Warn("identity: workload API stream failed; retrying", slog.String("error", err.Error()), slog.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// stream reads one FetchX509SVID stream, calling updated after each update.
func (w *workloadSource) stream(ctx context.Context, client workload.SpiffeWorkloadAPIClient, updated func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.FetchX509SVID(ctx, &workload.X509SVIDRequest{})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		svid, bundles, err := parseX509Context(resp)
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.svid, w.bundles, w.lastErr = svid, bundles, nil
		w.mu.Unlock()
		w.log.Info("identity: X.509-SVID updated from the workload API", slog.String("spiffe_id", svid.ID.String()), slog.Time("not_after", svid.Certificates[0].NotAfter))
		updated()
	}
}

// parseX509Context turns a Workload API response into the first SVID and
// the bundles of its own and of federated trust domains.
func parseX509Context(resp *workload.X509SVIDResponse) (*x509svid.SVID, *x509bundle.Set, error) {
	if len(resp.GetSvids()) == 0 {
		return nil, nil, errors.New("workload API response holds no X.509-SVID")
	}
	first := resp.GetSvids()[0]
	svid, err := x509svid.ParseRaw(first.GetX509Svid(), first.GetX509SvidKey())
	if err != nil {
		return nil, nil, err
	}
	own, err := x509bundle.ParseRaw(svid.ID.TrustDomain(), first.GetBundle())
	if err != nil {
		return nil, nil, err
	}
	set := x509bundle.NewSet(own)
	for name, raw := range resp.GetFederatedBundles() {
		td, err := spiffeid.TrustDomainFromString(name)
		if err != nil {
			return nil, nil, fmt.Errorf("federated bundle %q: %w", name, err)
		}
		b, err := x509bundle.ParseRaw(td, raw)
		if err != nil {
			return nil, nil, fmt.Errorf("federated bundle %q: %w", name, err)
		}
		set.Add(b)
	}
	return svid, set, nil
}

// current returns the latest SVID.
func (w *workloadSource) current() *x509svid.SVID {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.svid
}

// bundle returns the latest bundle of td, if the Workload API sent one.
func (w *workloadSource) bundle(td spiffeid.TrustDomain) (*x509bundle.Bundle, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.bundles.Get(td)
}

// close stops the watch goroutine, waits for it and closes the connection.
func (w *workloadSource) close() error {
	w.cancel()
	<-w.done
	return w.conn.Close()
}

// workloadTarget validates a Workload API address (unix:///path or
// tcp://IP:port) and returns the gRPC target to dial.
func workloadTarget(addr string) (string, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("identity: workload API address %q: %w", addr, err)
	}
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("identity: workload API address %q: %s (want unix:///path/to/socket or tcp://IP:port)", addr, why)
	}
	switch {
	case u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return bad("unexpected opaque part, user, query or fragment")
	case u.Scheme == "unix":
		if u.Host != "" || u.Path == "" {
			return bad("a unix address has a path and no host")
		}
		return "unix://" + u.Path, nil
	case u.Scheme == "tcp":
		if u.Path != "" || net.ParseIP(u.Hostname()) == nil || u.Port() == "" {
			return bad("a tcp address is an IP and a port")
		}
		return "passthrough:///" + u.Host, nil
	default:
		return bad("unsupported scheme")
	}
}
