// Package cli is the lex command: a paralegal's client for a lexgate gateway. It
// bundles files and directories into a deterministic tar with a per-file SHA-256
// manifest, encrypts the bundle end to end with age to the recipients' registered
// keys, signs a transfer manifest with the sender's X.509-SVID and uploads the
// ciphertext in resumable chunks; on the other side it verifies the signature before
// downloading a byte, checks the ciphertext against the signed manifest, decrypts,
// and unpacks safely, delivering all the files or none.
//
// # Commands
//
//	lex keygen [--x25519] [--force]         make an age identity (post-quantum by default)
//	lex register                            register its recipients with the gateway
//	lex keys SPIFFE_ID                      show someone's registered recipients
//	lex send --to ID --matter M PATH…       encrypt, sign, upload (resumable)
//	lex inbox                               transfers waiting for you
//	lex receive ID -o DIR [--ack]           verify, download, decrypt, unpack
//	lex ack ID                              acknowledge receipt
//
// Every command takes -h; the printing ones take --json. [Main] is the entry point
// of cmd/lex; its exit codes are [ExitOK], [ExitError], [ExitUsage] and
// [ExitRefused] (the policy said no).
//
// # Transport
//
// [Dial] connects with mutual TLS 1.3 built by go-spiffe: the client presents its
// SVID and accepts only the configured gateway ID. By default it tries HTTP/3 over
// QUIC for two seconds and falls back to HTTP/2 over TCP, which corporate firewalls
// that drop UDP still let through; "lex -v" says which was used and why.
//
// # Configuration
//
// See [Config] and "lex help config".
//
// # Compatibility
//
// The command line, the exit codes and the --json documents are the stable
// interface; fields may be added to the JSON, none removed. The Go API of this
// package exists for cmd/lex and its tests.
package cli
