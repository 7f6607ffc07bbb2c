package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// clientConfig writes the lex config of one demo user, whose SVID files are
// pki/<svid>.crt and .key, and returns its path.
func (d *demo) clientConfig(user, svid string) (string, error) {
	home, err := filepath.Abs(d.path(user))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`gateway: %s
gateway_id: spiffe://harbor-law.example/gateway
svid_cert: ../pki/%s.crt
svid_key: ../pki/%s.key
bundles:
  harbor-law.example: ../pki/harbor-law.example/bundle.pem
  manila-lpo.example: ../pki/manila-lpo.example/bundle.pem
identity: identity.age
cache_dir: cache
log_key: %s
`, d.gwAddr, svid, svid, d.logKey)
	path := filepath.Join(home, "config.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// writeBundle makes a small matter bundle: nested folders, text, a binary scan and
// an empty file.
func writeBundle(root string) error {
	scan := make([]byte, 3<<20)
	rand.Read(scan)
	files := map[string][]byte{
		"engagement-letter.txt":               []byte("Privileged & confidential. Engagement of Manila LPO for first-pass review.\n"),
		"custodians/mueller/emails.mbox":      bytes.Repeat([]byte("From: k.mueller@client.example\nSubject: Q3 supply contract\n\n...\n"), 2000),
		"custodians/schmidt/scan-0001.pdf":    scan,
		"custodians/schmidt/notes-empty.txt":  nil,
		"review-protocol/coding-manual-v2.md": []byte("# Coding manual\n\n1. Responsive\n2. Privileged\n3. Hot\n"),
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sameTree reports the first difference between two directory trees' regular files.
func sameTree(a, b string) error {
	seen := map[string]bool{}
	err := filepath.WalkDir(a, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		seen[rel] = true
		x, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return fmt.Errorf("%s missing: %w", rel, err)
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("%s differs", rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return filepath.WalkDir(b, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if rel, _ := filepath.Rel(b, p); !seen[rel] {
			return fmt.Errorf("unexpected extra file %s", rel)
		}
		return nil
	})
}

// countFiles counts the regular files under dir (0 if it does not exist).
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			n++
		}
		return nil
	})
	return n
}
