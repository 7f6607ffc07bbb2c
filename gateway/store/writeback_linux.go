package store

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directAlign is the alignment O_DIRECT needs of offsets, lengths and buffers.
const directAlign = 4096

// writeback writes spool bytes with O_DIRECT where it can: whole aligned blocks
// from aligned buffers go straight to the disk, bypassing the page cache, and
// anything else (an unaligned head or tail) goes through the page cache as usual.
// Durability still comes from the fsync that follows; O_DIRECT only spares the
// gateway a second copy of every upload in memory and the writeback of it all at
// fsync time, which on some virtual disks is several times slower than direct
// writes.
type writeback struct {
	f      *os.File
	off    int64 // file offset of the next byte
	direct bool  // O_DIRECT is set on f
	failed bool  // O_DIRECT is not supported here: write buffered only
}

func newWriteback(f *os.File, off int64) *writeback { return &writeback{f: f, off: off} }

func (w *writeback) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		var k int
		if !w.failed && w.off%directAlign == 0 && len(p) >= directAlign && uintptr(unsafe.Pointer(&p[0]))%directAlign == 0 {
			k = len(p) &^ (directAlign - 1)
			w.setDirect(true)
		} else {
			k = len(p)
			if rem := int(w.off % directAlign); !w.failed && rem != 0 {
				k = min(k, directAlign-rem) // buffered up to the next boundary
			} else if !w.failed && len(p) >= directAlign {
				k = min(k, len(p)&^(directAlign-1))
			}
			w.setDirect(false)
		}
		n, err := w.f.Write(p[:k])
		total += n
		w.off += int64(n)
		if err != nil {
			return total, err
		}
		p = p[k:]
	}
	return total, nil
}

// setDirect turns O_DIRECT on or off on the file when it has to change.
func (w *writeback) setDirect(on bool) {
	if w.failed || w.direct == on {
		return
	}
	fd := int(w.f.Fd())
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags)
	}
	if err != nil {
		// O_DIRECT unsupported (e.g. tmpfs): stay buffered. Had it been set and
		// could not be cleared, the next unaligned write fails with EINVAL and
		// the upload stops with that error, keeping what is durable.
		w.failed = true
		return
	}
	w.direct = on
}
