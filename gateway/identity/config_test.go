package identity

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestNewConfigErrors(t *testing.T) {
	t.Setenv(SocketEnv, "")
	dir := t.TempDir()
	harbor, manila := newTestCA(t, "harbor-law.example"), newTestCA(t, "manila-lpo.example")
	certPath, keyPath := writeSVID(t, dir, "gateway", harbor.svid(t, "/gateway", nil))
	harborBundle, manilaBundle := writeBundle(t, dir, harbor), writeBundle(t, dir, manila)
	bundles := map[string]string{"harbor-law.example": harborBundle}
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"nothing", Config{}, []string{"no identity configured", "svid_cert", "workload_api", SocketEnv}},
		{"cert without key", Config{SVIDCert: certPath, Bundles: bundles}, []string{"svid_cert and svid_key"}},
		{"files and workload API", Config{SVIDCert: certPath, SVIDKey: keyPath, Bundles: bundles, WorkloadAPI: "unix:///run/spire/agent.sock"}, []string{"not both"}},
		{"no bundles", Config{SVIDCert: certPath, SVIDKey: keyPath}, []string{"bundles", "at least one"}},
		{"bad trust domain", Config{SVIDCert: certPath, SVIDKey: keyPath, Bundles: map[string]string{"Harbor Law": harborBundle}}, []string{"bundles", `"Harbor Law"`}},
		{"missing bundle file", Config{SVIDCert: certPath, SVIDKey: keyPath, Bundles: map[string]string{"harbor-law.example": missing}}, []string{"bundles[harbor-law.example]", missing}},
		{"missing SVID file", Config{SVIDCert: filepath.Join(dir, "nope.crt"), SVIDKey: keyPath, Bundles: bundles}, []string{"svid_cert", "nope.crt"}},
		{"SVID from another trust domain", Config{SVIDCert: certPath, SVIDKey: keyPath, Bundles: map[string]string{"manila-lpo.example": manilaBundle}}, []string{"svid_cert", "does not verify"}},
		{"bad revoked ID", Config{SVIDCert: certPath, SVIDKey: keyPath, Bundles: bundles, Revoked: []string{mallory, "alice"}}, []string{"revoked[1]", `"alice"`}},
		{"bad workload API scheme", Config{WorkloadAPI: "http://127.0.0.1:8080"}, []string{"workload_api", "unsupported scheme"}},
		{"tcp workload API without IP", Config{WorkloadAPI: "tcp://spire:8081"}, []string{"workload_api", "IP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(t.Context(), tt.cfg)
			if err == nil {
				src.Close()
				t.Fatal("New succeeded")
			}
			if !strings.HasPrefix(err.Error(), "identity: ") {
				t.Errorf("error %q lacks the identity: prefix", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBadSocketEnv(t *testing.T) {
	t.Setenv(SocketEnv, "/run/spire/agent.sock") // a path, not a URI
	_, err := New(t.Context(), Config{})
	if err == nil || !strings.Contains(err.Error(), SocketEnv) {
		t.Errorf("New error = %v, want one naming %s", err, SocketEnv)
	}
}
