// Package sftpfront is lexgate's SSH + SFTP front, for senders that cannot run
// lex: document management systems, e-billing exports and scanners that push
// files from a cron job with a stock client (`sftp -b`, lftp, WinSCP, rclone).
// It is a thin adapter: every action goes through the transfer core (login
// decision, upload, listing, download, acknowledgement), which asks the policy
// and writes the audit log.
//
// # The tree an account sees
//
// Nothing of the host's file system is visible. pkg/sftp's request server runs
// with lexgate's own handlers:
//
//	/outbox/<recipient>/<name>   write a file here: it becomes a transfer to <recipient>
//	/inbox/<id>-<name>.age       deliveries addressed to the account: age ciphertext, read-only;
//	                             removing one acknowledges it
//
// A recipient is a configured alias (Config.Recipients) or a SPIFFE ID written as
// trust-domain+path+elements. An upload is decided ("send") when the file is
// opened; a refusal is SSH_FX_PERMISSION_DENIED with the reasons in the audit
// log. The stream is age-encrypted to the recipient's registered keys as it
// arrives (transfer.Service.BeginIngest), and becomes a transfer only when the
// client closes the file successfully; a write error or an upload over the size
// limit leaves no transfer and no staged file. Links, renames (but WinSCP's
// <name>.filepart → <name>), directories, setstat of owners, writes to /inbox,
// names with control characters or over 255 bytes and paths outside the tree
// are refused and audited.
//
// # Stock clients
//
// rclone, paramiko, curl (libssh2), OpenSSH and lftp work on their default
// settings, and so does WinSCP's upload sequence (docs/sftp.md lists what is
// tested). For
// Config.UploadWindow the front keeps what they expect of a file server
// (uploads.go): a finished upload stays listed with its size and the time a
// client sets on it, an identical re-upload is acknowledged and not delivered
// again, and an upload whose connection dropped is kept and resumed by an open
// without truncation (reput). Finished uploads are kept in the core's store,
// so a restart keeps them and replicas on one store share them; interrupted
// ones stay on the replica that holds their staged file. The algorithms offered (algorithms.go) are
// AES-GCM and AES-CTR with SHA-2 MACs; SHA-1 and CBC only for the accounts
// Config.LegacyAlgorithms names, until its date. A failed negotiation is
// logged at WARN with what the client offered and the setting that would
// admit it. The front's metrics (metrics.go) go on Deps.Metrics.
//
// # Identity and login
//
// An account is an SSH user name with authorized public keys and/or SSH user
// CAs, and the SPIFFE ID it acts as. Passwords are never offered. Once the key is
// proven the policy decides "sftp_login"; a refusal rejects every channel.
// Authentication attempts are limited per connection and per source address,
// the handshake and idle time are bounded, and so are sessions per account.
//
// # Trust
//
// The legacy client sends plaintext over SSH; the gateway holds it only in memory
// while encrypting it, and signs the manifest with its own SVID on the sender's
// behalf (api.Manifest.SealedBy), which lex receive shows as such.
//
// /inbox serves ciphertext, except for an account with Account.CustodialInbox:
// the gateway then holds an age identity for it (sealed at rest with a key
// derived from the host key, its recipient registered as the account's key),
// verifies each delivery's signed manifest and serves it decrypted. The gateway
// can read everything sent to such an account; it is off by default.
//
// # Speed
//
// A download is served the way OpenSSH's own sftp-server serves it: the front
// answers the limits@openssh.com extension (which pkg/sftp v1 lacks; see
// channel.go), so OpenSSH's client reads (and writes) 255 KiB per request
// instead of 32 KiB,
// the channel answers those reads itself, reading each into its reply once
// (fastread.go: pkg/sftp would copy every byte twice), and the SSH packets
// reach the socket in few, large writes (batch.go). The stored ciphertext is read once, with O_DIRECT, by the core's
// integrity check, which answers the reads from what it hashed
// (transfer.Delivery; the rare read that falls behind its 8 MiB window is read
// with O_DIRECT too). BenchmarkOpenSSHFrontGet reports the gateway's CPU time
// per GiB served; lexbench -sftp-front compares the front with sshd, with the
// served file in the same page-cache state on both sides (cold: the front
// reads from the disk as sshd then does; warm: sshd reads from memory, which
// the front never does), and reports both servers' CPU time. An upload is
// read from the connection through a 256 KiB buffer (batch.go), and its writes
// are queued, in order, to one goroutine that encrypts, hashes and writes them
// (writer.go).
package sftpfront
