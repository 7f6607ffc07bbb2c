package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
	"sync/atomic"

	"github.com/lexgate/lexgate/gateway/directio"
)

// Unpacking many small files. A production of 20,000 files spends its time
// creating them (the file system's inode allocation), not copying bytes, so
// the unpacker:
//
//   - keeps every staging directory it made open as an [os.Root] of its own,
//     so a file is created with one openat(2) in its directory instead of a
//     walk from the staging root, and a directory is made once, not once per
//     file in it;
//   - hands files up to smallFileMax to unpackWorkers goroutines, which
//     create, write, hash and close them while the decryption goes on; a
//     larger file is written in line (writeFile). Two
//     workers, not more: creating a file takes its directory's lock, so
//     creations in one folder (the archive's order) run one at a time
//     anyway, and with four workers a perf profile of lex showed 14% of its
//     CPU spinning on that lock (rwsem_spin_on_owner). Two let one create
//     while the other writes and hashes.
//
// Nothing about the checks changes: names and types are checked in archive
// order before anything is created, each file is hashed as it is written, and
// the whole set is compared with the bundle's manifest once every file is
// closed (extracted.check). The first error stops the extraction.

const (
	// smallFileMax is the largest file buffered and written by a worker.
	smallFileMax = 1 << 20
	// unpackWorkers is how many small files are written at once.
	unpackWorkers = 2
)

// smallFile is one buffered file for a worker to write.
type smallFile struct {
	dir  *dirFile // its directory
	base string   // its name in dir
	perm fs.FileMode
	data *[]byte // pooled; data is its content
	out  *BundleFile
}

// smallBufs recycles the workers' buffers.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// stagedDir is a directory the unpacker made, open.
type stagedDir struct {
	root *os.Root
	file *dirFile
}

// unpacker creates the directories and files of a bundle in a staging root.
type unpacker struct {
	dirs map[string]stagedDir // directories made (and the root, "."), open

	jobs    chan smallFile
	wg      sync.WaitGroup
	pending sync.WaitGroup // jobs handed out and not yet done
	mu      sync.Mutex
	err     error // the first worker error
}

func newUnpacker(root *os.Root) (*unpacker, error) {
	f, err := openDirFile(root)
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	u := &unpacker{dirs: map[string]stagedDir{".": {root: root, file: f}}, jobs: make(chan smallFile, unpackWorkers)}
	for range unpackWorkers {
		u.wg.Go(u.work)
	}
	return u, nil
}

// failed is the first error of a worker, if any.
func (u *unpacker) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *unpacker) fail(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
	}
}

// close waits for the workers, closes the directories and returns the first
// error of a worker.
func (u *unpacker) close() error {
	close(u.jobs)
	u.wg.Wait()
	for name, d := range u.dirs {
		d.file.close()
		if name != "." {
			d.root.Close()
		}
	}
	return u.failed()
}

// flush waits until every file handed to the workers is written.
func (u *unpacker) flush() { u.pending.Wait() }

// reopen opens the partly written file name again for writing, cut back to
// its first written bytes, at their end.
func (u *unpacker) reopen(name string, written int64) (*os.File, error) {
	dir, err := u.mkdir(path.Dir(name))
	if err != nil {
		return nil, err
	}
	f, err := dir.root.OpenFile(path.Base(name), os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("staged file %q: %w", name, err)
	}
	if err := f.Truncate(written); err != nil {
		f.Close()
		return nil, fmt.Errorf("staged file %q: %w", name, err)
	}
	if _, err := f.Seek(written, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("staged file %q: %w", name, err)
	}
	return f, nil
}

// mkdir makes directory name (and its parents) in the staging root, once, and
// returns it open.
func (u *unpacker) mkdir(name string) (stagedDir, error) {
	if d, ok := u.dirs[name]; ok {
		return d, nil
	}
	parent, err := u.mkdir(path.Dir(name))
	if err != nil {
		return stagedDir{}, err
	}
	base := path.Base(name)
	if err := parent.root.Mkdir(base, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return stagedDir{}, unsafef("directory %q: %v", name, err)
	}
	r, err := parent.root.OpenRoot(base)
	if err != nil {
		return stagedDir{}, unsafef("directory %q: %v", name, err)
	}
	f, err := openDirFile(r)
	if err != nil {
		r.Close()
		return stagedDir{}, unsafef("directory %q: %v", name, err)
	}
	d := stagedDir{root: r, file: f}
	u.dirs[name] = d
	return d, nil
}

// file creates regular file name, which must not exist, with the entry's
// content from r, and returns where its path, size and hash will be once the
// unpacker is closed. A large file's writer calls progress (if not nil) as it
// reads the file (see landed).
func (u *unpacker) file(r io.Reader, name string, size int64, perm fs.FileMode, progress landed) (*BundleFile, error) {
	if err := u.failed(); err != nil {
		return nil, err
	}
	dir, err := u.mkdir(path.Dir(name))
	if err != nil {
		return nil, err
	}
	base := path.Base(name)
	out := &BundleFile{Path: name}
	if size > smallFileMax {
		f, err := dir.root.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return nil, unsafef("file %q: %v", name, err)
		}
		n, sum, err := writeFile(f, r, size, progress)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("writing %q: %w", name, err)
		}
		out.Size, out.SHA256 = n, sum
		return out, nil
	}
	bp := smallBufs.Get().(*[]byte)
	if int64(cap(*bp)) < size {
		*bp = make([]byte, size)
	}
	b := (*bp)[:size]
	// The entry holds exactly size bytes: archive/tar reports a short one.
	if _, err := io.ReadFull(r, b); err != nil {
		smallBufs.Put(bp)
		return nil, fmt.Errorf("writing %q: %w", name, err)
	}
	*bp = b
	u.pending.Add(1)
	u.jobs <- smallFile{dir: dir.file, base: base, perm: perm, data: bp, out: out}
	return out, nil
}

// work writes the small files handed to it.
func (u *unpacker) work() {
	for j := range u.jobs {
		if u.failed() == nil {
			if err := j.write(); err != nil {
				u.fail(err)
			}
		}
		*j.data = (*j.data)[:0]
		smallBufs.Put(j.data)
		u.pending.Done()
	}
}

// write creates the file and writes and hashes its content.
func (j smallFile) write() error {
	data := *j.data
	if created, err := j.dir.writeNew(j.base, j.perm, data); !created {
		return unsafef("file %q: %v", j.out.Path, err)
	} else if err != nil {
		return fmt.Errorf("writing %q: %w", j.out.Path, err)
	}
	sum := sha256.Sum256(data)
	j.out.Size, j.out.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	return nil
}

// writeFile copies r, a received file of about size bytes, into f, and
// returns the bytes written and their hex SHA-256: writeLarge from
// asyncHashMin (calling progress, if not nil, as its bytes are read), else
// writeReceived.
func writeFile(f *os.File, r io.Reader, size int64, progress landed) (int64, string, error) {
	if size >= asyncHashMin {
		return writeLarge(f, r, 0, sha256.New().(hashState), progress)
	}
	return writeReceived(f, r, size)
}

// landed is called by a large file's writer with the bytes of the file read so
// far (from its start: a resumed file's first bytes included) and sync, which
// returns once all of them are on the disk, with the first write error if any.
// A checkpoint inside the file is taken after sync: the next run trusts the
// bytes it records.
type landed func(read int64, sync func() error)

// largeBufs is how many copy buffers a large file's bytes take turns in: one
// being filled, up to three being written and hashed.
const largeBufs = 4

// writeLarge copies r into f from offset off (f's position; h holds the
// file's first off bytes) directly to the disk (O_DIRECT where the file
// system has it). Reading r (decryption), writing and hashing run side by
// side from the same aligned buffers, without a copy: each buffer read is
// handed to a writer and a hasher goroutine and comes back when both are done
// with it. On this VM's virtual disk an O_DIRECT write of a MiB waits about
// 0.6 ms for the device; done in line, that wait stopped the decryption, and
// with it the download, for about 0.6 s a GiB. After each buffer read it calls
// progress, if not nil. It returns the file's size and hex SHA-256.
func writeLarge(f *os.File, r io.Reader, off int64, h hashState, progress landed) (int64, string, error) {
	type buffer struct {
		b     []byte
		users atomic.Int32 // the writer and the hasher, until each is done
	}
	var pooled [largeBufs]*[]byte
	free := make(chan *buffer, largeBufs)
	for i := range pooled {
		pooled[i] = copyBufs.Get().(*[]byte)
		free <- &buffer{b: *pooled[i]}
	}
	release := func(b *buffer) {
		if b.users.Add(-1) == 0 {
			free <- b
		}
	}
	toHash := make(chan *buffer, largeBufs)
	toWrite := make(chan *buffer, largeBufs)
	sum := make(chan []byte, 1)
	go func() {
		for b := range toHash {
			h.Write(b.b)
			release(b)
		}
		sum <- h.Sum(nil)
	}()
	var (
		pending sync.WaitGroup // buffers handed to the writer and not yet written
		written = off          // the writer's, read after pending.Wait
		werr    error          // the writer's first error, likewise
		failed  atomic.Bool    // werr is set
	)
	go func() {
		w := directio.NewWriter(f, off)
		for b := range toWrite {
			if werr == nil {
				k, err := w.Write(b.b)
				written += int64(k)
				if err != nil {
					werr = err
					failed.Store(true)
				}
			}
			release(b)
			pending.Done()
		}
	}()
	flush := func() error {
		pending.Wait()
		return werr
	}
	read := off
	var err error
	for !failed.Load() {
		b := <-free
		n, rerr := io.ReadFull(r, b.b[:cap(b.b)])
		if n > 0 {
			b.b = b.b[:n]
			read += int64(n)
			b.users.Store(2)
			pending.Add(1)
			toHash <- b
			toWrite <- b
			if progress != nil {
				progress(read, flush)
			}
		} else {
			free <- b
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	close(toWrite)
	close(toHash)
	if werr := flush(); err == nil {
		err = werr
	}
	digest := <-sum // the hasher is done with every buffer
	for i := range pooled {
		copyBufs.Put(pooled[i])
	}
	return written, hex.EncodeToString(digest), err
}
