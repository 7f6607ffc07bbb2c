package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrKeyExposed is wrapped by [CheckPrivateKeyFile]'s error for a private key
// file its group or others can read or write.
var ErrKeyExposed = errors.New("private key file readable by group or others")

// CheckPrivateKeyFile reports an error when the file at path exists and its
// group or others have any permission on it: a private key (an SVID key, an
// audit signing key, an SSH host key, an age identity) that another account on
// the host can read is no longer private. what names the setting the file comes
// from ("identity.svid_key"), so the error says where to look and the chmod that
// fixes it. A file that does not exist is not an error here: the caller that
// reads it reports that.
func CheckPrivateKeyFile(what, path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s is mode %04o, %w: run chmod 600 %s", what, path, perm, ErrKeyExposed, path)
	}
	return nil
}
