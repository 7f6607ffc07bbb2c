package cli_test

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lexgate/lexgate/gateway/gatewaytest"
)

// dualPath reaches a gateway on one port number through a TCP proxy and a UDP
// relay: TCP client-to-gateway bytes go at fastRate for the first fastBytes,
// then at 128 KB/s per connection (a middlebox that starts throttling TCP in
// the middle of a transfer); UDP goes through untouched. It counts what each
// carried from the client to the gateway.
type dualPath struct {
	ln      net.Listener
	udp     *net.UDPConn
	target  string
	tcpUp   atomic.Int64
	udpUp   atomic.Int64
	fast    int64
	rate    float64 // bytes/s while fast
	stopped chan struct{}
	mu      sync.Mutex
	conns   []io.Closer
}

func startDualPath(t *testing.T, target string, fastBytes int64, fastRate float64) *dualPath {
	t.Helper()
	p := &dualPath{target: target, fast: fastBytes, rate: fastRate, stopped: make(chan struct{})}
	for try := 0; ; try++ { // a UDP port with the TCP listener's number
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ln.Addr().(*net.TCPAddr).Port})
		if err == nil {
			p.ln, p.udp = ln, udp
			break
		}
		ln.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		close(p.stopped)
		p.ln.Close()
		p.udp.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	// Room for QUIC's bursts when the relay goroutine is slow to run (a busy
	// machine, -race): a dropped datagram is taken for congestion.
	p.udp.SetReadBuffer(relayBuffer)
	p.udp.SetWriteBuffer(relayBuffer)
	go p.serveTCP()
	go p.serveUDP()
	return p
}

// relayBuffer is the socket buffer the UDP relay asks for.
const relayBuffer = 4 << 20

func (p *dualPath) addr() string { return p.ln.Addr().String() }

func (p *dualPath) track(c io.Closer) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *dualPath) serveTCP() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c)
		p.track(up)
		go func() { io.Copy(c, up); c.Close() }()
		go p.throttle(c, up)
	}
}

// throttle copies client to gateway, paced.
func (p *dualPath) throttle(from, to net.Conn) {
	defer to.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			rate := p.rate
			if p.tcpUp.Add(int64(n)) > p.fast {
				// Collapsed (below 1/collapseRatio of any peak these tests
				// reach, four connections together included), yet not so
				// slow that an upload left on TCP (the move not made, or
				// made back) takes many minutes to end: what is left of the
				// bundle then crawls in about 4 minutes rather than 9.
				rate = 128e3
			}
			select {
			case <-time.After(time.Duration(float64(n) / rate * float64(time.Second))):
			case <-p.stopped:
				return
			}
			if _, err := to.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serveUDP relays datagrams: one upstream socket per client address.
func (p *dualPath) serveUDP() {
	ups := map[string]*net.UDPConn{}
	buf := make([]byte, 64<<10)
	gw, err := net.ResolveUDPAddr("udp", p.target)
	if err != nil {
		return
	}
	for {
		n, from, err := p.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		up, ok := ups[from.String()]
		if !ok {
			if up, err = net.DialUDP("udp", nil, gw); err != nil {
				continue
			}
			up.SetReadBuffer(relayBuffer) // best effort, as quic-go's own sockets
			up.SetWriteBuffer(relayBuffer)
			ups[from.String()] = up
			p.track(up)
			go func(up *net.UDPConn, client *net.UDPAddr) {
				b := make([]byte, 64<<10)
				for {
					k, err := up.Read(b)
					if err != nil {
						return
					}
					p.udp.WriteToUDP(b[:k], client)
				}
			}(up, from)
		}
		p.udpUp.Add(int64(n))
		up.Write(buf[:n])
	}
}

// TestGatewayBulkMovesMidFlight: with --transport auto the ciphertext goes
// over TCP; when TCP's goodput collapses in the middle of the upload, lex
// moves the bulk to QUIC and resumes at the gateway's offset, so the bytes
// already up are not sent again, and the bundle arrives whole: with one
// upload stream and with parallel ranges.
func TestGatewayBulkMovesMidFlight(t *testing.T) {
	for _, streams := range []string{"1", "4"} {
		t.Run("streams="+streams, func(t *testing.T) { bulkMovesMidFlight(t, streams) })
	}
}

func bulkMovesMidFlight(t *testing.T, streams string) {
	env, alice, team := setup(t)
	root, sums := bigBundle(t, 48<<20)
	const fast = 16 << 20
	p := startDualPath(t, env.Addr, fast, 8e6)
	cfg := viaProxy(t, alice, env.Addr, p.addr())

	// 4 MiB chunks: a chunk the move interrupts is sent again whole, so the
	// gateway holds at least fast - 4 MiB when the bulk moves.
	code, out, errOut := lex(t, cfg, "-v", "send", "--json", "--chunk", "4MiB", "--streams", streams, "--to", gatewaytest.Team, "--matter", "HL-2026-0042", root)
	if code != 0 {
		t.Fatalf("send: exit %d\n%s", code, errOut)
	}
	t.Logf("lex send -v:\n%s", errOut)
	for _, want := range []string{"bulk: tcp goodput fell to", "moving to quic"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-v does not say %q:\n%s", want, errOut)
		}
	}
	var res struct {
		ID             string `json:"id"`
		CiphertextSize int64  `json:"ciphertext_size"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	tcp, udp := p.tcpUp.Load(), p.udpUp.Load()
	t.Logf("ciphertext %d bytes; client to gateway: %d over tcp, %d over udp", res.CiphertextSize, tcp, udp)
	if tcp < fast {
		t.Errorf("only %d bytes went over tcp before the move", tcp)
	}
	// What the gateway held when the bulk moved is not sent again. With one
	// stream of 4 MiB chunks it holds at least fast - 4 MiB, so QUIC carries
	// at most the rest plus its own overhead and the control requests. The
	// parallel ranges (8 MiB, four at once) are all cut in the middle by the
	// throttle, so little is durable: they must at least not go twice.
	limit := (res.CiphertextSize - (fast - 4<<20)) * 11 / 10
	if streams != "1" {
		limit = res.CiphertextSize * 11 / 10
	}
	if udp > limit {
		t.Errorf("%d bytes over udp for the %d left after the move (limit %d): the upload started over", udp, res.CiphertextSize-tcp, limit)
	}
	arrivesWhole(t, env, team, res.ID, sums)
}
