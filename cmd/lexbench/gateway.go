package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lexgate/lexgate/cmd/internal/benchkit"
	"github.com/lexgate/lexgate/internal/engines"
)

// gateway is one "lexgate serve" subprocess with its own config, log and store,
// watched by a memory and CPU monitor.
type gateway struct {
	*daemon
	dir  string // config, log and store
	addr string // API address, TCP and UDP
	log  string // JSON log
	mon  *monitor
	// logKey is the audit log's public key, pinned in the lex configs.
	logKey string
}

// startGateway writes a config like the demo's (free ports, the dev PKI's gateway
// SVID and bundles, a store in dir, then the extra YAML sections), starts the
// gateway and waits for /healthz.
func (b *bench) startGateway(ctx context.Context, dir, pki string, extra ...string) (*gateway, error) {
	if _, err := mkdir(dir); err != nil {
		return nil, err
	}
	port, err := engines.FreePort()
	if err != nil {
		return nil, err
	}
	admin, err := engines.FreePort()
	if err != nil {
		return nil, err
	}
	g := &gateway{dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(dir, "lexgate.log")}
	cfg := benchkit.GatewayConfig("lexbench", g.addr, admin, pki, filepath.Join(dir, "data")) + strings.Join(extra, "")
	cfgPath := filepath.Join(dir, "lexgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if g.daemon, err = b.startDaemon("lexgate", g.log, b.lexgate, "serve", "--config", cfgPath); err != nil {
		return nil, err
	}
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", admin)
	err = waitFor(ctx, g.daemon, g.log, 15*time.Second, func() error {
		resp, err := http.Get(health)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", health, resp.Status)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	key, err := exec.CommandContext(ctx, b.lexgate, "log-key", "--config", cfgPath).Output()
	if err != nil {
		return nil, fmt.Errorf("lexgate log-key: %w", err)
	}
	g.logKey = strings.TrimSpace(string(key))
	g.mon = newMonitor(g.pid())
	return g, nil
}

// stop stops the gateway and its monitor.
func (g *gateway) stop() error {
	g.mon.close()
	return g.daemon.stop(15 * time.Second)
}

// requestLog is the part of a gateway "request" log line lexbench reads.
type requestLog struct {
	Time       time.Time `json:"time"`
	Msg        string    `json:"msg"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	DurationMS int64     `json:"duration_ms"`
}

// contentSpan reads the gateway's request log and returns the time from the start
// of the first to the end of the last successful method request on transfer id's
// content (PATCH: the upload, GET: the download), and how many there were. The log
// gives millisecond durations, so the span is good to about a millisecond.
func (g *gateway) contentSpan(id, method string) (time.Duration, int, error) {
	f, err := os.Open(g.log)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var first, last time.Time
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l requestLog
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "request" || l.Method != method ||
			!strings.HasSuffix(l.Path, "/"+id+"/content") || l.Status/100 != 2 {
			continue
		}
		start := l.Time.Add(-time.Duration(l.DurationMS) * time.Millisecond)
		if n == 0 || start.Before(first) {
			first = start
		}
		if n == 0 || l.Time.After(last) {
			last = l.Time
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("no successful %s of transfer %s in %s", method, id, g.log)
	}
	return last.Sub(first), n, nil
}

// monitor samples a process's resident set size every sampleEvery, keeping the
// peak of the current phase, and reads its CPU time and VmHWM (the kernel's own
// peak RSS over the process's life, which cannot be reset) on demand.
type monitor struct {
	pid  int
	mu   sync.Mutex
	peak int64 // bytes: the largest VmRSS sampled since reset
	quit chan struct{}
	done chan struct{}
}

// sampleEvery is how often the monitor reads VmRSS.
const sampleEvery = 20 * time.Millisecond

func newMonitor(pid int) *monitor {
	m := &monitor{pid: pid, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-m.quit:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *monitor) sample() {
	rss, err := benchkit.ProcStatus(m.pid, "VmRSS")
	if err != nil {
		return
	}
	m.mu.Lock()
	m.peak = max(m.peak, rss)
	m.mu.Unlock()
}

// reset starts a new phase.
func (m *monitor) reset() {
	m.mu.Lock()
	m.peak = 0
	m.mu.Unlock()
	m.sample()
}

// phasePeak is the largest VmRSS sampled since reset, in bytes.
func (m *monitor) phasePeak() int64 {
	m.sample()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

// hwm is the process's VmHWM in bytes.
func (m *monitor) hwm() (int64, error) { return benchkit.ProcStatus(m.pid, "VmHWM") }

// cpu is the process's user + system CPU time so far.
func (m *monitor) cpu() (time.Duration, error) { return procCPU(m.pid) }

func (m *monitor) close() {
	select {
	case <-m.quit:
	default:
		close(m.quit)
	}
	<-m.done
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times; 100 on every Linux
// architecture Go supports.
const clockTick = 100

// procCPU reads utime + stime from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) { return procStatCPU(pid, 2) }

// procTreeCPU reads utime + stime + cutime + cstime from /proc/PID/stat: the
// process's CPU and that of the children it has waited for (sshd's
// per-connection sessions, once they have ended).
func procTreeCPU(pid int) (time.Duration, error) { return procStatCPU(pid, 4) }

// procStatCPU sums n CPU time fields of /proc/PID/stat from utime on.
func procStatCPU(pid, n int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its closing
	// parenthesis start with field 3 (state). utime, stime, cutime and cstime
	// are fields 14 to 17.
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	if i < 0 || len(fields) < 11+n {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var ticks int64
	for _, f := range fields[11 : 11+n] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}
