package gateway

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/quic-go/quic-go"
)

// statelessResetKeyFile is the QUIC stateless reset key's file under
// store.dir.
const statelessResetKeyFile = "quic_reset.key"

// loadResetKey returns the QUIC stateless reset key kept in dir, making it
// (0600) on first start. With the same key after a restart the gateway answers
// packets of connections it no longer knows with a stateless reset (RFC 9000,
// 10.3), so lex learns at once that its connection is gone and reconnects,
// rather than waiting for its idle timeout. The key must stay secret: whoever
// holds it can reset the gateway's connections.
func loadResetKey(dir string) (*quic.StatelessResetKey, error) {
	path := filepath.Join(dir, statelessResetKeyFile)
	var key quic.StatelessResetKey
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(b) == len(key):
		copy(key[:], b)
		return &key, nil
	case err == nil:
		return nil, fmt.Errorf("gateway: %s holds %d bytes, not a %d-byte QUIC stateless reset key: remove it to make a new one", path, len(b), len(key))
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("gateway: QUIC stateless reset key: %w", err)
	}
	rand.Read(key[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gateway: QUIC stateless reset key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gateway: QUIC stateless reset key: %w", err)
	}
	_, err = f.Write(key[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("gateway: QUIC stateless reset key %s: %w", path, err)
	}
	return &key, nil
}
