package sftpfront

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/transfer"
)

// Custody: an account with custodial_inbox set has an age identity held by the
// gateway, so that /inbox serves its deliveries decrypted to a system that
// cannot run age. The identity is made on first start, sealed at rest
// (XChaCha20-Poly1305 under a key derived with HKDF-SHA-256 from the SFTP host
// key file, bound to the account's name and SPIFFE ID, 0600), and its recipient
// is registered as the account's only key at every start. The gateway can then
// read what is sent to that account: end-to-end encryption ends at the gateway
// for it, which is why it is off by default and per account.

// custodyMagic starts a sealed identity file.
const custodyMagic = "lexgate-custody-v1\n"

// custodyPath is where an account's sealed identity lives: beside the host key.
func custodyPath(hostKey, account string) string {
	return filepath.Join(filepath.Dir(hostKey), "sftp_custody", account+".sealed")
}

// custodyKey derives the sealing key of account's identity from the host key
// file's bytes.
func custodyKey(hostKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, hostKey, nil, "lexgate sftp custodial identity v1", chacha20poly1305.KeySize)
}

// custodyAD binds a sealed identity to its account: a file copied to another
// account's name does not open.
func custodyAD(a *account) []byte { return []byte(a.Name + "\x00" + a.ID) }

// loadCustody opens the sealed identity of a custodial account, or makes and
// seals a new one when the file does not exist. A file that does not open with
// this host key is an error naming it: the gateway never replaces an identity
// that deliveries may already be encrypted to.
func loadCustody(hostKey []byte, path string, a *account) (*age.X25519Identity, error) {
	key, err := custodyKey(hostKey)
	if err != nil {
		return nil, fmt.Errorf("sftpfront: custodial identity of %s: %w", a.Name, err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("sftpfront: custodial identity of %s: %w", a.Name, err)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return newCustody(aead, path, a)
	}
	if err != nil {
		return nil, fmt.Errorf("sftpfront: custodial identity of %s: %w", a.Name, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sftpfront: custodial identity %s is readable by others (%v): chmod 600 it", path, fi.Mode().Perm())
	}
	sealed, ok := bytes.CutPrefix(b, []byte(custodyMagic))
	if !ok || len(sealed) < aead.NonceSize() {
		return nil, fmt.Errorf("sftpfront: custodial identity %s is not a sealed lexgate identity", path)
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], custodyAD(a))
	if err != nil {
		return nil, fmt.Errorf("sftpfront: custodial identity %s does not open with this host key and account (was the host key replaced, or the file copied from another account?)", path)
	}
	id, err := age.ParseX25519Identity(strings.TrimSpace(string(plain)))
	if err != nil {
		return nil, fmt.Errorf("sftpfront: custodial identity %s: %w", path, err)
	}
	return id, nil
}

func newCustody(aead interface {
	Seal(dst, nonce, plaintext, ad []byte) []byte
	NonceSize() int
}, path string, a *account) (*age.X25519Identity, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("sftpfront: custodial identity of %s: %w", a.Name, err)
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte(custodyMagic), nonce...)
	out = aead.Seal(out, nonce, []byte(id.String()), custodyAD(a))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sftpfront: custodial identity of %s: %w", a.Name, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sftpfront: custodial identity of %s: %w", a.Name, err)
	}
	_, werr := f.Write(out)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("sftpfront: custodial identity %s: %w", path, err)
	}
	return id, nil
}

// startCustody loads (or makes) the identity of every custodial account and
// registers its recipient as the account's key, through the core (policy
// register_key, audited).
func (s *Server) startCustody(ctx context.Context, hostKey []byte) error {
	for _, a := range s.accounts {
		if !a.CustodialInbox {
			continue
		}
		if s.bundles == nil {
			return errors.New("sftpfront: a custodial inbox needs the trust bundles (Deps.Bundles) to verify manifests")
		}
		id, err := loadCustody(hostKey, custodyPath(s.cfg.HostKey, a.Name), a)
		if err != nil {
			return err
		}
		recips := []string{id.Recipient().String()}
		reg, err := s.signCustodial(a.id.String(), recips)
		if err != nil {
			return err
		}
		if _, err := s.core.RegisterKeys(ctx, a.id, recips, reg); err != nil {
			return fmt.Errorf("sftpfront: registering the custodial key of %s as %s: %w", a.Name, a.ID, err)
		}
		a.custody = id
		s.log.WarnContext(ctx, "custodial inbox: the gateway holds this account's age identity and serves its deliveries decrypted",
			"account", a.Name, "caller", a.ID, "recipient", id.Recipient().String())
	}
	return nil
}

// plainName is a delivery's name in a custodial /inbox: the uploaded file's
// name, or the matter with .tar for a lex bundle (a tar), after the id.
func plainName(t api.Transfer) string {
	name := strings.TrimSuffix(InboxName(t), ".age")
	if m, err := t.Manifest.Decode(); err == nil && m.Content == api.ContentFile {
		return name
	}
	return name + ".tar"
}

// openPlain verifies a delivery's signed manifest (signer SVID chains to a
// trusted bundle; the signer is the sender, or this gateway for a manifest
// sealed on ingest; the account is a recipient; it is the manifest the
// transfer was stored under) and returns the plaintext of its ciphertext f,
// decrypted with the account's custodial identity as it is read. Every chunk
// read is authenticated by age.
func (h *handler) openPlain(f *transfer.Delivery, t *api.Transfer) (io.ReaderAt, error) {
	if h.s.bundles == nil {
		return nil, failure("custodial inbox: the front has no trust bundles to verify manifests with")
	}
	m, signer, _, err := t.VerifyManifest(h.s.bundles) // judged when the gateway accepted it, not now
	if err != nil {
		return nil, failure("delivery %s: its signed manifest does not verify: %v", t.ID, err)
	}
	if signer.String() != m.Sender {
		svid, err := h.s.sealer.GetX509SVID()
		if err != nil || signer != svid.ID {
			return nil, failure("delivery %s: sealed by %s, which is not this gateway", t.ID, signer)
		}
	}
	if t.Manifest.Hash() != t.ManifestHash || !containsString(m.Recipients, h.acct.ID) {
		return nil, failure("delivery %s does not match its signed manifest", t.ID)
	}
	plain, _, err := age.DecryptReaderAt(f, f.Size(), h.acct.custody)
	if err != nil {
		return nil, failure("delivery %s cannot be decrypted with the custodial identity: %v", t.ID, err)
	}
	return plain, nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// servedSize is the size a custodial /inbox serves t at, as its listing and
// stat give it: the plaintext, which for a lex bundle is its tar (the
// manifest's plaintext size counts only the files in it, and a client that
// trusts a smaller size fails its download). It is worked out from the stored
// ciphertext's age header, once per transfer.
func (h *handler) servedSize(t api.Transfer) (int64, error) {
	if m, err := t.Manifest.Decode(); err == nil && m.Content == api.ContentFile {
		return t.PlaintextSize, nil
	}
	if n, ok := h.s.sizes.get(t.ID); ok {
		return n, nil
	}
	hdr, ct, err := h.s.core.AgeHeader(h.ctx, h.acct.id, t.ID)
	if err != nil {
		return 0, err
	}
	n, err := agePlaintextSize(ct, int64(len(hdr)))
	if err != nil {
		return 0, fmt.Errorf("delivery %s: %w", t.ID, err)
	}
	h.s.sizes.put(t.ID, n)
	return n, nil
}

// agePlaintextSize is the plaintext size of an age file of ciphertext bytes
// whose header takes header bytes: the payload is a 16-byte nonce, then chunks
// of 64 KiB of plaintext and a 16-byte tag, the last one shorter and not empty
// unless the whole plaintext is.
func agePlaintextSize(ciphertext, header int64) (int64, error) {
	const nonce, tag, chunk = 16, 16, 64<<10 + 16
	payload := ciphertext - header - nonce
	if payload < tag {
		return 0, errors.New("age payload shorter than one chunk")
	}
	chunks := (payload + chunk - 1) / chunk
	if last := payload - (chunks-1)*chunk; last == tag && chunks > 1 {
		return 0, errors.New("age payload ends with an empty chunk")
	}
	return payload - chunks*tag, nil
}

// sizeCache remembers served sizes by transfer ID. Safe for concurrent use.
type sizeCache struct {
	mu sync.Mutex
	m  map[string]int64
}

// maxSizes bounds the cache; past it, it starts over.
const maxSizes = 1 << 16

func (c *sizeCache) get(id string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[id]
	return n, ok
}

func (c *sizeCache) put(id string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxSizes {
		c.m = map[string]int64{}
	}
	c.m[id] = n
}

// signCustodial signs the registration of a custodial account's keys with
// the gateway's own X.509-SVID, marked custodial: senders accept it as the
// gateway's, and the account's owner sees it as such (lex keys --watch).
func (s *Server) signCustodial(id string, recips []string) (*api.SignedRegistration, error) {
	svid, err := s.sealer.GetX509SVID()
	if err != nil {
		return nil, fmt.Errorf("sftpfront: signing the custodial registration of %s: %w", id, err)
	}
	return api.SignRegistration(api.Registration{ID: id, Recipients: recips, Custodial: true}, svid.PrivateKey, svid.Certificates)
}
