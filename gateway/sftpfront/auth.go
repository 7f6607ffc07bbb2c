package sftpfront

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lexgate/lexgate/gateway/transfer"
)

// errAuth is what every failed public key attempt returns: it does not tell a
// prober whether the account exists.
var errAuth = errors.New("sftpfront: public key not accepted")

// authenticate accepts an account's authorized key, or a user certificate
// signed by one of its CAs naming the account as a principal. Passwords and
// keyboard-interactive are never offered. Whether the account may log in at all
// is the policy's decision (sftp_login), asked once the key is proven.
func (s *Server) authenticate(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	acct, ok := s.accounts[conn.User()]
	if !ok {
		return nil, errAuth
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		checker := &ssh.CertChecker{IsUserAuthority: func(auth ssh.PublicKey) bool {
			for _, ca := range acct.cas {
				if bytes.Equal(ca, auth.Marshal()) {
					return true
				}
			}
			return false
		}}
		if _, err := checker.Authenticate(conn, cert); err != nil {
			return nil, fmt.Errorf("%w: %v", errAuth, err)
		}
		return &ssh.Permissions{}, nil
	}
	wire := key.Marshal()
	for _, k := range acct.keys {
		if bytes.Equal(k, wire) {
			return &ssh.Permissions{}, nil
		}
	}
	return nil, errAuth
}

// connConfig is the SSH server config for one connection: it refuses every key
// once MaxAuthTries keys were refused on the connection. x/crypto/ssh's own
// MaxAuthTries does not count keys a client only offers (queries), which is how
// OpenSSH clients try their keys, so a client could try twice as many.
func (s *Server) connConfig() *ssh.ServerConfig {
	cfg := *s.ssh
	cfg.Config, _ = s.algorithms(s.now())
	refused := 0
	cfg.PublicKeyCallback = func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if refused >= s.cfg.MaxAuthTries {
			return nil, fmt.Errorf("%w: %d keys were refused on this connection", errAuth, refused)
		}
		p, err := s.authenticate(conn, key)
		if err == nil {
			err = s.checkLegacy(conn)
		}
		if err != nil {
			refused++
		}
		return p, err
	}
	return &cfg
}

// authLog counts failed public key attempts per source address.
func (s *Server) authLog(conn ssh.ConnMetadata, method string, err error) {
	if err == nil || method == "none" {
		return
	}
	host := remoteHost(conn.RemoteAddr())
	s.limiter.fail(host)
	s.metrics.refused("sftp.auth")
	s.log.Info("sftp authentication failed", "user", conn.User(), "method", method, "remote", conn.RemoteAddr().String())
}

// addrLimiter counts authentication failures per address in a sliding window.
type addrLimiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	fails  map[string][]time.Time
}

func newAddrLimiter(max int, window time.Duration) *addrLimiter {
	return &addrLimiter{max: max, window: window, fails: map[string][]time.Time{}}
}

func (l *addrLimiter) recent(host string, now time.Time) []time.Time {
	ts := l.fails[host]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > l.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, host)
	} else {
		l.fails[host] = ts
	}
	return ts
}

func (l *addrLimiter) fail(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	ts := l.recent(host, now)
	if len(ts) < l.max*2 { // bounded memory per address
		l.fails[host] = append(ts, now)
	}
}

func (l *addrLimiter) blocked(host string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent(host, time.Now())) >= l.max
}

// idleConn closes a connection on which no byte moved for timeout: every read
// and write pushes the deadline forward (at most once a second, to keep the
// per-packet cost low).
type idleConn struct {
	net.Conn
	timeout time.Duration
	last    atomic.Int64
}

func newIdleConn(c net.Conn, timeout time.Duration) *idleConn {
	ic := &idleConn{Conn: c, timeout: timeout}
	ic.touch()
	return ic
}

func (c *idleConn) touch() {
	now := time.Now()
	if now.UnixNano()-c.last.Load() < int64(time.Second) {
		return
	}
	c.last.Store(now.UnixNano())
	c.Conn.SetDeadline(now.Add(c.timeout))
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.touch()
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.touch()
	return c.Conn.Write(p)
}

// reasonText is a refusal's reasons, for an SSH or SFTP message.
func reasonText(err error) string {
	var de *transfer.DeniedError
	if errors.As(err, &de) {
		var parts []string
		for _, r := range de.Decision.Reasons {
			parts = append(parts, r.Message+" ["+r.Code+"]")
		}
		if len(parts) > 0 {
			return strings.Join(parts, "; ")
		}
		return "refused by policy"
	}
	return err.Error()
}
