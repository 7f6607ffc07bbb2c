package sftpfront

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// TestAgePlaintextSize: the size worked out from the header's length and the
// ciphertext's size is the size age decrypts, around every chunk boundary and
// with one or several recipients.
func TestAgePlaintextSize(t *testing.T) {
	ids := make([]*age.X25519Identity, 3)
	for i := range ids {
		ids[i], _ = age.GenerateX25519Identity()
	}
	const chunk = 64 << 10
	for _, n := range []int{0, 1, 15, 16, 17, chunk - 1, chunk, chunk + 1, chunk + 16, 2 * chunk, 3*chunk + 5, 304128} {
		for _, recips := range [][]age.Recipient{{ids[0].Recipient()}, {ids[0].Recipient(), ids[1].Recipient(), ids[2].Recipient()}} {
			var ct bytes.Buffer
			w, err := age.Encrypt(&ct, recips...)
			if err != nil {
				t.Fatal(err)
			}
			plain := make([]byte, n)
			rand.Read(plain)
			w.Write(plain)
			w.Close()
			hdr, err := age.ExtractHeader(bytes.NewReader(ct.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := agePlaintextSize(int64(ct.Len()), int64(len(hdr)))
			_, want, derr := age.DecryptReaderAt(bytes.NewReader(ct.Bytes()), int64(ct.Len()), ids[0])
			if err != nil || derr != nil || got != want || got != int64(n) {
				t.Errorf("%d bytes, %d recipients: agePlaintextSize = %d, %v; age says %d, %v", n, len(recips), got, err, want, derr)
			}
		}
	}
	for _, tc := range []struct{ ct, hdr int64 }{{100, 90}, {100 + 16 + 65552 + 16, 100}} {
		if n, err := agePlaintextSize(tc.ct, tc.hdr); err == nil {
			t.Errorf("agePlaintextSize(%d, %d) = %d, want an error", tc.ct, tc.hdr, n)
		}
	}
}

// TestNegotiationFix: the fix a failed negotiation names.
func TestNegotiationFix(t *testing.T) {
	for _, tc := range []struct {
		what    string
		offered []string
		want    string
	}{
		{"client to server cipher", []string{"chacha20-poly1305@openssh.com"}, `add "chacha20-poly1305@openssh.com" to sftp.ciphers`},
		{"client to server cipher", []string{"aes128-cbc", "3des-cbc"}, `admit "aes128-cbc" for its account in sftp.legacy_algorithms.ciphers`},
		{"client to server MAC", []string{"hmac-sha1", "hmac-md5"}, `sftp.legacy_algorithms.macs`},
		{"key exchange", []string{"diffie-hellman-group1-sha1"}, `sftp.legacy_algorithms.key_exchanges`},
		{"client to server cipher", []string{"twofish-cbc"}, "offers nothing the gateway implements"},
		{"host key", []string{"ssh-dss"}, "host key"},
	} {
		got := negotiationFix(&ssh.AlgorithmNegotiationError{What: tc.what, RequestedAlgorithms: tc.offered})
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s %v: fix %q, want it to contain %q", tc.what, tc.offered, got, tc.want)
		}
	}
}
