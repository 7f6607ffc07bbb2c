package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/lexgate/lexgate/gateway/api"
)

// TestUnpackManyFiles unpacks a bundle of many files, small ones written by
// the workers, larger ones in line (one past asyncHashMin, hashed beside its
// writing), empty ones and nested folders, and checks every byte delivered:
// the manifest's hashes are checked by unpack itself.
func TestUnpackManyFiles(t *testing.T) {
	id, r, _ := testIdentity(t, false)
	want := map[string]string{}
	var entries []entry
	var listed []BundleFile
	var total int64
	for d := range 3 {
		entries = append(entries, dir(fmt.Sprintf("f%d/", d)))
		for i := range 40 {
			name := fmt.Sprintf("f%d/n%d/file%03d.txt", d, i%4, i)
			body := strings.Repeat(fmt.Sprintf("%s;", name), i*7)
			switch {
			case d == 1 && i == 17:
				body = strings.Repeat("L", smallFileMax+1) // written in line
			case d == 2 && i == 3:
				body = strings.Repeat("0123456789abcdef", (asyncHashMin+copyBufSize+100)/16) // writeLarge, three buffers' worth
			}
			want[name] = body
			entries = append(entries, file(name, body))
			listed = append(listed, bf(name, body))
			total += int64(len(body))
		}
	}
	entries = append(entries, file("top.txt", "T"), manifestEntry(append(listed, bf("top.txt", "T"))...))
	want["top.txt"] = "T"
	dest := t.TempDir()
	files, err := unpack(encryptBytes(t, makeTar(t, entries...), r), dest, []age.Identity{id},
		api.Manifest{FileCount: len(want), PlaintextSize: total + 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Fatalf("delivered %d files, want %d", len(files), len(want))
	}
	for name, body := range want {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if err != nil || string(got) != body {
			t.Fatalf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(body))
		}
	}
	assertOnly(t, dest, "f0", "f1", "f2", "top.txt")
}

// TestDeliverTopLevel covers the two ways of delivering: top-level entries
// absent from the destination move whole, a folder that exists is merged
// into file by file, and a failure after some were moved moves them back.
func TestDeliverTopLevel(t *testing.T) {
	id, r, _ := testIdentity(t, false)
	bundle := []entry{dir("a/"), file("a/x.txt", "X"), file("a/b/y.txt", "Y"), file("m/new.txt", "N"), file("t.txt", "T")}
	listed := []BundleFile{bf("a/x.txt", "X"), bf("a/b/y.txt", "Y"), bf("m/new.txt", "N"), bf("t.txt", "T")}
	for _, tc := range []struct {
		name     string
		existing map[string]string
		entries  []entry
		wantErr  string
		want     []string          // top-level names in the destination after
		contents map[string]string // files to check after
	}{
		{name: "into an empty destination", want: []string{"a", "m", "t.txt"},
			contents: map[string]string{"a/x.txt": "X", "a/b/y.txt": "Y", "m/new.txt": "N", "t.txt": "T"}},
		{name: "merged into an existing folder", existing: map[string]string{"m/old.txt": "O"}, want: []string{"a", "m", "t.txt"},
			contents: map[string]string{"a/b/y.txt": "Y", "m/new.txt": "N", "m/old.txt": "O"}},
		{name: "a top-level file taken", existing: map[string]string{"t.txt": "mine"}, wantErr: "already exists",
			want: []string{"t.txt"}, contents: map[string]string{"t.txt": "mine"}},
		{name: "a file in a merged folder taken", existing: map[string]string{"m/new.txt": "mine"}, wantErr: "already exists",
			want: []string{"m"}, contents: map[string]string{"m/new.txt": "mine"}},
		{name: "a folder's name taken by a file", existing: map[string]string{"a": "mine"}, wantErr: "not a directory",
			want: []string{"a"}, contents: map[string]string{"a": "mine"}},
		{name: "failure after moving", existing: map[string]string{"m/q": "mine"}, wantErr: "not a directory",
			entries: []entry{dir("m/q/")}, want: []string{"m"}, contents: map[string]string{"m/q": "mine"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			writeTree(t, dest, tc.existing)
			entries := append(append(append([]entry{}, bundle...), tc.entries...), manifestEntry(listed...))
			_, err := unpack(encryptBytes(t, makeTar(t, entries...), r), dest, []age.Identity{id},
				api.Manifest{FileCount: 4, PlaintextSize: 4})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			assertOnly(t, dest, tc.want...)
			for name, body := range tc.contents {
				if got, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(got) != body {
					t.Errorf("%s = %q, %v; want %q", name, got, err, body)
				}
			}
		})
	}
}

// TestUnpackLargeFileMismatch pins that a file hashed beside its writing
// (writeLarge) is still checked: one byte differing from the manifest's hash
// leaves nothing at the destination.
func TestUnpackLargeFileMismatch(t *testing.T) {
	id, r, _ := testIdentity(t, false)
	body := strings.Repeat("x", asyncHashMin+12345)
	listed := bf("big.bin", body)
	data := makeTar(t, file("big.bin", body[:len(body)-1]+"y"), manifestEntry(listed))
	dest := t.TempDir()
	_, err := unpack(encryptBytes(t, data, r), dest, []age.Identity{id}, api.Manifest{FileCount: 1, PlaintextSize: int64(len(body))})
	if err == nil || !strings.Contains(err.Error(), "does not match its SHA-256") {
		t.Fatalf("err = %v, want a hash mismatch", err)
	}
	assertOnly(t, dest)
}
