package cli

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"strings"
)

// A streamed send declares the exact ciphertext size before it encrypts a byte
// (the gateway decides on it and enforces it), so lex computes what writeBundle
// and age will produce from the sizes alone.

// tarBlock is the tar format's block size: headers and file data are padded to it.
const tarBlock = 512

// bundleSize is the exact length in bytes of the bundle writeBundle makes of in,
// computed without reading the files: the tar headers exactly as the tar writer
// encodes them (PAX records included), each file's data padded to a block, the
// bundle manifest (whose length does not depend on the hashes' values), and the
// two zero blocks that end the archive.
func bundleSize(in *bundleInputs) (int64, error) {
	var total int64
	header := func(h *tar.Header) error {
		cw := &countWriter{}
		if err := tar.NewWriter(cw).WriteHeader(h); err != nil {
			return fmt.Errorf("bundle %s: %w", h.Name, err)
		}
		total += cw.n + padded(h.Size)
		return nil
	}
	m := &BundleManifest{Version: bundleManifestVersion, Files: []BundleFile{}}
	zero := strings.Repeat("0", 64)
	for _, e := range in.entries {
		if e.dir {
			if err := header(dirHeader(e.name)); err != nil {
				return 0, err
			}
			continue
		}
		if err := header(fileHeader(e.name, e.size, archiveMode(e))); err != nil {
			return 0, err
		}
		m.Files = append(m.Files, BundleFile{Path: e.name, Size: e.size, SHA256: zero})
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("bundle manifest: %w", err)
	}
	if err := header(fileHeader(BundleManifestName, int64(len(data)), 0o644)); err != nil {
		return 0, err
	}
	return total + 2*tarBlock, nil
}

// padded is n rounded up to a whole number of tar blocks.
func padded(n int64) int64 { return (n + tarBlock - 1) / tarBlock * tarBlock }

// ageChunk is the plaintext size of one chunk of age's payload stream, and
// ageTag the authentication tag each chunk adds.
const (
	ageChunk = 64 << 10
	ageTag   = 16
)

// agePayloadSize is the size of age's payload (after the header and nonce) for
// plaintext bytes: every 64 KiB chunk gains a 16-byte tag, and an empty
// plaintext is still one (empty) chunk.
func agePayloadSize(plaintext int64) int64 {
	chunks := max(1, (plaintext+ageChunk-1)/ageChunk)
	return plaintext + chunks*ageTag
}
