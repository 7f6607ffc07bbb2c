package sftpfront_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// BenchmarkOpenSSHFront times the stock OpenSSH sftp client putting a file
// through the SFTP front (encrypted on ingest, sealed, stored) and getting the
// resulting delivery back from /inbox. LEXGATE_BENCH_SIZE sets the file size in
// MiB (default 256). The put and get MB/s are reported as separate metrics.
//
//	go test ./gateway/sftpfront -run '^$' -bench OpenSSHFront -benchtime 1x
func BenchmarkOpenSSHFront(b *testing.B) {
	size := benchSize()
	f := start(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "bench.bin")
	randomFile(b, dir, "bench.bin", size<<20)
	b.SetBytes(int64(size) << 20)
	var put, get time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		if out, err := f.sftp(b, "put "+src+" /outbox/self/bench.bin\n"); err != nil {
			b.Fatalf("put: %v\n%s", err, out)
		}
		put += time.Since(t0)
		ts := inbox(b, f.dms)
		name := sftpfront.InboxName(ts[len(ts)-1])
		t0 = time.Now()
		if out, err := f.sftp(b, "get /inbox/"+name+" "+filepath.Join(dir, "got.age")+"\nrm /inbox/"+name+"\n"); err != nil {
			b.Fatalf("get: %v\n%s", err, out)
		}
		get += time.Since(t0)
	}
	mb := float64(int64(size)<<20) / 1e6 * float64(b.N)
	b.ReportMetric(mb/put.Seconds(), "put-MB/s")
	b.ReportMetric(mb/get.Seconds(), "get-MB/s")
}

// benchSize is LEXGATE_BENCH_SIZE in MiB, 256 by default.
func benchSize() int {
	if v, err := strconv.Atoi(os.Getenv("LEXGATE_BENCH_SIZE")); err == nil && v > 0 {
		return v
	}
	return 256
}
