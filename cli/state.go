package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
)

// Resuming a send. Before encrypting, "lex send" derives a key from everything that
// decides the bundle (sender, gateway, recipients, matter, labels, regions, and every
// input's absolute name, type, size, mode and modification time) and keeps
// cache_dir/outgoing/<key>.json next to the ciphertext spool <key>.age, which the
// send pipeline fills while it uploads. The state records the signed manifest that
// opened the streamed transfer (Intent), the transfer's ID, and, once encryption
// has finished, the final manifest with the ciphertext hash (Final). Running the
// same command again after an interruption checks the spool against Final,
// uploads the rest from the gateway's offset and seals the transfer; a send
// interrupted before encryption finished starts afresh. Success, a refusal or a
// rejected manifest deletes both files.

// sendState is the JSON kept between runs of the same send.
type sendState struct {
	Key        string              `json:"key"`
	TransferID string              `json:"transfer_id,omitempty"`
	Intent     *api.SignedManifest `json:"intent"`
	Final      *api.SignedManifest `json:"final,omitempty"`
	Spool      string              `json:"spool"`
}

// sendKeyInput is what a send's state key is computed from.
type sendKeyInput struct {
	sender, gateway         string
	recipients, labels, rgn []string
	matter                  string
	in                      *bundleInputs
}

// stateKey returns the hex SHA-256 identifying a send.
func stateKey(k sendKeyInput) string {
	h := sha256.New()
	field := func(h hash.Hash, s string) { fmt.Fprintf(h, "%d:%s\n", len(s), s) }
	list := func(name string, l []string) {
		l = slices.Sorted(slices.Values(l))
		field(h, fmt.Sprintf("%s/%d", name, len(l)))
		for _, s := range l {
			field(h, s)
		}
	}
	field(h, "lex send state v1")
	field(h, k.sender)
	field(h, k.gateway)
	list("recipients", k.recipients)
	list("labels", k.labels)
	list("regions", k.rgn)
	field(h, k.matter)
	for _, e := range k.in.entries {
		field(h, fmt.Sprintf("%s\x00%s\x00%t\x00%d\x00%o\x00%d", e.abs, e.name, e.dir, e.size, e.mode, e.mtime.UnixNano()))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// outgoingDir returns (creating it) the directory of send states and spools.
func outgoingDir(cfg *Config) (string, error) {
	dir := filepath.Join(cfg.CacheDir, "outgoing")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return dir, nil
}

func statePath(dir, key string) string { return filepath.Join(dir, key+".json") }

// loadState returns the saved state of key, or nil if there is none usable:
// missing, unreadable, or from an older lex.
func loadState(dir, key string) (*sendState, error) {
	data, err := os.ReadFile(statePath(dir, key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("send state: %w", err)
	}
	var st sendState
	if err := json.Unmarshal(data, &st); err != nil || st.Key != key || st.Intent == nil {
		return nil, nil
	}
	return &st, nil
}

// save writes the state atomically, readable by the user only.
func (st *sendState) save(dir string) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("send state: %w", err)
	}
	f, err := os.CreateTemp(dir, ".state-*")
	if err != nil {
		return fmt.Errorf("send state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, statePath(dir, st.Key))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("send state: %w", err)
	}
	return nil
}

// remove deletes the state and its spool.
func (st *sendState) remove(dir string) {
	os.Remove(statePath(dir, st.Key))
	if st.Spool != "" {
		os.Remove(st.Spool)
	}
}

// staleAfter is how long the state and spool of an interrupted send are kept
// for a resume before "lex send" deletes them.
const staleAfter = 14 * 24 * time.Hour

// pruneStates deletes send states in dir (and their spools) last written more
// than maxAge before now, and spools left without a state, returning the
// states it removed. It is best effort: a file it cannot read or remove stays.
func pruneStates(dir string, maxAge time.Duration, now time.Time) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || now.Sub(info.ModTime()) < maxAge {
			continue
		}
		name := e.Name()
		switch filepath.Ext(name) {
		case ".json":
			p := filepath.Join(dir, name)
			if os.Remove(p) == nil {
				os.Remove(strings.TrimSuffix(p, ".json") + ".age")
				removed = append(removed, p)
			}
		case ".age":
			if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(name, ".age")+".json")); errors.Is(err, os.ErrNotExist) {
				os.Remove(filepath.Join(dir, name))
			}
		}
	}
	return removed
}
