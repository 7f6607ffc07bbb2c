package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
)

// writeTree creates files (name → content; a name ending in "/" is a directory)
// under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sampleTree makes a small case folder and a loose file, and returns their paths.
func sampleTree(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"exhibits/a.txt":            "exhibit A\n",
		"exhibits/b/deposition.txt": strings.Repeat("Q. And then? A. Nothing.\n", 500),
		"exhibits/empty/":           "",
		"exhibits/zero.bin":         "",
		"cover-letter.txt":          "Dear counsel,\n",
	})
	return []string{filepath.Join(dir, "exhibits"), filepath.Join(dir, "cover-letter.txt")}
}

func bundleBytes(t *testing.T, paths []string) ([]byte, *BundleManifest) {
	t.Helper()
	in, err := collectInputs(paths)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m, err := writeBundle(context.Background(), &buf, in)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), m
}

func TestBundleDeterministic(t *testing.T) {
	paths := sampleTree(t)
	b1, m1 := bundleBytes(t, paths)
	b2, _ := bundleBytes(t, paths)
	if !bytes.Equal(b1, b2) {
		t.Fatal("two bundles of the same input differ")
	}
	// The order of the PATH arguments and the files' times do not matter.
	b3, _ := bundleBytes(t, []string{paths[1], paths[0]})
	if !bytes.Equal(b1, b3) {
		t.Fatal("bundle depends on argument order")
	}
	wantFiles := []string{"cover-letter.txt", "exhibits/a.txt", "exhibits/b/deposition.txt", "exhibits/zero.bin"}
	var got []string
	for _, f := range m1.Files {
		got = append(got, f.Path)
	}
	if !slices.Equal(got, wantFiles) {
		t.Fatalf("manifest files %q, want %q", got, wantFiles)
	}
	tr := tar.NewReader(bytes.NewReader(b1))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" || !hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: owner %d/%d %q/%q mtime %v, want zeros", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname, hdr.ModTime)
		}
		if hdr.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want USTAR", hdr.Name, hdr.Format)
		}
	}
	if names[len(names)-1] != BundleManifestName {
		t.Errorf("last entry %q, want the manifest", names[len(names)-1])
	}
	if !slices.Contains(names, "exhibits/empty/") {
		t.Errorf("empty directory missing from %q", names)
	}
}

func TestBundleRefusesSymlinksAndDuplicates(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"case/a.txt": "a", "other/case/": ""})
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "case", "link")); err != nil {
		t.Skip("no symlinks:", err)
	}
	if _, err := collectInputs([]string{filepath.Join(dir, "case")}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlink: err = %v", err)
	}
	os.Remove(filepath.Join(dir, "case", "link"))
	_, err := collectInputs([]string{filepath.Join(dir, "case"), filepath.Join(dir, "other", "case")})
	if err == nil || !strings.Contains(err.Error(), "both be named") {
		t.Errorf("duplicate base names: err = %v", err)
	}
	if _, err := collectInputs([]string{filepath.Join(dir, "missing")}); err == nil {
		t.Error("missing input accepted")
	}
}

// testIdentity returns a fresh identity (hybrid or X25519) and its recipient.
func testIdentity(t testing.TB, hybrid bool) (age.Identity, age.Recipient, string) {
	t.Helper()
	content, recipient, err := generateIdentity(!hybrid, epoch)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := parseRecipient(recipient)
	if err != nil {
		t.Fatal(err)
	}
	return ids[0], r, content
}

func TestSendReceiveRoundTrip(t *testing.T) {
	for _, hybrid := range []bool{true, false} {
		name := map[bool]string{true: "hybrid", false: "x25519"}[hybrid]
		t.Run(name, func(t *testing.T) {
			id, r, _ := testIdentity(t, hybrid)
			paths := sampleTree(t)
			in, err := collectInputs(paths)
			if err != nil {
				t.Fatal(err)
			}
			spool := filepath.Join(t.TempDir(), "out.age")
			size, sum, err := encryptToSpool(t.Context(), spool, in, []age.Recipient{r}, nil)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(spool)
			if h := sha256.Sum256(data); int64(len(data)) != size || hex.EncodeToString(h[:]) != sum {
				t.Fatal("size or SHA-256 reported by encryptToSpool is wrong")
			}
			if fi, _ := os.Stat(spool); fi.Mode().Perm() != 0o600 {
				t.Errorf("spool mode %v, want 0600", fi.Mode().Perm())
			}
			dest := filepath.Join(t.TempDir(), "inbox")
			files, err := unpack(spool, dest, []age.Identity{id}, manifestOf(in))
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != 4 {
				t.Errorf("delivered %q", files)
			}
			got, _ := os.ReadFile(filepath.Join(dest, "exhibits", "b", "deposition.txt"))
			want, _ := os.ReadFile(filepath.Join(paths[0], "b", "deposition.txt"))
			if !bytes.Equal(got, want) {
				t.Error("deposition.txt differs after the round trip")
			}
			if fi, err := os.Stat(filepath.Join(dest, "exhibits", "empty")); err != nil || !fi.IsDir() {
				t.Errorf("empty directory not delivered: %v", err)
			}
			assertOnly(t, dest, "cover-letter.txt", "exhibits")
			// Receiving the same bundle again into the same place must refuse and
			// change nothing.
			if _, err := unpack(spool, dest, []age.Identity{id}, manifestOf(in)); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("second delivery: err = %v", err)
			}
			assertOnly(t, dest, "cover-letter.txt", "exhibits")
			// Another identity cannot decrypt.
			other, _, _ := testIdentity(t, hybrid)
			if _, err := unpack(spool, t.TempDir(), []age.Identity{other}, manifestOf(in)); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
				t.Errorf("wrong identity: err = %v", err)
			}
		})
	}
}

// manifestOf is the part of a signed manifest that unpack checks.
func manifestOf(in *bundleInputs) (m api.Manifest) {
	m.FileCount, m.PlaintextSize = in.files, in.bytes
	return m
}

// assertOnly checks that dir holds exactly names (top level).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestParseBundleManifest(t *testing.T) {
	good := `{"version":1,"files":[{"path":"a/b.txt","size":3,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`
	if _, err := parseBundleManifest([]byte(good)); err != nil {
		t.Fatalf("good manifest: %v", err)
	}
	for name, bad := range map[string]string{
		"version":   `{"version":2,"files":[]}`,
		"unknown":   `{"version":1,"files":[],"extra":1}`,
		"dotdot":    `{"version":1,"files":[{"path":"../x","size":1,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`,
		"abs":       `{"version":1,"files":[{"path":"/x","size":1,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`,
		"hash":      `{"version":1,"files":[{"path":"x","size":1,"sha256":"AB"}]}`,
		"negative":  `{"version":1,"files":[{"path":"x","size":-1,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`,
		"duplicate": `{"version":1,"files":[{"path":"x","size":1,"sha256":"` + strings.Repeat("ab", 32) + `"},{"path":"X","size":1,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`,
		"trailing":  `{"version":1,"files":[]} {}`,
		"notjson":   `tar`,
	} {
		if _, err := parseBundleManifest([]byte(bad)); err == nil {
			t.Errorf("%s: accepted %s", name, bad)
		}
	}
	var m BundleManifest
	if err := json.Unmarshal([]byte(good), &m); err != nil || m.Files[0].Size != 3 {
		t.Fatal(err)
	}
}
