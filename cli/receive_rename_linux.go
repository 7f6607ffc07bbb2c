package cli

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace moves name from directory from to directory to, failing with
// an error wrapping fs.ErrExist if to already holds that name: renameat2(2)
// with RENAME_NOREPLACE, so nothing is ever overwritten, even by a name made
// there meanwhile. A file system without the flag gives errRenameUnsupported.
func renameNoReplace(from *os.File, to *os.File, name string) error {
	err := unix.Renameat2(int(from.Fd()), name, int(to.Fd()), name, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.ENOTSUP):
		return errRenameUnsupported
	}
	return &os.LinkError{Op: "renameat2", Old: name, New: name, Err: err}
}
