//go:build !linux

package sftpfront_test

import "testing"

// evict does nothing here: the benchmark's gets may read from the page cache.
func evict(testing.TB, []string) {}
