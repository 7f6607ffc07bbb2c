package sftpfront

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/pkg/sftp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/crypto/ssh"

	"github.com/lexgate/lexgate/gateway/transfer"
)

// Deps are what the front runs on.
type Deps struct {
	// Core is the transfer core every action goes through.
	Core *transfer.Service
	// Sealer is the gateway's own X.509-SVID source: it signs the manifests of
	// uploads encrypted on ingest.
	Sealer x509svid.Source
	// Log is the operational logger (nil: slog.Default()).
	Log *slog.Logger
	// DefaultHostKey is the host key path used when the config names none.
	DefaultHostKey string
	// Bundles are the trust bundles a custodial inbox verifies signed
	// manifests with; required when an account has custodial_inbox.
	Bundles x509bundle.Source
	// Now is the clock for manifest checks (nil: time.Now).
	Now func() time.Time
	// Metrics is the registry the front's metrics go on (nil: not exported).
	Metrics prometheus.Registerer
}

// Server is the SSH/SFTP front. Make one with New, run it with Serve, stop it
// with Close.
type Server struct {
	cfg      Config
	core     *transfer.Service
	sealer   x509svid.Source
	log      *slog.Logger
	ssh      *ssh.ServerConfig
	hostKey  ssh.Signer
	ln       net.Listener
	accounts map[string]*account
	limiter  *addrLimiter
	bundles  x509bundle.Source
	now      func() time.Time
	started  time.Time // the time the tree's directories show
	metrics  *frontMetrics
	uploads  *uploads
	sizes    sizeCache // served sizes of custodial deliveries

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	sessions map[string]int                        // account name → open SFTP sessions
	byID     map[spiffeid.ID]map[net.Conn]struct{} // connections by account SPIFFE ID (revoke.go)
	closed   bool
	wg       sync.WaitGroup
	once     sync.Once
}

// account is a configured Account, parsed.
type account struct {
	Account
	id   spiffeid.ID
	keys [][]byte // wire form of each authorized key
	cas  [][]byte // wire form of each CA key
	// custody is the gateway-held identity of a custodial account (nil
	// otherwise): /inbox serves its deliveries decrypted with it.
	custody *age.X25519Identity
}

// New checks cfg, loads or creates the host key, removes staged uploads left by
// an earlier run, and binds the listener, so Addr is known when it returns.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Core == nil || deps.Sealer == nil {
		return nil, errors.New("sftpfront: core and sealer are required")
	}
	cfg = cfg.withDefaults()
	if cfg.HostKey == "" {
		cfg.HostKey = deps.DefaultHostKey
	}
	if cfg.HostKey == "" {
		return nil, errors.New("sftpfront: host_key: no path for the host key")
	}
	s := &Server{cfg: cfg, core: deps.Core, sealer: deps.Sealer, log: deps.Log, bundles: deps.Bundles, now: deps.Now,
		accounts: map[string]*account{}, conns: map[net.Conn]struct{}{}, sessions: map[string]int{},
		limiter: newAddrLimiter(cfg.MaxAuthFailuresPerAddr, cfg.AuthFailureWindow)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.log = s.log.With("front", "sftp")
	s.started = s.now().Truncate(time.Second)
	s.uploads = newUploads(cfg.UploadWindow, s.now, s.core)
	var err error
	if s.metrics, err = newFrontMetrics(deps.Metrics); err != nil {
		return nil, fmt.Errorf("sftpfront: metrics: %w", err)
	}
	for _, a := range cfg.Accounts {
		pa, err := parseAccount(a)
		if err != nil {
			return nil, err
		}
		s.accounts[a.Name] = pa
	}
	hostKey, err := loadHostKey(cfg.HostKey)
	if err != nil {
		return nil, err
	}
	if s.hostKey, err = ssh.ParsePrivateKey(hostKey); err != nil {
		return nil, fmt.Errorf("sftpfront: host key %s: %w", cfg.HostKey, err)
	}
	if err := s.startCustody(ctx, hostKey); err != nil {
		return nil, err
	}
	if n, err := s.core.CleanIngest(); err != nil {
		return nil, fmt.Errorf("sftpfront: %w", err)
	} else if n > 0 {
		s.log.WarnContext(ctx, "removed staged uploads interrupted by an earlier stop", "count", n)
	}
	s.logLegacyWindow(ctx)
	s.ssh = &ssh.ServerConfig{
		MaxAuthTries:      cfg.MaxAuthTries,
		PublicKeyCallback: s.authenticate,
		AuthLogCallback:   s.authLog,
		ServerVersion:     "SSH-2.0-lexgate",
	}
	s.ssh.AddHostKey(s.hostKey)
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("sftpfront: listen %s: %w", cfg.Listen, err)
	}
	return s, nil
}

func parseAccount(a Account) (*account, error) {
	pa := &account{Account: a}
	pa.id, _ = spiffeid.FromString(a.ID)
	for _, k := range a.AuthorizedKeys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("sftpfront: account %s: %w", a.Name, err)
		}
		pa.keys = append(pa.keys, pk.Marshal())
	}
	for _, k := range a.CertAuthorities {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("sftpfront: account %s: %w", a.Name, err)
		}
		pa.cas = append(pa.cas, pk.Marshal())
	}
	return pa, nil
}

// loadHostKey reads the host key file at path, or generates an Ed25519 key
// there (0600) when the file does not exist, and returns the file's bytes.
func loadHostKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("sftpfront: host key: %w", err)
		}
		blk, err := ssh.MarshalPrivateKey(priv, "lexgate sftp host key")
		if err != nil {
			return nil, fmt.Errorf("sftpfront: host key: %w", err)
		}
		b = pem.EncodeToMemory(blk)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("sftpfront: host key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sftpfront: host key: %w", err)
		}
		_, werr := f.Write(b)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("sftpfront: host key %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("sftpfront: host key: %w", err)
	} else if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sftpfront: host key %s is readable by others (%v): chmod 600 it", path, fi.Mode().Perm())
	}
	return b, nil
}

// Addr is the SSH listener's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Fingerprint is the host key's SHA-256 fingerprint, as ssh-keygen -l prints it.
func (s *Server) Fingerprint() string { return ssh.FingerprintSHA256(s.hostKey.PublicKey()) }

// HostPublicKey is the host key in authorized_keys format, for known_hosts.
func (s *Server) HostPublicKey() string {
	return string(ssh.MarshalAuthorizedKey(s.hostKey.PublicKey()))
}

// Serve accepts connections until Close. It returns nil after Close.
func (s *Server) Serve(ctx context.Context) error {
	s.log.InfoContext(ctx, "sftp front serving", "addr", s.Addr(), "host_key_fingerprint", s.Fingerprint(),
		"accounts", len(s.accounts))
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("sftpfront: accept: %w", err)
		}
		if !s.track(c) {
			c.Close()
			return nil
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(context.WithoutCancel(ctx), c)
		}()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Close stops accepting, cuts every connection (an upload in flight is
// discarded: no transfer, no staged file) and waits for them. Idempotent.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.ln.Close()
		s.wg.Wait()
		s.uploads.close()
	})
	return nil
}

// serveConn runs one SSH connection: handshake with a deadline, the login
// decision, then its channels.
func (s *Server) serveConn(ctx context.Context, raw net.Conn) {
	host := remoteHost(raw.RemoteAddr())
	if s.limiter.blocked(host) {
		s.metrics.refused("sftp.addr_blocked")
		s.log.WarnContext(ctx, "connection refused: too many failed authentications from this address", "remote", host)
		return
	}
	// The handshake and authentication get HandshakeTimeout in all; after that
	// a connection that moves no byte for IdleTimeout is closed.
	timer := time.AfterFunc(s.cfg.HandshakeTimeout, func() { raw.Close() })
	bc := newBatchConn(newIdleConn(raw, s.cfg.IdleTimeout))
	defer bc.Close() // stops its writer goroutine on every path
	conn, chans, reqs, err := ssh.NewServerConn(bc, s.connConfig())
	if !timer.Stop() && err == nil {
		err = errors.New("handshake timed out")
	}
	if err != nil {
		s.logHandshakeFailure(ctx, raw.RemoteAddr().String(), err)
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	acct := s.accounts[conn.User()]
	log := s.log.With("account", acct.Name, "caller", acct.ID, "remote", raw.RemoteAddr().String())
	s.bindID(acct.id, raw)
	defer s.unbindID(acct.id, raw)
	loginErr := s.core.Login(ctx, acct.id, raw.RemoteAddr().String())
	if loginErr != nil {
		s.metrics.refusedErr(loginErr)
		log.WarnContext(ctx, "sftp login refused", "err", loginErr)
	} else {
		s.metrics.logins.Inc()
		log.InfoContext(ctx, "sftp login")
	}
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only session channels (sftp) are served")
			continue
		}
		if loginErr != nil {
			nc.Reject(ssh.Prohibited, "login refused: "+reasonText(loginErr))
			continue
		}
		if !s.openSession(acct.Name) {
			s.metrics.refused("sftp.sessions")
			nc.Reject(ssh.ResourceShortage, fmt.Sprintf("account %s already has %d sessions open", acct.Name, s.cfg.MaxSessionsPerAccount))
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			s.closeSession(acct.Name)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.closeSession(acct.Name)
			s.serveSession(ctx, log, acct, ch, creqs)
		}()
	}
}

func (s *Server) openSession(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[name] >= s.cfg.MaxSessionsPerAccount {
		return false
	}
	s.sessions[name]++
	s.metrics.sessions.Inc()
	return true
}

func (s *Server) closeSession(name string) {
	s.mu.Lock()
	s.sessions[name]--
	s.mu.Unlock()
	s.metrics.sessions.Dec()
}

// serveSession waits for the "sftp" subsystem request and serves the request
// server on the channel; exec, shell and everything else are refused.
func (s *Server) serveSession(ctx context.Context, log *slog.Logger, acct *account, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	started := false
	for req := range reqs {
		ok := !started && req.Type == "subsystem" && len(req.Payload) >= 4 && string(req.Payload[4:]) == "sftp"
		if req.WantReply {
			req.Reply(ok, nil)
		}
		if !ok {
			continue
		}
		started = true
		go ssh.DiscardRequests(reqs)
		reads := &readHandles{}
		h := &handler{s: s, acct: acct, log: log, ctx: ctx, reads: reads}
		rs := sftp.NewRequestServer(newSFTPChannel(ch, reads), h.handlers(), sftp.WithRSAllocator(), sftp.WithRSMaxTxPacket(maxTxPacket))
		if err := rs.Serve(); err != nil && !errors.Is(err, net.ErrClosed) && err.Error() != "EOF" {
			log.DebugContext(ctx, "sftp session ended", "err", err)
		}
		rs.Close()
		return
	}
}

// maxTxPacket is the largest read reply: clients that ask for big reads get them.
const maxTxPacket = 256 << 10

func remoteHost(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, _ := net.SplitHostPort(a.String())
	return host
}
