// Package audit is lexgate's tamper-evident audit trail: an append-only Merkle log
// (RFC 6962 hashing) kept by github.com/transparency-dev/tessera in its POSIX tile
// layout, with checkpoints signed in the C2SP signed-note format by an Ed25519 key
// the gateway keeps (mode 0600).
//
// # Entries
//
// Every policy decision, transfer creation, upload completion, delivery,
// acknowledgement, key registration, SFTP login and admin action is one Event,
// stored as its canonical versioned JSON (Event.Marshal). Events hold identities,
// matter, labels, hashes and the decision with its id and reason codes; never file
// contents or file names.
//
// # On the gateway
//
//	l, err := audit.Open(ctx, audit.Config{Dir: "data/audit"})
//	i, err := l.Append(ctx, audit.Event{Kind: audit.KindAck, Actor: id, Transfer: t})
//	r, err := l.Receipt(ctx, i) // waits for a checkpoint covering i
//
// Append returns once the entry is integrated into the tree on disk; an error means
// the action it records must not be acknowledged. Log.Handler serves the log
// read-only in the tlog-tiles layout, so any tlog client can follow it.
//
// # Anywhere, offline
//
// VerifyReceipt checks a Receipt (entry, index, inclusion proof, signed checkpoint)
// with the log's public key alone. CheckConsistency proves that a log's current
// checkpoint extends one seen before; VerifyLog recomputes the whole tree from the
// entries. The lex CLI uses these through a Fetcher over HTTP. This package imports
// no other lexgate package.
package audit
