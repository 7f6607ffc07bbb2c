package cli

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
)

// entry is one tar entry of a hand-made test archive.
type entry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) entry {
	return entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}, body}
}

func dir(name string) entry {
	return entry{tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}, ""}
}

func link(typ byte, name, target string) entry {
	return entry{tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777}, ""}
}

func bf(name, body string) BundleFile {
	h := sha256.Sum256([]byte(body))
	return BundleFile{Path: name, Size: int64(len(body)), SHA256: hex.EncodeToString(h[:])}
}

// manifestEntry is the bundle manifest entry listing files.
func manifestEntry(files ...BundleFile) entry {
	if files == nil {
		files = []BundleFile{}
	}
	data, _ := json.Marshal(BundleManifest{Version: 1, Files: files})
	return file(BundleManifestName, string(data))
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// nulName makes an archive with an entry whose PAX path holds a NUL byte, which
// archive/tar will not write on its own.
func nulName(t testing.TB, rest ...entry) []byte {
	e := file("a@@@b", "x")
	e.hdr.Format = tar.FormatPAX
	e.hdr.PAXRecords = map[string]string{"path": "a@@@b"}
	data := makeTar(t, append([]entry{e}, rest...)...)
	return bytes.Replace(data, []byte("path=a@@@b"), []byte("path=a\x00@@b"), 1)
}

// sparseTar makes an archive whose first entry is a GNU sparse file in PAX form
// (format 1.0): one stored byte at the end of realsize bytes, the rest a hole that
// archive/tar fills with zeros. archive/tar will not write GNU.sparse records, so
// they are written under another name of the same length and renamed.
func sparseTar(t testing.TB, name string, realsize int64, rest ...entry) []byte {
	body := fmt.Sprintf("1\n%d\n1\n", realsize-1)
	body += strings.Repeat("\x00", 512-len(body)) + "X"
	e := entry{tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"XNU.sparse.major": "1", "XNU.sparse.minor": "0", "XNU.sparse.name": name,
			"XNU.sparse.realsize": strconv.FormatInt(realsize, 10)}}, body}
	return bytes.ReplaceAll(makeTar(t, append([]entry{e}, rest...)...), []byte("XNU.sparse."), []byte("GNU.sparse."))
}

// badTars are archives that a receiver must refuse, leaving nothing behind.
func badTars(t testing.TB) map[string][]byte {
	ok := file("ok.txt", "fine")
	okm := bf("ok.txt", "fine")
	return map[string][]byte{
		"dotdot":             makeTar(t, ok, file("../x", "evil"), manifestEntry(okm, bf("../x", "evil"))),
		"dotdot inside":      makeTar(t, ok, file("a/../../x", "evil"), manifestEntry(okm)),
		"absolute":           makeTar(t, ok, file("/etc/x", "evil"), manifestEntry(okm, bf("/etc/x", "evil"))),
		"symlink escaping":   makeTar(t, ok, link(tar.TypeSymlink, "esc", "../../etc"), file("esc/passwd", "evil"), manifestEntry(okm)),
		"symlink inside":     makeTar(t, ok, link(tar.TypeSymlink, "l", "ok.txt"), manifestEntry(okm)),
		"hardlink":           makeTar(t, ok, link(tar.TypeLink, "hl", "ok.txt"), manifestEntry(okm)),
		"hardlink escaping":  makeTar(t, ok, link(tar.TypeLink, "hl", "/etc/passwd"), manifestEntry(okm)),
		"duplicate":          makeTar(t, ok, file("ok.txt", "fine"), manifestEntry(okm)),
		"duplicate case":     makeTar(t, ok, file("OK.txt", "fine"), manifestEntry(okm, bf("OK.txt", "fine"))),
		"file over dir":      makeTar(t, dir("d/"), file("d", "x"), manifestEntry(bf("d", "x"))),
		"sparse":             sparseTar(t, "big.bin", 64<<20, ok, manifestEntry(okm)),
		"fifo":               makeTar(t, ok, entry{tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o644}, ""}, manifestEntry(okm)),
		"char device":        makeTar(t, ok, entry{tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3}, ""}, manifestEntry(okm)),
		"nul in name":        nulName(t, ok, manifestEntry(okm)),
		"backslash":          makeTar(t, ok, file(`..\x`, "x"), manifestEntry(okm)),
		"dot element":        makeTar(t, ok, file("./x", "x"), manifestEntry(okm, bf("./x", "x"))),
		"reserved name":      makeTar(t, ok, file(".lexgate/other", "x"), manifestEntry(okm)),
		"missing file":       makeTar(t, ok, manifestEntry(okm, bf("gone.txt", "x"))),
		"extra file":         makeTar(t, ok, file("extra.txt", "x"), manifestEntry(okm)),
		"mismatched hash":    makeTar(t, file("ok.txt", "FINE"), manifestEntry(okm)),
		"mismatched size":    makeTar(t, file("ok.txt", "fine!"), manifestEntry(okm)),
		"no manifest":        makeTar(t, ok),
		"entry after":        makeTar(t, ok, manifestEntry(okm), file("late.txt", "x")),
		"two manifests":      makeTar(t, ok, manifestEntry(okm), manifestEntry(okm)),
		"bad manifest":       makeTar(t, ok, file(BundleManifestName, "{")),
		"manifest traversal": makeTar(t, ok, manifestEntry(okm, bf("../x", "evil"))),
		"not a tar":          []byte(strings.Repeat("not a tar archive ", 64)),
	}
}

func TestUntarRefusesBadBundles(t *testing.T) {
	id, r, _ := testIdentity(t, false)
	for name, data := range badTars(t) {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "dest")
			if err := os.Mkdir(dest, 0o700); err != nil {
				t.Fatal(err)
			}
			spool := encryptBytes(t, data, r)
			// The signed manifest's counts agree with the archive, so only the
			// archive's own defects can be the reason for a refusal.
			m := api.Manifest{FileCount: 1, PlaintextSize: 4}
			files, err := unpack(spool, dest, []age.Identity{id}, m)
			if err == nil {
				t.Fatalf("accepted, delivered %q", files)
			}
			t.Logf("refused: %v", err)
			assertOnly(t, dest)
			assertOnly(t, parent, "dest")
		})
	}
}

func TestUntarAcceptsGoodBundle(t *testing.T) {
	id, r, _ := testIdentity(t, false)
	data := makeTar(t, dir("case/"), file("case/a.txt", "A"), file("b.txt", "BB"),
		manifestEntry(bf("case/a.txt", "A"), bf("b.txt", "BB")))
	dest := t.TempDir()
	files, err := unpack(encryptBytes(t, data, r), dest, []age.Identity{id}, api.Manifest{FileCount: 2, PlaintextSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, " ") != "case/a.txt b.txt" {
		t.Errorf("delivered %q", files)
	}
	assertOnly(t, dest, "b.txt", "case")
	if fi, _ := os.Stat(filepath.Join(dest, "b.txt")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestUnpackChecksSignedCounts(t *testing.T) {
	id, r, _ := testIdentity(t, false)
	data := makeTar(t, file("a.txt", "A"), manifestEntry(bf("a.txt", "A")))
	dest := t.TempDir()
	_, err := unpack(encryptBytes(t, data, r), dest, []age.Identity{id}, api.Manifest{FileCount: 2, PlaintextSize: 1})
	if !errors.Is(err, ErrUnsafeBundle) {
		t.Fatalf("err = %v, want ErrUnsafeBundle", err)
	}
	assertOnly(t, dest)
}

func TestDeliverNeverOverwrites(t *testing.T) {
	id, r, _ := testIdentity(t, false)
	data := makeTar(t, file("a.txt", "new"), file("z/b.txt", "new"),
		manifestEntry(bf("a.txt", "new"), bf("z/b.txt", "new")))
	dest := t.TempDir()
	writeTree(t, dest, map[string]string{"z/b.txt": "old"})
	_, err := unpack(encryptBytes(t, data, r), dest, []age.Identity{id}, api.Manifest{FileCount: 2, PlaintextSize: 6})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("err = %v", err)
	}
	assertOnly(t, dest, "z")
	if b, _ := os.ReadFile(filepath.Join(dest, "z", "b.txt")); string(b) != "old" {
		t.Errorf("z/b.txt = %q, overwritten", b)
	}
}

func TestDeliverRollsBack(t *testing.T) {
	// A destination path that exists as a file where the bundle needs a directory
	// fails after other files may have been placed: they must be taken back.
	id, r, _ := testIdentity(t, false)
	data := makeTar(t, file("a.txt", "A"), file("b/c.txt", "C"),
		manifestEntry(bf("a.txt", "A"), bf("b/c.txt", "C")))
	dest := t.TempDir()
	writeTree(t, dest, map[string]string{"b": "a file, not a directory"})
	_, err := unpack(encryptBytes(t, data, r), dest, []age.Identity{id}, api.Manifest{FileCount: 2, PlaintextSize: 2})
	if err == nil {
		t.Fatal("delivered over a file in the way")
	}
	assertOnly(t, dest, "b")
}

// encryptBytes writes data encrypted to r into a temporary file.
func encryptBytes(t testing.TB, data []byte, r age.Recipient) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "in.age")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzExtractBundle feeds arbitrary archives to the extractor: it must never write
// outside its staging directory nor panic, never write more bytes of files than the
// archive holds (no sparse-file expansion), and whatever it accepts must match its
// manifest.
func FuzzExtractBundle(f *testing.F) {
	for _, data := range badTars(f) {
		f.Add(data)
	}
	f.Add(makeTar(f, dir("case/"), file("case/a.txt", "A"), manifestEntry(bf("case/a.txt", "A"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		staging := filepath.Join(parent, "staging")
		if err := os.Mkdir(staging, 0o700); err != nil {
			t.Fatal(err)
		}
		ex, err := extractBundle(bytes.NewReader(data), staging)
		assertOnly(t, parent, "staging")
		if n := treeSize(t, staging); n > int64(len(data)) {
			t.Fatalf("an archive of %d bytes wrote %d bytes of files", len(data), n)
		}
		if err != nil {
			return
		}
		if len(ex.files) != len(ex.manifest.Files) {
			t.Fatalf("accepted %d files for a manifest of %d", len(ex.files), len(ex.manifest.Files))
		}
		for _, f := range ex.files {
			if err := checkEntryName(f.Path); err != nil {
				t.Fatalf("accepted bad name: %v", err)
			}
		}
	})
}

// treeSize is the total size of the regular files under dir.
func treeSize(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// FuzzParseBundleManifest checks that whatever the parser accepts is safe to use.
func FuzzParseBundleManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"files":[{"path":"a/b.txt","size":3,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`))
	f.Add([]byte(`{"version":1,"files":[{"path":"../x","size":3,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseBundleManifest(data)
		if err != nil {
			return
		}
		for _, f := range m.Files {
			if checkEntryName(f.Path) != nil || f.Size < 0 || !isHexSHA256(f.SHA256) {
				t.Fatalf("accepted %+v", f)
			}
		}
	})
}
