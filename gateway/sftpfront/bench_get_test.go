package sftpfront_test

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/sftpfront"
)

// BenchmarkOpenSSHFrontGet times the stock OpenSSH sftp client downloading one
// delivery from /inbox, put through the front once beforehand (outside the
// timer). Besides get-MB/s it reports gw-cpu-s/GiB: the CPU time of this test
// process (the whole in-process gateway; the sftp and ssh client processes are
// children and not counted) per GiB served. LEXGATE_BENCH_SIZE sets the file
// size in MiB (default 256: larger than the 64 MiB verified before serving, so
// the delivery is checked while it is served). Each get starts with the stored
// ciphertext out of the page cache, as after an upload (the spool is written
// with O_DIRECT). LEXGATE_BENCH_GET_CPUPROFILE names a file for a CPU profile
// of the gets alone.
//
//	go test ./gateway/sftpfront -run '^$' -bench OpenSSHFrontGet -benchtime 3x
func BenchmarkOpenSSHFrontGet(b *testing.B) {
	size := benchSize()
	f := start(b)
	dir := b.TempDir()
	src, _ := randomFile(b, dir, "bench.bin", size<<20)
	if out, err := f.sftp(b, "put "+src+" /outbox/self/bench.bin\n"); err != nil {
		b.Fatalf("put: %v\n%s", err, out)
	}
	os.Remove(src)
	ts := inbox(b, f.dms)
	t := ts[len(ts)-1]
	name := sftpfront.InboxName(t)
	dst := filepath.Join(dir, "got.age")
	if p := os.Getenv("LEXGATE_BENCH_GET_CPUPROFILE"); p != "" {
		pf, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatalf("%v (do not combine with -cpuprofile)", err)
		}
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	b.SetBytes(t.CiphertextSize)
	b.ResetTimer()
	var wall, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		evict(b, f.env.SpoolFiles())
		b.StartTimer()
		cpu0, t0 := processCPU(b), time.Now()
		if out, err := f.sftp(b, "get /inbox/"+name+" "+dst+"\n"); err != nil {
			b.Fatalf("get: %v\n%s", err, out)
		}
		wall += time.Since(t0)
		cpu += processCPU(b) - cpu0
		if fi, err := os.Stat(dst); err != nil || fi.Size() != t.CiphertextSize {
			b.Fatalf("got %v bytes (%v), want the whole ciphertext of %d", fi, err, t.CiphertextSize)
		}
	}
	gib := float64(t.CiphertextSize) * float64(b.N) / (1 << 30)
	b.ReportMetric(float64(t.CiphertextSize)*float64(b.N)/1e6/wall.Seconds(), "get-MB/s")
	b.ReportMetric(cpu.Seconds()/gib, "gw-cpu-s/GiB")
}

// processCPU is the user+system CPU time this process has used so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
