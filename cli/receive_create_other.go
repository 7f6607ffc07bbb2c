//go:build !unix

package cli

import (
	"io/fs"
	"os"
)

// dirFile is an open staging directory in which the unpacker's workers create
// small files.
type dirFile struct{ root *os.Root }

func openDirFile(d *os.Root) (*dirFile, error) { return &dirFile{root: d}, nil }

func (d *dirFile) close() {}

// writeNew creates base in the directory, which must not hold it, with
// permissions perm, and writes data into it. created tells an error writing
// from one creating.
func (d *dirFile) writeNew(base string, perm fs.FileMode, data []byte) (created bool, err error) {
	f, err := d.root.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return false, err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return true, err
}
