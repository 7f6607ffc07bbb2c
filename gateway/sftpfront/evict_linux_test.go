package sftpfront_test

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// evict drops the files from the page cache, as after an upload (the spool is
// written with O_DIRECT), so that a benchmark's get reads them from the disk.
func evict(tb testing.TB, files []string) {
	tb.Helper()
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
		if err != nil {
			tb.Fatalf("evict %s from the page cache: %v", p, err)
		}
	}
}
