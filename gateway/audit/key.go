package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// loadOrCreateKey reads the note signer key at path, or generates an Ed25519 one
// named origin and writes it there with mode 0600. An existing key for another
// origin is an error: the origin is part of every checkpoint already signed.
func loadOrCreateKey(path, origin string) (note.Signer, string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		skey, _, gerr := note.GenerateKey(rand.Reader, origin)
		if gerr != nil {
			return nil, "", fmt.Errorf("audit: generate log key: %w", gerr)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", fmt.Errorf("audit: log key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, "", fmt.Errorf("audit: write log key: %w", err)
		}
		if _, err := f.WriteString(skey + "\n"); err != nil {
			f.Close()
			return nil, "", fmt.Errorf("audit: write log key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, "", fmt.Errorf("audit: write log key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, "", fmt.Errorf("audit: write log key: %w", err)
		}
		b = []byte(skey)
	} else if err != nil {
		return nil, "", fmt.Errorf("audit: read log key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("audit: log key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, "", fmt.Errorf("audit: log key %s: %w", path, err)
	}
	if s.Name() != origin {
		return nil, "", fmt.Errorf("audit: log key %s signs for origin %q, but the config says %q", path, s.Name(), origin)
	}
	vkey, err := verifierKey(string(b))
	if err != nil {
		return nil, "", err
	}
	return s, vkey, nil
}

// verifierKey derives the public note verifier key ("name+hash+base64") from a
// note signer key "PRIVATE+KEY+name+hash+base64(alg||seed)".
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("audit: log key is not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("audit: log key is not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// ParseVerifier parses a pinned log key: the note verifier key that
// "lexgate log-key" prints.
func ParseVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("audit: log key %q: %w", vkey, err)
	}
	return v, nil
}

// ReadVerifierKey returns the public note verifier key of the log key in keyFile,
// without opening the log.
func ReadVerifierKey(keyFile string) (string, error) {
	b, err := os.ReadFile(keyFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("audit: no log key at %s yet: start the gateway once (lexgate serve) to create it", keyFile)
	}
	if err != nil {
		return "", fmt.Errorf("audit: read log key: %w", err)
	}
	return verifierKey(string(b))
}

// KeyFileOrDefault is the signing key file cfg uses: KeyFile, or Dir + ".key".
func (c Config) KeyFileOrDefault() string { return c.withDefaults().KeyFile }
