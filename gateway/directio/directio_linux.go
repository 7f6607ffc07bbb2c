package directio

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Align is the alignment O_DIRECT needs of offsets, lengths and buffers: a
// writer given buffers aligned to it, at offsets that are multiples of it, writes
// them straight to the disk.
const Align = 4096

// Writer writes bytes with O_DIRECT where it can: whole aligned blocks from
// aligned buffers go straight to the disk, bypassing the page cache, and
// anything else (an unaligned head or tail) goes through the page cache as usual.
// Durability still comes from an fsync that follows; O_DIRECT only spares a
// second copy of every byte in memory and the writeback of it all at fsync time,
// which on some virtual disks is several times slower than direct writes. Where
// O_DIRECT is not supported (tmpfs, other systems) it writes buffered.
type Writer struct {
	f      *os.File
	off    int64 // file offset of the next byte
	direct bool  // O_DIRECT is set on f
	failed bool  // O_DIRECT is not supported here: write buffered only
}

// NewWriter returns a Writer appending to f, whose file offset is off.
func NewWriter(f *os.File, off int64) *Writer { return &Writer{f: f, off: off} }

// Write writes p at the writer's offset, directly where p's address, length and
// the offset allow.
func (w *Writer) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		var k int
		if !w.failed && w.off%Align == 0 && len(p) >= Align && uintptr(unsafe.Pointer(&p[0]))%Align == 0 {
			k = len(p) &^ (Align - 1)
			w.setDirect(true)
		} else {
			k = len(p)
			if rem := int(w.off % Align); !w.failed && rem != 0 {
				k = min(k, Align-rem) // buffered up to the next boundary
			} else if !w.failed && len(p) >= Align {
				k = min(k, len(p)&^(Align-1))
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
func (w *Writer) setDirect(on bool) {
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
		// the write stops with that error.
		w.failed = true
		return
	}
	w.direct = on
}
