// Package store keeps what the lexgate gateway holds between a sender's
// upload and a recipient's download: transfer metadata and registered age
// keys in SQLite, and the ciphertext itself in a spool directory. The
// gateway only ever holds ciphertext; the store never sees a plaintext byte
// or a private key.
//
// # Opening a store
//
// [Open] takes a [Config] naming a data directory and creates, if needed:
//
//	Dir/lexgate.db      metadata (SQLite, WAL mode), mode 0600
//	Dir/spool/          ciphertext, mode 0700
//	Dir/spool/<id>.part an upload in progress, mode 0600
//	Dir/spool/<id>.age  complete, hash-checked ciphertext, mode 0600
//
// The schema is migrated forward automatically (the SQLite user_version
// pragma records the version, see [SchemaVersion]); a database written by a
// newer version is refused. A [Store] is safe for concurrent use by many
// goroutines but not by several processes: one gateway owns a directory.
// [Store.Close] releases it.
//
// # The life of a transfer
//
//  1. [Store.CreateTransfer] records who sends what to whom, with the
//     declared ciphertext size and SHA-256, in [StateUploading] at offset 0.
//     The pair (Sender, ManifestHash) is unique, so a client that retries a
//     send gets [ErrExists] and finds its transfer with
//     [Store.TransferByManifest].
//  2. [Store.WriteAt] appends ciphertext in chunks at the durable offset.
//     Each call streams its chunk to disk through a fixed 1 MiB buffer,
//     fsyncs once, and commits the new offset together with the running
//     SHA-256 state, so resuming never rehashes. A chunk at the wrong
//     offset gets an [*OffsetError] with the offset to resume from; a chunk
//     that breaks off part way keeps the bytes received.
//     A parallel upload sends ranges instead, with [Store.WriteRange], in
//     any order once the first bytes are in: each range is written at its
//     offset outside the transfer's lock, fsynced, then recorded; the
//     offset (the contiguous prefix) and its SHA-256 advance as ranges join
//     it, and [Store.UploadProgress] reports the prefix and the ranges
//     beyond it.
//  3. When the offset reaches the declared size the hash is checked. On a
//     match the file is renamed to <id>.age and the transfer is
//     [StateReady]; otherwise its bytes are deleted, it is
//     [StateQuarantined] for good and WriteAt returns [ErrHashMismatch].
//  4. Recipients list their [Store.Inbox], read the ciphertext with
//     [Store.Open] (ready transfers only) and acknowledge with [Store.Ack],
//     which drops the transfer from their inbox.
//  5. [Store.DeleteTransfer] removes metadata and ciphertext, for example
//     when retention ends.
//
// Keys are simpler: [Store.PutKeys] replaces the age recipients a SPIFFE ID
// registered, and [Store.Keys] returns them with the registration time.
//
// # Ciphertext on S3
//
// With [Config.Ciphertext] "s3" the ciphertext lives in an S3-compatible
// bucket ([S3Config]) that every replica reaches, the metadata in the
// configured driver. The life of a transfer is the same: an upload is one
// multipart upload whose writes, cut at part boundaries, become parts or
// piece objects before their offset or range is recorded; the object is
// completed only when the last byte is in (or at [Store.Seal]) and read
// back for the SHA-256 check before the transfer is ready; [Store.Open]
// returns a [Blob] read by ranged GETs; deletion removes the object, its
// pieces and its multipart upload. A server that cannot be reached is
// [ErrUnavailable]: nothing of the failed step was recorded, and the same
// request succeeds once it is back. docs/scale-out.md describes the layout.
//
// # Errors
//
// Every error starts with "store: ". Conditions a caller acts on are
// sentinels to test with [errors.Is]: [ErrNotFound], [ErrExists],
// [ErrOffset] (always an [*OffsetError]), [ErrTooLarge], [ErrHashMismatch],
// [ErrNotComplete], [ErrInvalid] and [ErrUnavailable]. Anything else is an
// internal failure.
//
// # Durability and crashes
//
// Bytes are fsynced before the offset that covers them is committed, and
// the database runs with synchronous=FULL, so a recorded offset always
// names bytes on disk; so does a recorded range of a parallel upload. After
// a crash a .part file may be longer than its recorded offset; the next
// WriteAt cuts it back first, unless ranges beyond the offset are recorded,
// which it keeps. Renames are made
// durable by syncing the spool directory, and Open reconciles the spool
// with the metadata: files of unknown, deleted or quarantined transfers
// are removed, and an upload caught between rename and commit is put back
// to resume. If the spool lost bytes the metadata counted (a .part file
// shorter than its offset), the upload restarts from 0 rather than stalls.
// A partial upload is never deliverable.
//
// # Compatibility
//
// The Go API follows the module's version. The on-disk format only moves
// forward through migrations; a store written by one release opens with
// every later one.
package store
