package cli

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A bundle is the plaintext of a transfer: a deterministic tar archive of the files
// and directories given to "lex send", ending with one extra entry,
// [BundleManifestName], that lists every file with its size and SHA-256.
//
// Deterministic means the same input gives the same bytes: entries are sorted, owner
// and group are 0 with empty names, every time stamp is the Unix epoch, modes are
// 0644/0755 for files (the executable bit is kept) and 0755 for directories, and the
// tar writer picks the plain USTAR format unless a name is too long for it (then PAX).
//
// Only regular files and directories are bundled. Symbolic links, devices, sockets
// and FIFOs in the input are an error: lex never follows a link, so name the
// link's target instead.

// BundleManifestName is the name of the last entry of every bundle.
const BundleManifestName = ".lexgate/manifest.json"

// bundleManifestVersion is the version of BundleManifest this package writes.
const bundleManifestVersion = 1

// maxBundleManifestSize bounds the manifest entry a receiver will read.
const maxBundleManifestSize = 64 << 20

// BundleManifest is the content of [BundleManifestName]: every regular file of the
// bundle, in archive order.
type BundleManifest struct {
	Version int          `json:"version"`
	Files   []BundleFile `json:"files"`
}

// BundleFile is one file of a bundle.
type BundleFile struct {
	Path   string `json:"path"` // slash-separated, relative, as in the archive
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lowercase hex
}

// bundleEntry is one input file or directory found by collectInputs.
type bundleEntry struct {
	abs   string // absolute path on disk
	name  string // archive name, slash-separated, no trailing slash
	dir   bool
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

// bundleInputs is the sorted list of entries to bundle.
type bundleInputs struct {
	entries []bundleEntry
	files   int
	bytes   int64 // total size of the regular files
}

// collectInputs walks paths (files or directories) and returns what a bundle of them
// holds. Entries are named relative to each path's base name, so
// "lex send ~/case/exhibits" makes "exhibits/…".
func collectInputs(paths []string) (*bundleInputs, error) {
	if len(paths) == 0 {
		return nil, errors.New("nothing to send: name at least one file or directory")
	}
	in := &bundleInputs{}
	tops := map[string]string{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		base := filepath.Base(abs)
		if base == string(filepath.Separator) || base == "." || base == ".." {
			return nil, fmt.Errorf("%s: cannot send a file system root; name a directory inside it", p)
		}
		if base == ".lexgate" {
			return nil, fmt.Errorf("%s: the name .lexgate is reserved for the bundle manifest", p)
		}
		if prev, ok := tops[base]; ok {
			return nil, fmt.Errorf("%s and %s would both be named %q in the bundle; rename one or put them in a directory", prev, p, base)
		}
		tops[base] = p
		if err := in.walk(abs, base); err != nil {
			return nil, err
		}
	}
	sort.Slice(in.entries, func(i, j int) bool { return in.entries[i].name < in.entries[j].name })
	return in, nil
}

// walk adds root (named name in the archive) and, for a directory, everything below it.
func (in *bundleInputs) walk(root, name string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		arc := name
		if rel != "." {
			arc = path.Join(name, filepath.ToSlash(rel))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := bundleEntry{abs: p, name: arc, mode: info.Mode(), mtime: info.ModTime()}
		switch {
		case info.Mode().IsDir():
			e.dir = true
		case info.Mode().IsRegular():
			e.size = info.Size()
			in.files++
			in.bytes += e.size
		case info.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link: lex does not follow links, name its target instead", p)
		default:
			return fmt.Errorf("%s is not a regular file or directory (%v)", p, info.Mode().Type())
		}
		if strings.ContainsAny(arc, "\x00\\") {
			return fmt.Errorf("%s: names with NUL or backslash cannot be sent", p)
		}
		in.entries = append(in.entries, e)
		return nil
	})
}

// writeBundle writes the bundle of in to w, a deterministic tar stream, reading each
// file once. It returns the manifest it appended.
func writeBundle(ctx context.Context, w io.Writer, in *bundleInputs) (*BundleManifest, error) {
	tw := tar.NewWriter(w)
	m := &BundleManifest{Version: bundleManifestVersion, Files: []BundleFile{}}
	for _, e := range in.entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if e.dir {
			if err := tw.WriteHeader(dirHeader(e.name)); err != nil {
				return nil, fmt.Errorf("bundle %s: %w", e.name, err)
			}
			continue
		}
		f, err := writeBundleFile(tw, e)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, f)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	if err := tw.WriteHeader(fileHeader(BundleManifestName, int64(len(data)), 0o644)); err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return m, nil
}

// writeBundleFile copies one file into tw, hashing it on the way. A file that
// changed size since it was listed is an error.
func writeBundleFile(tw *tar.Writer, e bundleEntry) (BundleFile, error) {
	f, err := os.Open(e.abs)
	if err != nil {
		return BundleFile{}, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	if err := tw.WriteHeader(fileHeader(e.name, e.size, archiveMode(e))); err != nil {
		return BundleFile{}, fmt.Errorf("bundle %s: %w", e.name, err)
	}
	h := newAsyncHash()
	n, err := io.CopyBuffer(io.MultiWriter(tw, h), io.LimitReader(f, e.size), make([]byte, copyBufSize))
	sum := h.Hex()
	if err != nil {
		return BundleFile{}, fmt.Errorf("bundle %s: %w", e.abs, err)
	}
	if n != e.size {
		return BundleFile{}, fmt.Errorf("bundle %s: file shrank from %d to %d bytes while it was read; send it again when it is stable", e.abs, e.size, n)
	}
	return BundleFile{Path: e.name, Size: e.size, SHA256: sum}, nil
}

// archiveMode is the mode a file gets in the bundle: 0755 if any execute bit is
// set, else 0644.
func archiveMode(e bundleEntry) int64 {
	if e.mode&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

var epoch = time.Unix(0, 0).UTC()

func dirHeader(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch}
}

func fileHeader(name string, size, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: mode, ModTime: epoch}
}

// parseBundleManifest decodes and checks a bundle manifest: known version, unknown
// fields refused, every path valid and named once.
func parseBundleManifest(data []byte) (*BundleManifest, error) {
	var m BundleManifest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("bundle manifest: %w", err)
	}
	if dec.More() {
		return nil, errors.New("bundle manifest: trailing data")
	}
	if m.Version != bundleManifestVersion {
		return nil, fmt.Errorf("bundle manifest: version %d, want %d", m.Version, bundleManifestVersion)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if err := checkEntryName(f.Path); err != nil {
			return nil, fmt.Errorf("bundle manifest: %w", err)
		}
		key := strings.ToLower(f.Path)
		if seen[key] {
			return nil, fmt.Errorf("bundle manifest: %q listed twice", f.Path)
		}
		seen[key] = true
		if f.Size < 0 || !isHexSHA256(f.SHA256) {
			return nil, fmt.Errorf("bundle manifest: %q: bad size or sha256", f.Path)
		}
	}
	return &m, nil
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
