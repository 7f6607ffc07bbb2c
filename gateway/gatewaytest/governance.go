package gatewaytest

import (
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/policies"
)

// PolicyDir copies the shipped policies (policies.FS) into a temporary
// directory, lets patch change each data file (data/NAME.json, decoded as a
// JSON object) before it is written, and returns the directory, for
// WithPolicyDir: a test sets its own retention, download limits or size
// limits without touching the shipped data. The Rego tests are left out:
// they test the shipped data.
func PolicyDir(t testing.TB, patch func(file string, doc map[string]any)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "policies")
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(out, 0o700)
		}
		if strings.HasSuffix(p, "_test.rego") {
			return nil // they test the shipped data, which patch changes
		}
		b, err := fs.ReadFile(policies.FS, p)
		if err != nil {
			return err
		}
		if patch != nil && strings.HasPrefix(p, "data/") && path.Ext(p) == ".json" {
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				return err
			}
			patch(path.Base(p), doc)
			if b, err = json.MarshalIndent(doc, "", "  "); err != nil {
				return err
			}
		}
		return os.WriteFile(out, b, 0o600)
	})
	if err != nil {
		t.Fatalf("gatewaytest: copy policies: %v", err)
	}
	return dir
}

// AddIdentity mints an SVID for id (in a trust domain of the dev PKI) with
// the dev CA, beside the others: ClientConfig(id) then works for it.
func (e *Env) AddIdentity(id string) {
	e.t.Helper()
	sid, err := spiffeid.FromString(id)
	if err != nil {
		e.t.Fatal(err)
	}
	spec := certs.DevSpec{Orgs: []certs.DevOrg{{TrustDomain: sid.TrustDomain().Name(), IDs: []string{sid.Path()}}}, TTL: certs.DefaultSVIDTTL}
	if err := certs.MintDev(e.PKI, spec); err != nil {
		e.t.Fatalf("gatewaytest: mint %s: %v", id, err)
	}
}
