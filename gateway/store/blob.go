package store

import (
	"fmt"
	"io"
	"os"
)

// Blob is a stored ciphertext opened for reading, as [Store.Open] returns it:
// random access by offset, its size, and Close. A spool directory gives a
// [*FileBlob], a file that [NewBlobReader] reads past the page cache; the S3
// driver gives a blob whose reads are ranged GETs of the sealed object.
type Blob interface {
	io.ReaderAt
	// Size is the ciphertext's size in bytes.
	Size() int64
	Close() error
}

// FileBlob is a ciphertext in the spool directory: the file itself, for
// callers that read it directly (see [NewBlobReader]).
type FileBlob struct {
	f    *os.File
	size int64
}

var (
	_ Blob = (*FileBlob)(nil)
	_ Blob = (*s3Blob)(nil)
)

// NewFileBlob is the blob of an open spool file, for callers that hold one.
func NewFileBlob(f *os.File) (*FileBlob, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &FileBlob{f: f, size: fi.Size()}, nil
}

// ReadAt reads like [os.File.ReadAt].
func (b *FileBlob) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }

// Size is the file's size when it was opened.
func (b *FileBlob) Size() int64 { return b.size }

// Close closes the file.
func (b *FileBlob) Close() error { return b.f.Close() }

// File is the open spool file.
func (b *FileBlob) File() *os.File { return b.f }

// NewBlobStream reads b from its first byte to its last, as an io.Reader.
func NewBlobStream(b Blob) io.Reader { return io.NewSectionReader(b, 0, b.Size()) }
