package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Safe extraction. A received bundle is untrusted until every file checks out against
// its manifest, so it is unpacked into a fresh staging directory inside the
// destination through an [os.Root] (no path can leave it), checked, and only then
// moved into place with links that never overwrite. Refused outright: absolute names,
// ".." or "." elements, backslashes, NUL bytes, symbolic and hard links, devices,
// FIFOs and any other non-regular entry, sparse files, names given twice (compared without case, so
// that a case-insensitive file system cannot merge two of them), anything after the
// manifest, and a bundle whose files differ in any way from its manifest.

// ErrUnsafeBundle is wrapped by every refusal of a received bundle's content.
var ErrUnsafeBundle = errors.New("unsafe bundle")

func unsafef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsafeBundle}, args...)...)
}

// extracted is what extractBundle unpacked into the staging directory.
type extracted struct {
	manifest *BundleManifest
	files    []BundleFile // as read, with the hashes computed while writing
	dirs     []string     // directory entries, in archive order
}

// checkEntryName accepts only the names lex send writes: relative, slash-separated,
// no empty, "." or ".." elements, no backslash or NUL, and outside .lexgate/.
func checkEntryName(name string) error {
	switch {
	case name == "" || name == ".":
		return unsafef("empty entry name")
	case strings.ContainsRune(name, 0):
		return unsafef("entry name %q contains NUL", name)
	case strings.HasPrefix(name, "/"):
		return unsafef("absolute entry name %q", name)
	case strings.ContainsRune(name, '\\'):
		return unsafef("entry name %q contains a backslash", name)
	case !fs.ValidPath(name):
		return unsafef("entry name %q has an empty, . or .. element", name)
	case name == ".lexgate" || strings.HasPrefix(name, ".lexgate/"):
		return unsafef("entry name %q is reserved", name)
	}
	return nil
}

// extractBundle reads a bundle from r and writes its files into the directory
// staging, which must be empty. It checks names and types as it goes and the files
// against the manifest at the end; on error the caller removes staging.
func extractBundle(r io.Reader, staging string) (*extracted, error) {
	return resumeBundle(r, staging, nil, nil)
}

// resumeBundle is extractBundle from a checkpoint: with rs set, r is the
// plaintext from rs.pos on and staging holds what rs lists. With ck set, it
// takes checkpoints as it goes.
func resumeBundle(r io.Reader, staging string, rs *resumeState, ck *checkpointer) (*extracted, error) {
	root, err := os.OpenRoot(staging)
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	defer root.Close()
	u, err := newUnpacker(root)
	if err != nil {
		return nil, err
	}
	er := &entryReader{cr: &tarPosition{r: r}, u: u, ck: ck, ex: &extracted{}, seen: map[string]bool{}}
	if rs != nil {
		er.cr.n = rs.pos
		er.ex.dirs = append(er.ex.dirs, rs.dirs...)
		for _, d := range rs.dirs {
			er.seen[strings.ToLower(d)] = true
		}
		for _, f := range rs.files {
			er.files = append(er.files, &f)
			er.seen[strings.ToLower(f.Path)] = true
		}
	}
	ex, err := er.read(rs)
	if err != nil {
		return nil, err
	}
	if ex.manifest == nil {
		return nil, unsafef("no %s: not a lex bundle", BundleManifestName)
	}
	if err := ex.check(); err != nil {
		return nil, err
	}
	return ex, nil
}

// tarPosition counts the bytes read through it: the tar reader's position
// in the plaintext (archive/tar reads no further than it needs).
type tarPosition struct {
	r io.Reader
	n int64
}

func (c *tarPosition) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// entryReader unpacks the entries of a bundle.
type entryReader struct {
	cr    *tarPosition
	u     *unpacker
	ck    *checkpointer
	ex    *extracted
	files []*BundleFile // filled in by u's workers
	seen  map[string]bool
}

// read unpacks the entries (after finishing rs's partial file, if any) up to
// the end of the archive, and closes the unpacker: every file is written and
// hashed when it returns.
func (er *entryReader) read(rs *resumeState) (*extracted, error) {
	err := func() error {
		if rs != nil && rs.partial != nil {
			if err := er.finishPartial(rs); err != nil {
				return err
			}
		}
		tr := tar.NewReader(er.cr)
		boundary := er.cr.n // where the next header starts
		for {
			if er.ex.manifest == nil && er.ck.due(boundary) {
				er.checkpoint(boundary, nil)
			}
			hdr, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return unsafef("reading archive: %v", err)
			}
			if er.ex.manifest != nil {
				return unsafef("entry %q after the manifest", hdr.Name)
			}
			if hdr.Name == BundleManifestName && hdr.Typeflag == tar.TypeReg {
				if er.ex.manifest, err = readBundleManifest(tr, hdr.Size); err != nil {
					return err
				}
				continue
			}
			start := er.cr.n
			f, err := er.ex.extractEntry(er.u, tr, hdr, er.seen, er.progress(hdr, start))
			if err != nil {
				return err
			}
			boundary = start
			if f != nil {
				er.files = append(er.files, f)
				// The next header starts after the file's data and padding.
				boundary = start + padded(hdr.Size)
			}
		}
	}()
	if uerr := er.u.close(); err == nil {
		err = uerr
	}
	if err != nil {
		return nil, err
	}
	ex := er.ex
	ex.files = make([]BundleFile, len(er.files))
	for i, f := range er.files {
		ex.files[i] = *f
	}
	return ex, nil
}

// checkpoint takes a checkpoint at plaintext position pos, once every file
// handed to the workers is written.
func (er *entryReader) checkpoint(pos int64, partial *partialEntry) {
	er.u.flush()
	if er.u.failed() == nil {
		er.ck.take(pos, er.files, er.ex.dirs, partial)
	}
}

// progress returns what a large file's writer calls as it reads the file's
// bytes, to take checkpoints inside the file once the bytes read are on the
// disk; nil without a checkpointer.
func (er *entryReader) progress(hdr *tar.Header, start int64) landed {
	if er.ck == nil || hdr.Typeflag != tar.TypeReg || hdr.Size < asyncHashMin {
		return nil
	}
	return func(read int64, sync func() error) {
		if pos := start + read; read < hdr.Size && er.ck.due(pos) && sync() == nil {
			er.checkpoint(pos, &partialEntry{Name: hdr.Name, Size: hdr.Size, Perm: uint32(entryPerm(hdr)), Written: read})
		}
	}
}

// entryPerm is the permission a regular file is staged with: the owner's
// only, executable if the entry is.
func entryPerm(hdr *tar.Header) fs.FileMode {
	if hdr.Mode&0o111 != 0 {
		return 0o700
	}
	return 0o600
}

// finishPartial writes the rest of the large file a checkpoint was taken in,
// from the plaintext at rs.pos, and skips its padding.
func (er *entryReader) finishPartial(rs *resumeState) error {
	p := rs.partial
	start := rs.pos - p.Written
	hdr := &tar.Header{Name: p.Name, Typeflag: tar.TypeReg, Size: p.Size, Mode: int64(p.Perm)}
	f, err := er.u.reopen(p.Name, p.Written)
	if err != nil {
		return err
	}
	n, sum, err := writeLarge(f, io.LimitReader(er.cr, p.Size-p.Written), p.Written, rs.partialHash, er.progress(hdr, start))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q: %w", p.Name, err)
	}
	if n != p.Size {
		return unsafef("reading archive: %q ends after %d of its %d bytes", p.Name, n, p.Size)
	}
	er.files = append(er.files, &BundleFile{Path: p.Name, Size: n, SHA256: sum})
	er.seen[strings.ToLower(p.Name)] = true
	pad := padded(p.Size) - p.Size
	if _, err := io.CopyN(io.Discard, er.cr, pad); err != nil {
		return unsafef("reading archive: %v", err)
	}
	return nil
}

// extractEntry makes one directory or starts writing one regular file, whose
// path, size and hash it returns (complete once u is closed).
func (ex *extracted) extractEntry(u *unpacker, tr *tar.Reader, hdr *tar.Header, seen map[string]bool, progress landed) (*BundleFile, error) {
	name := hdr.Name
	if hdr.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	if err := checkEntryName(name); err != nil {
		return nil, err
	}
	if isSparse(hdr) {
		return nil, unsafef("entry %q is a sparse file: its few stored bytes would expand to %d bytes of zeros", name, hdr.Size)
	}
	key := strings.ToLower(name)
	if seen[key] {
		return nil, unsafef("entry %q appears twice", name)
	}
	seen[key] = true
	switch hdr.Typeflag {
	case tar.TypeDir:
		if _, err := u.mkdir(name); err != nil {
			return nil, err
		}
		ex.dirs = append(ex.dirs, name)
		return nil, nil
	case tar.TypeReg:
		return u.file(tr, name, hdr.Size, entryPerm(hdr), progress)
	case tar.TypeSymlink:
		return nil, unsafef("entry %q is a symbolic link (to %q)", name, hdr.Linkname)
	case tar.TypeLink:
		return nil, unsafef("entry %q is a hard link (to %q)", name, hdr.Linkname)
	default:
		return nil, unsafef("entry %q has type %q: only files and directories are accepted", name, hdr.Typeflag)
	}
}

// isSparse reports whether hdr is a GNU sparse file in PAX form (typeflag '0' with
// GNU.sparse.* records), which archive/tar expands to its declared size with zeros:
// a few kilobytes of bundle would fill the recipient's disk. lex never writes one.
// (The old GNU sparse typeflag 'S' is refused as a non-regular entry.)
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func readBundleManifest(r io.Reader, size int64) (*BundleManifest, error) {
	if size > maxBundleManifestSize {
		return nil, unsafef("manifest of %d bytes is too large", size)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBundleManifestSize))
	if err != nil {
		return nil, unsafef("reading manifest: %v", err)
	}
	m, err := parseBundleManifest(data)
	if err != nil && !errors.Is(err, ErrUnsafeBundle) {
		return nil, fmt.Errorf("%w: %w", ErrUnsafeBundle, err)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// check compares the unpacked files with the manifest: same set, same sizes, same hashes.
func (ex *extracted) check() error {
	want := make(map[string]BundleFile, len(ex.manifest.Files))
	for _, f := range ex.manifest.Files {
		want[f.Path] = f
	}
	for _, got := range ex.files {
		w, ok := want[got.Path]
		switch {
		case !ok:
			return unsafef("file %q is not in the manifest", got.Path)
		case w.Size != got.Size:
			return unsafef("file %q has %d bytes, the manifest says %d", got.Path, got.Size, w.Size)
		case w.SHA256 != got.SHA256:
			return unsafef("file %q does not match its SHA-256 in the manifest", got.Path)
		}
		delete(want, got.Path)
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for p := range want {
			missing = append(missing, p)
		}
		sort.Strings(missing)
		return unsafef("%d file(s) of the manifest missing from the archive, first %q", len(missing), missing[0])
	}
	return nil
}

// deliver moves the staged files of ex from staging (a directory inside dest) into
// dest: each top-level entry absent from dest by one rename, the files under a
// top-level folder that exists in dest one by one (receive_deliver.go). It never
// overwrites: if any target exists nothing is moved, and a failure half-way
// undoes what was moved. It returns the delivered paths, relative to dest.
func deliver(dest, staging string, ex *extracted) ([]string, error) {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	defer root.Close()
	stagingRel := path.Base(staging)
	plan, err := planDelivery(root, dest, ex)
	if err != nil {
		return nil, err
	}
	for _, f := range plan.rest.files {
		if _, err := root.Lstat(f.Path); err == nil {
			return nil, fmt.Errorf("%s already exists in %s: lex never overwrites; choose another -o directory", f.Path, dest)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checking %s: %w", f.Path, err)
		}
	}
	d := &delivery{root: root}
	defer d.closeDirs()
	left, err := d.moveWhole(stagingRel, plan.whole)
	if err == nil {
		rest := plan.rest
		if len(left) > 0 {
			for _, top := range left {
				plan.merge[top] = true
			}
			rest = ex.under(plan.merge)
		}
		err = d.run(stagingRel, rest)
	}
	if err != nil {
		d.undo()
		d.unmove()
		return nil, err
	}
	placed := make([]string, len(ex.files))
	for i, f := range ex.files {
		placed[i] = f.Path
	}
	return placed, nil
}

// delivery tracks what deliver created, so that it can be undone.
type delivery struct {
	root   *os.Root
	dirs   []string
	placed []string
	// moved are the top-level entries renamed whole from stagingDir to destDir.
	moved               []string
	stagingDir, destDir *os.File
}

func (d *delivery) run(stagingRel string, ex *extracted) error {
	for _, dir := range ex.dirs {
		if err := d.mkdirs(dir); err != nil {
			return err
		}
	}
	for _, f := range ex.files {
		if err := d.mkdirs(path.Dir(f.Path)); err != nil {
			return err
		}
		if err := d.place(path.Join(stagingRel, f.Path), f.Path); err != nil {
			return err
		}
	}
	return nil
}

// mkdirs creates dir and its missing parents in the destination, remembering each.
func (d *delivery) mkdirs(dir string) error {
	if dir == "." {
		return nil
	}
	if err := d.mkdirs(path.Dir(dir)); err != nil {
		return err
	}
	fi, err := d.root.Lstat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s exists in the destination and is not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("checking %s: %w", dir, err)
	}
	if err := d.root.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	d.dirs = append(d.dirs, dir)
	return nil
}

// place moves one staged file to name without overwriting: a hard link fails if name
// exists; where links are not supported it falls back to a checked rename.
func (d *delivery) place(staged, name string) error {
	err := d.root.Link(staged, name)
	switch {
	case err == nil:
		_ = d.root.Remove(staged)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s already exists: lex never overwrites", name)
	default:
		if _, lerr := d.root.Lstat(name); lerr == nil {
			return fmt.Errorf("%s already exists: lex never overwrites", name)
		}
		if err := d.root.Rename(staged, name); err != nil {
			return fmt.Errorf("moving %s into place: %w", name, err)
		}
	}
	d.placed = append(d.placed, name)
	return nil
}

// undo removes what run placed and created, newest first.
func (d *delivery) undo() {
	for i := len(d.placed) - 1; i >= 0; i-- {
		_ = d.root.Remove(d.placed[i])
	}
	for i := len(d.dirs) - 1; i >= 0; i-- {
		_ = d.root.Remove(d.dirs[i])
	}
	d.placed = nil
}
