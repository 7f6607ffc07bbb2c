package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
)

// Age keys. "lex keygen" writes an identity file in the format of age-keygen (so the
// stock age CLI reads it), hybrid post-quantum by default. "lex register" publishes
// its recipients; "lex send" encrypts to the recipients the gateway lists for each
// addressee.

// generateIdentity returns a new identity's file content and its recipient.
func generateIdentity(x25519 bool, now time.Time) (content, recipient string, err error) {
	var secret string
	if x25519 {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return "", "", fmt.Errorf("keygen: %w", err)
		}
		secret, recipient = id.String(), id.Recipient().String()
	} else {
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return "", "", fmt.Errorf("keygen: %w", err)
		}
		secret, recipient = id.String(), id.Recipient().String()
	}
	content = fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", now.UTC().Format(time.RFC3339), recipient, secret)
	return content, recipient, nil
}

// writeIdentityFile writes content to path with mode 0600. Without force an existing
// file is an error; with force it is replaced atomically.
func writeIdentityFile(path, content string, force bool) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("keygen: %s already exists: keep it, or pass --force to replace it (files encrypted to the old key will no longer decrypt)", path)
		}
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		return closeAfter(f, f.WriteString, content)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".identity-*")
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	tmp := f.Name()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("keygen: %w", err)
	}
	if err := closeAfter(f, f.WriteString, content); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keygen: %w", err)
	}
	return nil
}

// closeAfter writes s with write, syncs and closes f, returning the first error.
func closeAfter(f *os.File, write func(string) (int, error), s string) error {
	_, err := write(s)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keygen: writing %s: %w", f.Name(), err)
	}
	return nil
}

// readIdentities parses the age identity file at path.
func readIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no age identity at %s: run \"lex keygen\" first", path)
		}
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return ids, nil
}

// identityRecipients returns the recipient string of each identity.
func identityRecipients(ids []age.Identity) ([]string, error) {
	var rs []string
	for _, id := range ids {
		switch id := id.(type) {
		case *age.HybridIdentity:
			rs = append(rs, id.Recipient().String())
		case *age.X25519Identity:
			rs = append(rs, id.Recipient().String())
		default:
			return nil, fmt.Errorf("identity of type %T has no recipient lex can register", id)
		}
	}
	return rs, nil
}

// parseRecipient parses an "age1pq1…" (hybrid) or "age1…" (X25519) recipient.
func parseRecipient(s string) (age.Recipient, bool, error) {
	switch {
	case strings.HasPrefix(s, "age1pq1"):
		r, err := age.ParseHybridRecipient(s)
		return r, true, err
	case strings.HasPrefix(s, "age1"):
		r, err := age.ParseX25519Recipient(s)
		return r, false, err
	}
	return nil, false, fmt.Errorf("unknown recipient type %.12q…", s)
}

// keyset is one addressee's registered recipients, parsed.
type keyset struct {
	id      string
	hybrid  []age.Recipient
	classic []age.Recipient
}

func parseKeyset(id string, recipients []string) (*keyset, error) {
	ks := &keyset{id: id}
	for _, s := range recipients {
		r, pq, err := parseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("%s registered a bad key: %w", id, err)
		}
		if pq {
			ks.hybrid = append(ks.hybrid, r)
		} else {
			ks.classic = append(ks.classic, r)
		}
	}
	if len(ks.hybrid)+len(ks.classic) == 0 {
		return nil, fmt.Errorf("%s has no registered age key: ask them to run \"lex keygen\" and \"lex register\"", id)
	}
	return ks, nil
}

// chooseRecipients picks what to encrypt to. age cannot mix post-quantum and
// classic recipients in one file, so it is the hybrid keys when every addressee
// has one; otherwise the X25519 keys when every addressee has one (classic is
// reported in the second result); otherwise an error naming who lacks a hybrid key.
func chooseRecipients(sets []*keyset) ([]age.Recipient, bool, error) {
	var hybrid, classic []age.Recipient
	var noPQ, noClassic []string
	for _, ks := range sets {
		hybrid = append(hybrid, ks.hybrid...)
		classic = append(classic, ks.classic...)
		if len(ks.hybrid) == 0 {
			noPQ = append(noPQ, ks.id)
		}
		if len(ks.classic) == 0 {
			noClassic = append(noClassic, ks.id)
		}
	}
	switch {
	case len(noPQ) == 0:
		return hybrid, false, nil
	case len(noClassic) == 0:
		return classic, true, nil
	}
	return nil, false, fmt.Errorf("cannot encrypt to everyone at once: %s registered only X25519 keys and %s only post-quantum keys; send separately or ask them to register a post-quantum key",
		strings.Join(noPQ, ", "), strings.Join(noClassic, ", "))
}
