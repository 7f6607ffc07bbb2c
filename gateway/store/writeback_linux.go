package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackEvery is how many bytes are written before the kernel is asked to start
// writing them to disk. Without it a large upload sits dirty in the page cache
// until the final fsync, which then stalls for the whole upload's worth of disk
// writes; with it the disk works while the network does, and fsync finds little left.
const writebackEvery = 16 << 20

// writeback is an io.Writer over a spool file that starts asynchronous writeback
// (sync_file_range SYNC_FILE_RANGE_WRITE) of every writebackEvery bytes. It is
// a hint: durability still comes from fsync.
type writeback struct {
	f            *os.File
	start, dirty int64
}

func newWriteback(f *os.File, off int64) *writeback { return &writeback{f: f, start: off} }

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.dirty += int64(n)
	if w.dirty >= writebackEvery {
		_ = unix.SyncFileRange(int(w.f.Fd()), w.start, w.dirty, unix.SYNC_FILE_RANGE_WRITE)
		w.start += w.dirty
		w.dirty = 0
	}
	return n, err
}
