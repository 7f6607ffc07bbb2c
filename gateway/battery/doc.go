// Package battery is lexgate's standing attack-and-fault battery: one test per
// row of issue 6, grouped by class, each driving a whole real gateway
// (gatewaytest.Start) over the network and asserting both the refusal (a clear
// error or status) and the absence of side effects (no transfer, no spool file,
// no audit entry where none is due).
//
// The package has no code outside its tests. Classes and their files:
//
//   - authn_test.go: handshakes refused (unknown trust domain, expired and
//     not-yet-valid SVIDs, two URI SANs, none, a CA as leaf, no certificate,
//     SPIFFE ID tricks), over QUIC and TCP.
//   - identity_test.go: identity comes from the certificate alone; headers
//     naming another identity are ignored.
//   - authz_test.go: uploads only by the sender and never after completion,
//     revocation after upload, recipients bound to the manifest hash, no QUIC 0-RTT.
//   - integrity_test.go: a bit flipped in stored ciphertext is caught before
//     delivery and the transfer quarantined; a substituted file is refused by
//     lex receive.
//   - format_test.go: malformed age headers refused at upload (package agecheck).
//   - policy_test.go: network builtins refused at load; a slow or undefined
//     evaluation denies.
//   - exhaustion_test.go: size limits, stalled handshakes (TLS, QUIC, SSH),
//     stream, header and pre-auth connection caps.
//
// Run it alone with: go test -race ./gateway/battery/
package battery
