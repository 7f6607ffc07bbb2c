package api

// Who checks a download against the signed manifest.
//
// The gateway re-hashes a stored ciphertext at every delivery from byte 0, so
// that a bit flipped on its disk, or a file replaced behind its store, is
// caught and the transfer quarantined even when the recipient is a stock
// client that checks nothing (an SFTP get, curl). A recipient that hashes the
// whole ciphertext itself and compares it with the signed manifest before it
// keeps a byte (lex receive does) says so with HeaderIntegrity; the gateway
// then serves without hashing, and the recipient reports a mismatch with a
// POST to PathTransfer + id + PathIntegrityReport. The gateway answers the
// report by hashing its stored copy: a copy that differs from the manifest is
// quarantined and audited exactly as if the gateway had found it while
// serving (a 422 with CodeHashMismatch); an intact one is an IntegrityVerdict
// saying so.

// HeaderIntegrity on a download request names who checks the ciphertext:
// IntegrityRecipient, or absent for the gateway.
const HeaderIntegrity = "Lexgate-Integrity"

// IntegrityRecipient is the value of HeaderIntegrity for a recipient that
// checks the whole ciphertext against the signed manifest itself and reports a
// mismatch.
const IntegrityRecipient = "recipient"

// PathIntegrityReport follows PathTransfer + id: a recipient's report that the
// ciphertext it downloaded did not match the signed manifest (POST, body
// IntegrityReport).
const PathIntegrityReport = "/integrity-report"

// IntegrityReport is what a recipient found: the size and SHA-256 of the
// ciphertext it received. The gateway does not trust it; it checks its own copy.
type IntegrityReport struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// IntegrityVerdict answers an IntegrityReport whose transfer's stored copy is
// intact: the bytes changed after they left the gateway.
type IntegrityVerdict struct {
	// Stored is "intact".
	Stored string `json:"stored"`
	// Message says what that means for the recipient.
	Message string `json:"message"`
}
