// Package battery is lexgate's standing attack-and-fault battery: one case per
// row of issue 6, grouped by class, each driving a whole real gateway
// (gatewaytest.Start) over the network and asserting both the refusal (a clear
// error or status) and the absence of side effects (no transfer, no spool file,
// no audit entry where none is due). Every test also takes the process's
// goroutines and heap in use once its gateway has started and, when its rows
// are done and the clients' connections are closed, fails unless both are back
// to that baseline (within 4 goroutines and 16 MiB: memoryNow and back in
// helpers_test.go).
//
// The package has no code outside its tests. The rows, by file and test:
//
// authn_test.go, TestAuthN — the handshake is refused over QUIC and over TCP,
// no handler runs, the store and the audit log do not change, for: no client
// certificate; an unknown trust domain; an expired and a not-yet-valid SVID;
// two URI SANs; none; a CA certificate as leaf; a revoked identity; and SPIFFE
// ID tricks signed by a trusted CA: "/../", "%2e%2e", "//", a trailing "/", an
// uppercase scheme (refused by identity's byte-for-byte canonical check) or
// trust domain, userinfo, a port, a query, a fragment.
//
// identity_test.go, TestIdentityFromCertificateOnly — headers that name
// another identity (X-Spiffe-Id, X-Forwarded-Client-Cert, Forwarded, ...) are
// ignored: inbox, downloads and key registration act as the certificate's.
//
// authz_test.go — TestAuthZUploadOnlyBySender: there are no upload tokens;
// another identity's PATCH is a 404 during and after the upload, the sender's
// PATCH after completion is refused or changes nothing. TestAuthZRevokedAfterUpload:
// a recipient revoked after the upload cannot download. TestAuthZRecipientsBoundToManifest:
// an edited recipient list fails the signature; a recipient added in the store
// sees and gets nothing, and nobody gets a transfer that disagrees with its
// signed manifest. TestAuthZNo0RTT: a resumed QUIC session never has 0-RTT.
//
// integrity_test.go — TestIntegrityBitFlipQuarantined: a bit flipped in the
// spool is caught before delivery (422), the transfer quarantined and audited.
// TestIntegrityGatewaySubstitution: a file the gateway substituted (with its
// metadata rewritten to match) or a forged signature is refused by lex receive.
//
// format_test.go, TestFormat — refused at upload with nothing kept: a truncated
// age header, non-canonical base64, thousands of stanzas, a very long line, a
// scrypt stanza, a file that is not age at all (package agecheck).
//
// policy_test.go, TestPolicy — http.send, net.lookup_ip_addr and opa.runtime
// refused at load (the gateway then refuses everything); undefined, failing,
// malformed and over-deadline decisions deny; each refusal audited once.
//
// exhaustion_test.go and sessions_test.go — TestExhaustionSize: over
// transfer.max_ciphertext_size at creation, over the declared size at upload.
// TestExhaustionStalledHandshakes: silent TCP, half a ClientHello, a silent
// QUIC client mid-handshake, a silent SSH client, each cut at its configured
// deadline. TestExhaustionStreamCaps: HTTP/2 and QUIC stream caps.
// TestExhaustionPreAuthPerAddress(QUIC): limits.max_preauth_per_addr.
// TestExhaustionConnectionFlood: 200 silent connections hold at most the cap;
// goroutines and heap are back to their baseline afterwards.
// TestExhaustionHeaderBlock: limits.max_header_bytes on both transports.
// TestExhaustionSessionsPerAccount: sftp.max_sessions_per_account.
//
// ranges_test.go, TestRangesParallelUpload — ranges of one upload sent out of
// order, at once, duplicated and overlapping assemble to the identical
// ciphertext; a range before the age header is in (409 at 0), past the
// declared size or longer than it says (413) is refused with nothing kept; a
// range with wrong bytes quarantines the transfer at completion (422).
//
// Run it alone with: go test -race ./gateway/battery/
package battery
