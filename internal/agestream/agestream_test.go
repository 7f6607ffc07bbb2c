package agestream

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// seal encrypts plain to id's recipient with age itself.
func seal(t testing.TB, id *age.X25519Identity, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll reads r with reads of size n (cycling through sizes), returning what
// it got before the first error and whether that error was io.EOF.
func readAll(r io.Reader, sizes []int) ([]byte, error) {
	var out []byte
	for i := 0; ; i++ {
		p := make([]byte, sizes[i%len(sizes)])
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// both decrypts ct with age and with this package, read in the given sizes,
// and fails the test unless they agree: the same plaintext before the first
// error, and an error from both or from neither.
func both(t *testing.T, ct []byte, id age.Identity, sizes []int) ([]byte, error) {
	t.Helper()
	var want []byte
	ar, werr := age.Decrypt(bytes.NewReader(ct), id)
	if werr == nil {
		want, werr = readAll(ar, sizes)
	}
	var got []byte
	sr, gerr := NewReader(bytes.NewReader(ct), id)
	if gerr == nil {
		got, gerr = readAll(sr, sizes)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("plaintext: got %d bytes, age gives %d (errors: %v / age %v)", len(got), len(want), gerr, werr)
	}
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("error: got %v, age gives %v", gerr, werr)
	}
	if werr != nil && gerr.Error() != werr.Error() {
		t.Logf("errors differ in wording: %q, age %q", gerr, werr)
	}
	return got, gerr
}

var readSizes = map[string][]int{
	"1 byte":        {1},
	"tar block":     {512},
	"chunk-1":       {ChunkSize - 1},
	"chunk":         {ChunkSize},
	"chunk+1":       {ChunkSize + 1},
	"1 MiB":         {1 << 20},
	"mixed":         {7, ChunkSize + 3, 512, 3 * ChunkSize, 1},
	"2 chunks+tail": {2*ChunkSize + 100},
}

func TestMatchesAge(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 511, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize, 3*ChunkSize + 1000, 17*ChunkSize + 5} {
		plain := make([]byte, size)
		rand.Read(plain)
		ct := seal(t, id, plain)
		for name, sizes := range readSizes {
			got, err := both(t, ct, id, sizes)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%d bytes read by %s: %d bytes back, %v", size, name, len(got), err)
			}
		}
	}
}

// TestRefusesWhatAgeRefuses damages a three-chunk file in every way the
// format's checks are about; each damage must fail here as it fails in age,
// after the same authenticated plaintext.
func TestRefusesWhatAgeRefuses(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 2*ChunkSize+777)
	rand.Read(plain)
	ct := seal(t, id, plain)
	hdrLen := headerLen(t, ct)
	payload := hdrLen + nonceSize
	chunk := func(i int) []byte { return ct[payload+i*encChunkSize : min(payload+(i+1)*encChunkSize, len(ct))] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	other, _ := age.GenerateX25519Identity()

	flip := func(off int) []byte {
		b := bytes.Clone(ct)
		b[off] ^= 0x40
		return b
	}
	cases := map[string]struct {
		ct       []byte
		id       age.Identity
		plainLen int // authenticated plaintext before the error
	}{
		"cut in the header":          {ct[:hdrLen/2], id, 0},
		"cut in the nonce":           {ct[:hdrLen+5], id, 0},
		"cut after the nonce":        {ct[:payload], id, 0},
		"cut in the first chunk":     {ct[:payload+100], id, 0},
		"cut after the first chunk":  {ct[:payload+encChunkSize], id, ChunkSize},
		"cut in the last chunk":      {ct[:len(ct)-1], id, 2 * ChunkSize},
		"bit flip in the header MAC": {flip(hdrLen - 10), id, 0},
		"bit flip in the nonce":      {flip(hdrLen + 3), id, 0},
		"bit flip in chunk 1":        {flip(payload + encChunkSize + 9), id, ChunkSize},
		"bit flip in the last tag":   {flip(len(ct) - 1), id, 2 * ChunkSize},
		"chunks swapped":             {cat(ct[:payload], chunk(1), chunk(0), chunk(2)), id, 0},
		"a chunk repeated":           {cat(ct[:payload], chunk(0), chunk(0), chunk(1), chunk(2)), id, ChunkSize},
		"last chunk dropped":         {cat(ct[:payload], chunk(0), chunk(1)), id, 2 * ChunkSize},
		"a byte appended":            {cat(ct, []byte{0}), id, 2 * ChunkSize},
		"the last chunk twice":       {cat(ct, chunk(2)), id, 2 * ChunkSize},
		"another identity":           {ct, other, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			for _, sizes := range readSizes {
				got, err := both(t, c.ct, c.id, sizes)
				if err == nil {
					t.Fatal("decrypted without an error")
				}
				if len(got) != c.plainLen {
					t.Fatalf("%d bytes before the error, want %d", len(got), c.plainLen)
				}
			}
		})
	}
	_, err = NewReader(bytes.NewReader(ct), other)
	var nomatch *age.NoIdentityMatchError
	if !errors.As(err, &nomatch) {
		t.Fatalf("another identity: %v, want an *age.NoIdentityMatchError", err)
	}
}

// TestLastChunkRules seals payloads by hand under a file's real key to reach
// the cases age's encrypter never writes: a full-length chunk marked last, an
// empty last chunk after others, a chunk marked last before the end.
func TestLastChunkRules(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	ct := seal(t, id, []byte("x"))
	hdrLen := headerLen(t, ct)
	fileKey, err := age.DecryptHeader(ct[:hdrLen], id)
	if err != nil {
		t.Fatal(err)
	}
	nonce := ct[hdrLen : hdrLen+nonceSize]
	key, _ := hkdf.Key(sha256.New, fileKey, nonce, "payload", chacha20poly1305.KeySize)
	aead, _ := chacha20poly1305.New(key)
	sealChunk := func(i int, last bool, plain []byte) []byte {
		var n [chacha20poly1305.NonceSize]byte
		for k := 0; k < i; k++ {
			incCounter(&n)
		}
		if last {
			n[len(n)-1] = 1
		}
		return aead.Seal(nil, n[:], plain, nil)
	}
	full := bytes.Repeat([]byte{7}, ChunkSize)
	head := ct[:hdrLen+nonceSize]
	cases := map[string]struct {
		payload  [][]byte
		ok       bool
		plainLen int
	}{
		"full-length last chunk":     {[][]byte{sealChunk(0, false, full), sealChunk(1, true, full)}, true, 2 * ChunkSize},
		"empty only chunk":           {[][]byte{sealChunk(0, true, nil)}, true, 0},
		"empty last chunk after one": {[][]byte{sealChunk(0, false, full), sealChunk(1, true, nil)}, false, ChunkSize},
		"last flag then more":        {[][]byte{sealChunk(0, true, full), sealChunk(1, true, []byte("y"))}, false, ChunkSize},
		"short chunk not marked":     {[][]byte{sealChunk(0, false, []byte("y"))}, false, 0},
		"no last chunk":              {[][]byte{sealChunk(0, false, full)}, false, ChunkSize},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			file := bytes.Join(append([][]byte{head}, c.payload...), nil)
			for _, sizes := range readSizes {
				got, err := both(t, file, id, sizes)
				if (err == nil) != c.ok || len(got) != c.plainLen {
					t.Fatalf("%d bytes, %v; want %d bytes, ok=%v", len(got), err, c.plainLen, c.ok)
				}
			}
		})
	}
}

// FuzzMatchesAge damages a small age file at a fuzzed place and compares the
// two decrypters on it, read in fuzzed sizes.
func FuzzMatchesAge(f *testing.F) {
	id, _ := age.GenerateX25519Identity()
	plain := make([]byte, 2*ChunkSize+300)
	rand.Read(plain)
	ct := seal(f, id, plain)
	f.Add(uint32(0), byte(0), uint32(0), uint16(512))
	f.Add(uint32(len(ct)-1), byte(1), uint32(0), uint16(ChunkSize-1))
	f.Add(uint32(len(ct)/2), byte(0x80), uint32(len(ct)-5), uint16(1))
	f.Add(uint32(100), byte(0), uint32(3), uint16(0xffff))
	f.Fuzz(func(t *testing.T, off uint32, xor byte, cut uint32, size uint16) {
		b := bytes.Clone(ct)
		b[int(off)%len(b)] ^= xor
		if cut != 0 {
			b = b[:int(cut)%(len(b)+1)]
		}
		n := max(int(size), 1)
		both(t, b, id, []int{n, 4 * n})
	})
}

// headerLen is the length of ct's header, before the payload's nonce.
func headerLen(t testing.TB, ct []byte) int {
	t.Helper()
	hdr, err := age.ExtractHeader(bytes.NewReader(ct))
	if err != nil {
		t.Fatal(err)
	}
	return len(hdr)
}

func BenchmarkDecrypt(b *testing.B) {
	id, _ := age.GenerateX25519Identity()
	plain := make([]byte, 64<<20)
	rand.Read(plain)
	ct := seal(b, id, plain)
	buf := make([]byte, 1<<20)
	for _, impl := range []struct {
		name string
		open func() (io.Reader, error)
	}{
		{"age", func() (io.Reader, error) { return age.Decrypt(bytes.NewReader(ct), id) }},
		{"agestream", func() (io.Reader, error) { return NewReader(bytes.NewReader(ct), id) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := impl.open()
				if err != nil {
					b.Fatal(err)
				}
				for {
					_, err := io.ReadFull(r, buf)
					if err == io.EOF || err == io.ErrUnexpectedEOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
