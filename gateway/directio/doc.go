// Package directio writes large files without filling the page cache: aligned
// blocks go to the disk with O_DIRECT on Linux, anything else through the page
// cache. The gateway's spool and lex's send spool use it, because on some
// virtual disks buffered writes of large files are several times slower (and
// cost far more CPU) than direct ones. It also provides aligned buffers.
package directio

import "unsafe"

// AlignedBuffer returns a zeroed buffer of n bytes whose first byte is aligned
// to Align, so that a Writer can write it directly.
func AlignedBuffer(n int) []byte {
	b := make([]byte, n+Align)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (Align - 1))
	if off != 0 {
		off = Align - off
	}
	return b[off : off+n : off+n]
}
