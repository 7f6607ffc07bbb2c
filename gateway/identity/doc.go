// Package identity is the gateway's identity layer: who the gateway is,
// whom it trusts, and who is at the other end of a connection. It is built
// on go-spiffe v2; a party is a [spiffeid.ID] such as
// spiffe://harbor-law.example/paralegal/alice, and a trust domain is an
// organisation with its own CA bundle.
//
// # Sources
//
// [New] builds a [Source] from a [Config], the "identity" section of
// lexgate.yaml. Exactly one source of the gateway's own X.509-SVID is used.
//
// Files are the embedded default, made by "lexgate certs dev": svid_cert and
// svid_key, plus one bundle file per trusted trust domain. New checks that
// the gateway's own SVID verifies against these bundles.
//
//	identity:
//	  svid_cert: pki/harbor-law.example/gateway.crt
//	  svid_key:  pki/harbor-law.example/gateway.key
//	  bundles:
//	    harbor-law.example: pki/harbor-law.example/bundle.pem
//	    manila-lpo.example: pki/manila-lpo.example/bundle.pem
//	  revoked:
//	    - spiffe://harbor-law.example/paralegal/mallory
//
// The files are reloaded without a restart: [Source.Watch] looks at their
// contents every watch_interval (default [DefaultWatchInterval]) and the
// gateway calls [Source.Reload] on SIGHUP. A renewed SVID is used by every
// later handshake and signature once it verifies against the bundles and
// carries the same SPIFFE ID; one that does not load is logged and the
// loaded SVID keeps serving.
//
// In production the SPIFFE Workload API (a SPIRE agent) is the source:
// set workload_api to its address, or leave both workload_api and svid_cert
// empty and set the SPIFFE_ENDPOINT_SOCKET environment variable
// ([SocketEnv]).
//
//	identity:
//	  workload_api: unix:///run/spire/agent.sock
//
// SVIDs and bundles, federated ones included, then stream in and rotate
// without a restart; bundles listed in the config take precedence. When the
// agent offers several SVIDs, spiffe_id picks the gateway's.
//
// # Federation
//
// Partners' bundles may also come from their SPIFFE bundle endpoints
// ([Federation], the federation list): fetched with go-spiffe's federation
// package (https_spiffe), refreshed, and kept while the endpoint is down until
// they expire; then the partner is refused ([ErrBundleExpired],
// [Source.FederationErrors]). New
// waits for the first SVID until its context is done, or for
// [DefaultWorkloadAPITimeout] if the context has no deadline, and fails
// with an error naming the address.
//
// A Source is both an [x509svid.Source] and an [x509bundle.Source], so it
// plugs into any go-spiffe API. [Source.Close] stops the Workload API
// stream; it is idempotent, and a closed Source refuses every handshake.
//
// # Handshakes
//
// [Source.ServerTLSConfig] is the mutual TLS 1.3 configuration of every
// gateway listener, TCP and QUIC. A client is accepted only if it presents
// an X.509-SVID that:
//
//   - has exactly one URI SAN, a spiffe:// ID with no query or fragment;
//   - belongs to a trust domain the gateway knows and chains to its bundle;
//   - is not a CA certificate and is within its validity period;
//   - is not on the deny list ([Config].Revoked, [Source.IsRevoked]).
//
// Each refused certificate is logged (log/slog) with its reason; a revoked
// ID's error wraps [ErrRevoked]. A client that sends no certificate at all
// is refused by crypto/tls before identity sees it; that reason reaches
// whoever calls Handshake (the listener's error log). Once the handshake is done, [PeerID] turns the
// connection state into the verified peer's ID: an identity is a parsed
// [spiffeid.ID] from then on, never a string. [ClientTLSConfig] is the
// matching client side for tests and in-process clients: it pins the
// server's SPIFFE ID.
//
// Revocation at the handshake stops new connections only. A connection
// opened before the deny list changed lives on, so callers deciding on a
// request should ask [Source.IsRevoked] again.
//
// All errors from this package start with "identity: ".
package identity
