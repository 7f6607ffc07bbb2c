package agecheck_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/agecheck"
)

// encrypt returns a real age file of plaintext to recipients.
func encrypt(t testing.TB, plaintext string, recips ...age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recips...)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, plaintext)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func x25519(t testing.TB) age.Recipient {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient()
}

func hybrid(t testing.TB) age.Recipient {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient()
}

// header returns the header text of a real file (up to and including the MAC line).
func header(t testing.TB, file []byte) string {
	t.Helper()
	n, err := agecheck.Header(file)
	if err != nil {
		t.Fatalf("a real age file is refused: %v", err)
	}
	return string(file[:n])
}

// rawHeader cuts a file after its MAC line without checking it.
func rawHeader(file []byte) string {
	s := string(file)
	i := strings.Index(s, "\n---")
	return s[:i+1+strings.IndexByte(s[i+1:], '\n')+1]
}

const mac = "--- " + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"

func TestHeaderAcceptsRealFiles(t *testing.T) {
	for name, recips := range map[string][]age.Recipient{
		"x25519":           {x25519(t)},
		"hybrid":           {hybrid(t)},
		"three recipients": {hybrid(t), hybrid(t), hybrid(t)},
	} {
		t.Run(name, func(t *testing.T) {
			f := encrypt(t, "privileged memo", recips...)
			n, err := agecheck.Header(f)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(string(f[:n]), "\n") || !strings.Contains(string(f[:n]), "\n--- ") {
				t.Fatalf("header length %d does not end after the MAC line", n)
			}
		})
	}
}

func TestHeaderRefuses(t *testing.T) {
	real := header(t, encrypt(t, "x", x25519(t)))
	version, rest, _ := strings.Cut(real, "\n")
	stanza := rest[:strings.Index(rest, "---")]
	long := version + "\n-> X25519 " + strings.Repeat("A", agecheck.MaxLineLen) + "\n\n" + mac
	many := version + "\n" + strings.Repeat(stanza, 3000) + mac
	// A body's last character with non-zero padding bits: the same bytes, another spelling.
	lines := strings.Split(stanza, "\n")
	last := lines[len(lines)-2]
	tweaked := last[:len(last)-1] + string(nonCanonical(last[len(last)-1]))
	nonCanon := version + "\n" + strings.Join(append(lines[:len(lines)-2:len(lines)-2], tweaked, ""), "\n") + mac
	scrypt, err := age.NewScryptRecipient("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	scrypt.SetWorkFactor(10)
	cases := []struct {
		name, header, want string
	}{
		{"empty", "", "ends before"},
		{"truncated after version", version + "\n", "ends before"},
		{"truncated in stanza body", version + "\n" + stanza[:20], "ends before"},
		{"truncated before MAC", version + "\n" + stanza, "ends before"},
		{"truncated MAC line", version + "\n" + stanza + "--- AAAA", "ends before"},
		{"wrong version", "age-encryption.org/v2\n" + stanza + mac, "version line"},
		{"armored", "-----BEGIN AGE ENCRYPTED FILE-----\n", "version line"},
		{"CRLF", version + "\r\n" + stanza + mac, "version line"},
		{"no stanza", version + "\n" + mac, "no recipient stanza"},
		{"garbage line", version + "\n" + stanza + "hello\n" + mac, "stanza"},
		{"non-canonical base64", nonCanon, "canonical"},
		{"padded base64", version + "\n-> X25519 abc\nAAA=\n" + mac, "canonical"},
		{"body line too wide", version + "\n-> X25519 abc\n" + strings.Repeat("A", 68) + "\n" + mac, "columns"},
		{"empty argument", version + "\n-> X25519  abc\n\n" + mac, "empty stanza argument"},
		{"control byte in argument", version + "\n-> X25519 a\x00c\n\n" + mac, "printable"},
		{"thousands of stanzas", many, "more than 64"},
		{"very long line", long, "more than 4096"},
		{"scrypt stanza", rawHeader(encrypt(t, "x", scrypt)), "scrypt"},
		{"short MAC", version + "\n" + stanza + "--- AAAA\n", "MAC line"},
		{"non-canonical MAC", version + "\n" + stanza + "--- " + strings.Repeat("A", 42) + "B\n", "MAC is not canonical"},
		{"header too large", version + "\n-> X25519 a\n" + strings.Repeat(strings.Repeat("A", 64)+"\n", 5000) + "\n" + mac, "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := agecheck.Header([]byte(c.header))
			var e *agecheck.Error
			if !errors.As(err, &e) {
				t.Fatalf("Header = %v, want an *agecheck.Error", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
			if errors.Is(err, agecheck.ErrTruncated) != (c.want == "ends before") {
				t.Fatalf("errors.Is(%v, ErrTruncated) is wrong", err)
			}
		})
	}
}

// nonCanonical returns a base64 character that decodes to the same leading bits
// as c with a non-zero trailing bit: the last character of an unpadded body
// whose length is not a multiple of 4 carries unused bits.
func nonCanonical(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	return alphabet[strings.IndexByte(alphabet, c)|1]
}

func TestReaderPassesRealFile(t *testing.T) {
	f := encrypt(t, strings.Repeat("bundle bytes ", 10000), hybrid(t), hybrid(t))
	got, err := io.ReadAll(agecheck.NewReader(iotest.OneByteReader(bytes.NewReader(f))))
	if err != nil || !bytes.Equal(got, f) {
		t.Fatalf("ReadAll = %d bytes, %v; want the file unchanged", len(got), err)
	}
	if err := iotest.TestReader(agecheck.NewReader(bytes.NewReader(f)), f); err != nil {
		t.Fatal(err)
	}
}

func TestReaderReleasesNothingOfARefusedFile(t *testing.T) {
	f := encrypt(t, "x", x25519(t))
	bad := append([]byte("age-encryption.org/v1\n-> scrypt c2FsdA 10\nAAAA\n"), f[strings.Index(string(f), "---"):]...)
	r := agecheck.NewReader(bytes.NewReader(bad))
	n, err := r.Read(make([]byte, 1024))
	var e *agecheck.Error
	if n != 0 || !errors.As(err, &e) {
		t.Fatalf("Read = %d, %v; want 0 bytes and an *agecheck.Error", n, err)
	}
	if n, err2 := r.Read(make([]byte, 1024)); n != 0 || err2 != err {
		t.Fatalf("second Read = %d, %v; want the same error", n, err2)
	}
}

func TestReaderPassesTransportErrors(t *testing.T) {
	f := encrypt(t, "x", x25519(t))
	cut := errors.New("connection reset")
	r := agecheck.NewReader(io.MultiReader(bytes.NewReader(f[:10]), iotest.ErrReader(cut)))
	if n, err := r.Read(make([]byte, 1024)); n != 0 || !errors.Is(err, cut) {
		t.Fatalf("Read = %d, %v; want 0 bytes and the transport error", n, err)
	}
}

// FuzzHeader: Header never panics, a length it returns ends a line within the
// limits, and the Reader agrees with Header on every input.
func FuzzHeader(f *testing.F) {
	f.Add(encrypt(f, "seed", x25519(f)))
	f.Add(encrypt(f, "seed", hybrid(f), hybrid(f)))
	f.Add([]byte("age-encryption.org/v1\n-> X25519 abc\nAAA\n" + mac))
	f.Add([]byte("age-encryption.org/v1\n-> scrypt c2FsdA 10\n\n" + mac))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := agecheck.Header(b)
		if err == nil && (n <= 0 || n > len(b) || n > agecheck.MaxHeaderSize || b[n-1] != '\n') {
			t.Fatalf("Header = %d on %d bytes", n, len(b))
		}
		got, rerr := io.ReadAll(agecheck.NewReader(bytes.NewReader(b)))
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Header error %v, Reader error %v", err, rerr)
		}
		if rerr == nil && !bytes.Equal(got, b) {
			t.Fatal("Reader changed the bytes")
		}
	})
}

func TestCheck(t *testing.T) {
	f := encrypt(t, "memo", x25519(t))
	r, err := agecheck.Check(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, f) {
		t.Fatalf("ReadAll after Check = %d bytes, %v", len(got), err)
	}
	if r, err := agecheck.Check(bytes.NewReader(f[:30])); r != nil || !errors.Is(err, agecheck.ErrTruncated) {
		t.Fatalf("Check of a truncated header = %v, %v", r, err)
	}
}

// BenchmarkCheck is the cost the pre-check adds to an upload at offset 0: a
// header with three post-quantum recipients, checked and passed through.
func BenchmarkCheck(b *testing.B) {
	f := encrypt(b, strings.Repeat("x", 1<<10), hybrid(b), hybrid(b), hybrid(b))
	n, _ := agecheck.Header(f)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		r, err := agecheck.Check(bytes.NewReader(f))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, r)
	}
}
