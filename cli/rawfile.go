package cli

import (
	"fmt"
	"io"
	"os"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
)

// decryptFile handles a single-file transfer (api.ContentFile: a legacy system
// uploaded one file over SFTP and the gateway encrypted it on ingest): it
// decrypts it into staging under the manifest's name and checks its size
// against the signed manifest.
func decryptFile(r io.Reader, staging string, ids []age.Identity, m api.Manifest) (*extracted, error) {
	if err := api.ValidFileName(m.Name); err != nil {
		return nil, unsafef("%v", err)
	}
	if err := checkEntryName(m.Name); err != nil {
		return nil, err
	}
	pr, err := openPayload(r, ids)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(staging)
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	defer root.Close()
	f, err := root.OpenFile(m.Name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("staging %s: %w", m.Name, err)
	}
	n, sum, err := writeFile(f, io.LimitReader(pr, m.PlaintextSize+1), m.PlaintextSize, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	if n != m.PlaintextSize {
		return nil, unsafef("the file has %d bytes, the signed manifest says %d", n, m.PlaintextSize)
	}
	if _, err := io.Copy(io.Discard, pr); err != nil { // authenticate the last chunk
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return &extracted{files: []BundleFile{{Path: m.Name, Size: n, SHA256: sum}}}, nil
}
