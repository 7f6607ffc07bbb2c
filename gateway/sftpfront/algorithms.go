package sftpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// The SSH algorithms the front offers. In SSH the client's order decides: the
// first algorithm of the client's list that the server offers is used. So the
// front's lists say only what it accepts, and everything in them must be safe.
//
// By default that is AES-GCM (OpenSSH's aes*-gcm@openssh.com) and AES-CTR with
// an HMAC-SHA-2 MAC. AES-CTR is there because stock clients need it: paramiko
// offers no AES-GCM at all, and the libssh2 under Debian 12's curl and rclone's
// older builds neither. The MACs are the encrypt-then-MAC SHA-2 ones and, after
// them, the plain hmac-sha2-256/512: libssh2 before 1.11 (Debian 12's curl)
// knows no -etm MAC, and with a CTR cipher MAC-and-encrypt has no known weakness
// (the attacks on SSH's MAC ordering need CBC). No SHA-1 MAC, SHA-1 key exchange
// or CBC cipher is offered unless LegacyAlgorithms admits them for named
// accounts until a date.

// DefaultCiphers are the SSH ciphers offered unless Config.Ciphers says
// otherwise: AES-GCM, then AES-CTR. An OpenSSH client picks aes128-ctr from
// this list (its own order puts CTR before GCM); `-c aes128-gcm@openssh.com`
// or `Ciphers aes128-gcm@openssh.com` in its ssh_config makes it pick AES-GCM,
// which costs the gateway less CPU per byte (one pass over the data instead
// of a cipher pass and an HMAC pass).
var DefaultCiphers = []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM,
	ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR}

// DefaultMACs are the MACs offered with AES-CTR unless Config.MACs says
// otherwise (AES-GCM carries its own): encrypt-then-MAC SHA-2 first, then the
// plain SHA-2 HMACs for libssh2 before 1.11.
var DefaultMACs = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM, ssh.HMACSHA256, ssh.HMACSHA512}

// DefaultKeyExchanges are the key exchanges offered unless
// Config.KeyExchanges says otherwise: x/crypto's own set without SHA-1.
var DefaultKeyExchanges = []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519,
	ssh.KeyExchangeECDHP256, ssh.KeyExchangeECDHP384, ssh.KeyExchangeECDHP521,
	ssh.KeyExchangeDH14SHA256, ssh.KeyExchangeDH16SHA512, ssh.KeyExchangeDHGEXSHA256}

// LegacyAlgorithms admits SHA-1 MACs and key exchanges and CBC ciphers for
// named accounts, until a date, for systems that cannot be upgraded at once.
// The SSH handshake happens before the client names its account, so while the
// window is open the legacy algorithms are offered to every connection; a
// connection that negotiated one is then refused at login unless its account is
// listed, and every login that uses one is logged at WARN. After Until they are
// no longer offered (a WARN at start says so).
type LegacyAlgorithms struct {
	// Accounts are the account names allowed to use the algorithms below.
	Accounts []string `yaml:"accounts"`
	// Ciphers, MACs and KeyExchanges are added after the front's own lists,
	// e.g. aes128-cbc, hmac-sha1, diffie-hellman-group14-sha1.
	Ciphers      []string `yaml:"ciphers"`
	MACs         []string `yaml:"macs"`
	KeyExchanges []string `yaml:"key_exchanges"`
	// Until ends the exception (required, at most a year ahead), e.g.
	// 2027-03-31T00:00:00Z.
	Until time.Time `yaml:"until"`
}

// maxLegacyWindow is how far ahead LegacyAlgorithms.Until may be.
const maxLegacyWindow = 366 * 24 * time.Hour

func (l LegacyAlgorithms) set() bool {
	return len(l.Ciphers)+len(l.MACs)+len(l.KeyExchanges) > 0
}

// legacyAlgorithm reports whether name may only be offered through
// LegacyAlgorithms: CBC and RC4 ciphers, SHA-1 MACs and key exchanges.
func legacyAlgorithm(name string) bool {
	return strings.HasSuffix(name, "-cbc") || strings.HasPrefix(name, "arcfour") ||
		strings.HasPrefix(name, "hmac-sha1") || strings.HasSuffix(name, "-sha1")
}

// validateAlgorithms checks the algorithm settings; bad adds one problem.
func (c *Config) validateAlgorithms(bad func(string, ...any)) {
	supported, insecure := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	check := func(key string, names, known, old []string, legacy bool) {
		for _, n := range names {
			switch {
			case !slices.Contains(known, n) && !slices.Contains(old, n):
				bad("%s: %q is not a supported SSH algorithm (%s)", key, n, strings.Join(known, ", "))
			case !legacy && (legacyAlgorithm(n) || slices.Contains(old, n)):
				bad("%s: %q uses SHA-1, CBC or RC4: admit it for the accounts that need it with sftp.legacy_algorithms (accounts, until)", key, n)
			}
		}
	}
	check("ciphers", c.Ciphers, supported.Ciphers, insecure.Ciphers, false)
	check("macs", c.MACs, supported.MACs, insecure.MACs, false)
	check("key_exchanges", c.KeyExchanges, supported.KeyExchanges, insecure.KeyExchanges, false)
	l := c.LegacyAlgorithms
	check("legacy_algorithms.ciphers", l.Ciphers, supported.Ciphers, insecure.Ciphers, true)
	check("legacy_algorithms.macs", l.MACs, supported.MACs, insecure.MACs, true)
	check("legacy_algorithms.key_exchanges", l.KeyExchanges, supported.KeyExchanges, insecure.KeyExchanges, true)
	if l.set() && (l.Until.IsZero() || len(l.Accounts) == 0) {
		bad("legacy_algorithms: accounts and until are required: the exception names who may use it and when it ends")
	}
	if l.Until.After(time.Now().Add(maxLegacyWindow)) {
		bad("legacy_algorithms.until: %s is more than a year ahead: the exception is for the time an upgrade takes; renew it when it runs out", l.Until.Format(time.DateOnly))
	}
	for _, a := range l.Accounts {
		if !slices.ContainsFunc(c.Accounts, func(x Account) bool { return x.Name == a }) {
			bad("legacy_algorithms.accounts: %q is not an account", a)
		}
	}
}

// algorithms is what the front offers now, and whether the legacy exception
// is open.
func (s *Server) algorithms(now time.Time) (ssh.Config, bool) {
	cfg := ssh.Config{Ciphers: s.cfg.Ciphers, MACs: s.cfg.MACs, KeyExchanges: s.cfg.KeyExchanges}
	l := s.cfg.LegacyAlgorithms
	if !l.set() || !now.Before(l.Until) {
		return cfg, false
	}
	cfg.Ciphers = append(slices.Clone(cfg.Ciphers), l.Ciphers...)
	cfg.MACs = append(slices.Clone(cfg.MACs), l.MACs...)
	cfg.KeyExchanges = append(slices.Clone(cfg.KeyExchanges), l.KeyExchanges...)
	return cfg, true
}

// logLegacyWindow says at start whether the legacy exception is open or over.
func (s *Server) logLegacyWindow(ctx context.Context) {
	l := s.cfg.LegacyAlgorithms
	if !l.set() {
		return
	}
	if _, open := s.algorithms(s.now()); open {
		s.log.WarnContext(ctx, "sftp legacy algorithms offered to every connection, accepted at login only for the accounts listed",
			"accounts", l.Accounts, "ciphers", l.Ciphers, "macs", l.MACs, "key_exchanges", l.KeyExchanges, "until", l.Until)
		return
	}
	s.log.WarnContext(ctx, "sftp legacy algorithms no longer offered: sftp.legacy_algorithms.until has passed",
		"until", l.Until, "accounts", l.Accounts)
}

// legacyUsed lists the legacy algorithms conn negotiated (none when the
// client library cannot tell).
func legacyUsed(conn ssh.ConnMetadata) []string {
	ac, ok := conn.(ssh.AlgorithmsConnMetadata)
	if !ok {
		return nil
	}
	a := ac.Algorithms()
	var out []string
	for _, n := range []string{a.KeyExchange, a.Read.Cipher, a.Read.MAC, a.Write.Cipher, a.Write.MAC} {
		if n != "" && (legacyAlgorithm(n) || slices.Contains(ssh.InsecureAlgorithms().Ciphers, n)) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// checkLegacy refuses an account that negotiated a legacy algorithm without
// being listed for it; a listed one is logged at WARN.
func (s *Server) checkLegacy(conn ssh.ConnMetadata) error {
	used := legacyUsed(conn)
	if len(used) == 0 {
		return nil
	}
	l := s.cfg.LegacyAlgorithms
	log := s.log.With("user", conn.User(), "remote", conn.RemoteAddr().String(), "algorithms", used)
	if !slices.Contains(l.Accounts, conn.User()) {
		log.Warn("sftp login refused: the connection negotiated legacy algorithms the account is not admitted for",
			"fix", "add the account to sftp.legacy_algorithms.accounts, or upgrade the client")
		s.metrics.refused("sftp.legacy_algorithm")
		return fmt.Errorf("%w: legacy algorithms %v are not admitted for %s", errAuth, used, conn.User())
	}
	log.Warn("sftp login with legacy algorithms", "until", l.Until)
	return nil
}

// logHandshakeFailure logs a failed SSH handshake: a failed algorithm
// negotiation at WARN, with what the client offered and the setting that would
// admit it; anything else (a scanner, a dropped connection) at DEBUG.
func (s *Server) logHandshakeFailure(ctx context.Context, remote string, err error) {
	var ne *ssh.AlgorithmNegotiationError
	if !errors.As(err, &ne) {
		s.log.DebugContext(ctx, "ssh handshake failed", "remote", remote, "err", err)
		return
	}
	s.metrics.refused("sftp.negotiation")
	s.log.WarnContext(ctx, "ssh handshake failed: no algorithm in common with the client",
		slog.String("remote", remote), slog.String("what", ne.What),
		slog.Any("client_offered", ne.RequestedAlgorithms), slog.Any("gateway_offers", ne.SupportedAlgorithms),
		slog.String("fix", negotiationFix(ne)))
}

// negotiationFix names the setting that would admit a client whose offer had
// nothing in common with the front's.
func negotiationFix(ne *ssh.AlgorithmNegotiationError) string {
	key := ""
	var supported, insecure []string
	switch {
	case strings.Contains(ne.What, "cipher"):
		key, supported, insecure = "ciphers", ssh.SupportedAlgorithms().Ciphers, ssh.InsecureAlgorithms().Ciphers
	case strings.Contains(ne.What, "MAC"):
		key, supported, insecure = "macs", ssh.SupportedAlgorithms().MACs, ssh.InsecureAlgorithms().MACs
	case strings.Contains(ne.What, "key exchange"):
		key, supported, insecure = "key_exchanges", ssh.SupportedAlgorithms().KeyExchanges, ssh.InsecureAlgorithms().KeyExchanges
	default:
		return "the client offers no host key or signature algorithm the gateway has; upgrade the client"
	}
	for _, n := range ne.RequestedAlgorithms {
		if slices.Contains(supported, n) && !legacyAlgorithm(n) {
			return fmt.Sprintf("add %q to sftp.%s", n, key)
		}
	}
	for _, n := range ne.RequestedAlgorithms {
		if slices.Contains(supported, n) || slices.Contains(insecure, n) {
			return fmt.Sprintf("upgrade the client; or admit %q for its account in sftp.legacy_algorithms.%s (with accounts and until)", n, key)
		}
	}
	return "the client offers nothing the gateway implements; upgrade the client"
}
