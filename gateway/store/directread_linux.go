package store

import (
	"os"
	"strconv"
	"syscall"
)

// openDirect opens f's file again with O_DIRECT, through /proc/self/fd so that
// it is the same file even if its name changed; nil where that fails.
func openDirect(f *os.File) *os.File {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var d *os.File
	rc.Control(func(fd uintptr) {
		d, err = os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(fd)), os.O_RDONLY|syscall.O_DIRECT, 0)
	})
	if err != nil {
		return nil
	}
	return d
}
