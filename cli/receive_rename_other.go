//go:build !linux

package cli

import "os"

// renameNoReplace is renameat2(2) with RENAME_NOREPLACE on Linux; elsewhere
// every entry is placed one file at a time.
func renameNoReplace(_, _ *os.File, _ string) error { return errRenameUnsupported }
