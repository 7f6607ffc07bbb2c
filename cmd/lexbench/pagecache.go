package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The page cache decides a get's speed on the server side: a file served from
// memory (warm) costs sshd no disk reads at all, one served from the disk
// (cold) costs reads and, in this VM, far more CPU per byte. sshd writes the
// put's file through the page cache, so it is warm right after the put, unless
// the kernel has dropped part of it since: the project's VM runs DAMON
// proactive reclaim (kdamond: pageout of unmapped page-cache regions idle for
// 60 s, up to 128 MiB/s), which took 15% of a 1 GiB file in 10 minutes and
// 0.8% within 16 s of reading it through, with 19 GB free and no other
// reclaim. The front writes its spool with O_DIRECT and reads it with
// O_DIRECT, so it reads from the disk in either case. lexbench therefore puts the served file of both servers in the
// same, stated state before every get (cacheState) and records how much of it
// was resident just before the get started.

// Cache states a get is measured in (-get-cache).
const (
	cacheCold = "cold" // fsynced and dropped from the page cache (posix_fadvise DONTNEED)
	cacheWarm = "warm" // read through once, so that all of it is in the page cache
	cacheAsIs = "as-is"
	cacheBoth = "both" // cold, then warm
)

// getCaches is the list of states each run's gets are measured in, in order,
// for the -get-cache value v: one state, both, or a comma-separated list of
// distinct states ("warm,cold" measures the warm get first).
func getCaches(v string) ([]string, error) {
	if v == cacheBoth {
		return []string{cacheCold, cacheWarm}, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		switch {
		case s != cacheCold && s != cacheWarm && s != cacheAsIs:
			return nil, fmt.Errorf("-get-cache %q: want %s, %s, %s, %s or a comma-separated list of them", v, cacheCold, cacheWarm, cacheAsIs, cacheBoth)
		case slices.Contains(out, s):
			return nil, fmt.Errorf("-get-cache %q: %s twice", v, s)
		}
		out = append(out, s)
	}
	return out, nil
}

// prepareCache puts the files in state and returns the fraction of their bytes
// resident in the page cache afterwards (mincore), as checked just before the
// get.
func prepareCache(state string, files []string) (float64, error) {
	for _, p := range files {
		var err error
		switch state {
		case cacheCold:
			err = evictFile(p)
		case cacheWarm:
			err = warmFile(p)
		}
		if err != nil {
			return 0, err
		}
	}
	return residentFraction(files)
}

// evictFile writes back p's dirty pages and drops all of its pages from the
// page cache, as after an upload that was stored a while ago.
func evictFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("fdatasync %s: %w", p, err)
	}
	// Twice: pages under writeback when the first call came are not dropped.
	for range 2 {
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			return fmt.Errorf("evict %s from the page cache: %w", p, err)
		}
	}
	return nil
}

// warmFile reads p through the page cache once, so that all of it is resident.
func warmFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil {
		return fmt.Errorf("read %s into the page cache: %w", p, err)
	}
	return nil
}

// residentFraction is the share of the files' pages in the page cache, from
// mincore(2) over a read-only mapping of each (which reads nothing).
func residentFraction(files []string) (float64, error) {
	var in, all int64
	for _, p := range files {
		r, n, err := residentPages(p)
		if err != nil {
			return 0, err
		}
		in, all = in+r, all+n
	}
	if all == 0 {
		return 0, nil
	}
	return float64(in) / float64(all), nil
}

// residentPages counts p's pages in the page cache, and all its pages.
func residentPages(p string) (resident, pages int64, err error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, 0, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, 0, fmt.Errorf("mmap %s: %w", p, err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (fi.Size()+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, 0, fmt.Errorf("mincore %s: %w", p, errno)
	}
	for _, v := range vec {
		resident += int64(v & 1)
	}
	return resident, int64(len(vec)), nil
}

// dirtyMiB is the system's dirty and under-writeback page cache in MiB
// (/proc/meminfo Dirty + Writeback): writeback going on during a get competes
// with it for the disk.
func dirtyMiB() float64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	var kb int64
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "Dirty" && name != "Writeback") {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		kb += n
	}
	return float64(kb) / 1024
}
