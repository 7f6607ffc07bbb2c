//go:build unix

package cli

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// dirFile is an open staging directory in which the unpacker's workers create
// small files with openat(2) directly: os.Root.OpenFile would also register
// each new file with the runtime's poller and set and reset its non-blocking
// flag, five more system calls for a file that is written once and closed.
type dirFile struct {
	f  *os.File // kept open, and alive, for fd
	fd int
}

// openDirFile opens the directory d is rooted at.
func openDirFile(d *os.Root) (*dirFile, error) {
	f, err := d.Open(".")
	if err != nil {
		return nil, err
	}
	return &dirFile{f: f, fd: int(f.Fd())}, nil
}

func (d *dirFile) close() { d.f.Close() }

// writeNew creates base in the directory, which must not hold it (not even as
// a symbolic link), with permissions perm, and writes data into it. created
// tells an error writing from one creating.
func (d *dirFile) writeNew(base string, perm fs.FileMode, data []byte) (created bool, err error) {
	fd, err := unix.Openat(d.fd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return false, &os.PathError{Op: "openat", Path: base, Err: err}
	}
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return true, &os.PathError{Op: "write", Path: base, Err: err}
		}
		data = data[n:]
	}
	if err := unix.Close(fd); err != nil {
		return true, &os.PathError{Op: "close", Path: base, Err: err}
	}
	return true, nil
}
