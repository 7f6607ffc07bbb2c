package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// workloadAPI is a SPIFFE Workload API endpoint serving FetchX509SVID over
// a real gRPC server on a Unix socket, like a SPIRE agent would.
type workloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	updates chan *workload.X509SVIDResponse
}

func startWorkloadAPI(t *testing.T) (*workloadAPI, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	api := &workloadAPI{updates: make(chan *workload.X509SVIDResponse, 4)}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, api)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return api, "unix://" + sock
}

func (api *workloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case resp := <-api.updates:
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
}

// push sends an X.509 context: svid, its CA's bundle and federated bundles.
func (api *workloadAPI) push(t *testing.T, svid *x509svid.SVID, ca *testCA, federated ...*testCA) {
	t.Helper()
	certs, key, err := svid.MarshalRaw()
	if err != nil {
		t.Fatal(err)
	}
	resp := &workload.X509SVIDResponse{
		Svids:            []*workload.X509SVID{{SpiffeId: svid.ID.String(), X509Svid: certs, X509SvidKey: key, Bundle: ca.cert.Raw}},
		FederatedBundles: map[string][]byte{},
	}
	for _, f := range federated {
		resp.FederatedBundles[f.td.Name()] = f.cert.Raw
	}
	api.updates <- resp
}

func TestWorkloadAPIFromEnv(t *testing.T) {
	harbor, manila := newTestCA(t, "harbor-law.example"), newTestCA(t, "manila-lpo.example")
	api, addr := startWorkloadAPI(t)
	t.Setenv(SocketEnv, addr)
	gw := harbor.svid(t, "/gateway", nil)
	api.push(t, gw, harbor, manila)

	src, err := New(t.Context(), Config{Revoked: []string{mallory}, Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.ID() != gw.ID {
		t.Errorf("ID = %v, want %v", src.ID(), gw.ID)
	}

	// A real handshake with the SVID and bundles from the Workload API,
	// including a federated trust domain.
	addrTLS, results := serve(t, src.ServerTLSConfig())
	bundles := x509bundle.NewSet(harbor.bundle(), manila.bundle())
	for _, client := range []*x509svid.SVID{harbor.svid(t, "/paralegal/alice", nil), manila.svid(t, "/site/review-team", nil)} {
		if _, err := dial(t, addrTLS, ClientTLSConfig(client, bundles, gw.ID)); err != nil {
			t.Errorf("%s refused: %v", client.ID, err)
		}
		if got := receive(t, results); got.id != client.ID {
			t.Errorf("server saw %v, %v", got.id, got.err)
		}
	}
	dial(t, addrTLS, ClientTLSConfig(harbor.svid(t, "/paralegal/mallory", nil), bundles, gw.ID))
	if got := receive(t, results); got.err == nil {
		t.Error("revoked ID accepted with the Workload API source")
	}

	// Rotation: a new SVID pushed by the agent is used by the next handshake.
	rotated := harbor.svid(t, "/gateway", nil)
	api.push(t, rotated, harbor, manila)
	deadline := time.Now().Add(time.Minute)
	for {
		cur, err := src.GetX509SVID()
		if err == nil && cur.Certificates[0].Equal(rotated.Certificates[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rotated SVID never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", addrTLS)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(conn, ClientTLSConfig(harbor.svid(t, "/paralegal/alice", nil), bundles, gw.ID))
	if err := tc.HandshakeContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if served := tc.ConnectionState().PeerCertificates[0]; !bytes.Equal(served.Raw, rotated.Certificates[0].Raw) {
		t.Error("server still presents the old SVID after rotation")
	}
	tc.Close()
	receive(t, results)

	if err := src.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWorkloadAPIUnreachable(t *testing.T) {
	t.Setenv(SocketEnv, "")
	addr := "unix://" + filepath.Join(t.TempDir(), "no-agent.sock")
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(ctx, Config{WorkloadAPI: addr, Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("New took %v with a 500ms deadline", elapsed)
	}
	if err == nil {
		t.Fatal("New succeeded without a Workload API")
	}
	for _, want := range []string{"identity: workload API " + addr, "no X.509-SVID received", "deadline exceeded", "no-agent.sock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWorkloadAPIEnvHonoured(t *testing.T) {
	addr := "unix://" + filepath.Join(t.TempDir(), "env.sock")
	t.Setenv(SocketEnv, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := New(ctx, Config{Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("New error = %v, want one naming %s from %s", err, addr, SocketEnv)
	}
}
