package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"filippo.io/age"
	"golang.org/x/sys/unix"

	"github.com/lexgate/lexgate/gateway/directio"
)

// The CPU budget. Every byte of a transfer costs each end some CPU that no
// implementation can avoid: age's ChaCha20-Poly1305, SHA-256, the TLS
// record's AES-GCM, and the system calls that move it through a socket and
// onto the disk. lexbench measures each of these floors on this machine, on one
// locked OS thread (its CPU time from getrusage(RUSAGE_THREAD), so other work on
// the host does not count), and shows beside each end's measured CPU the sum
// of the floors that end must pay. What lies between the two is the
// implementation's overhead (HTTP framing, copies, goroutine hand-offs, the
// garbage collector).

// Floor pieces.
const (
	floorSHA256     = "sha256"
	floorAgeEnc     = "age encrypt"
	floorAgeDec     = "age decrypt"
	floorTLSSeal    = "tls seal"
	floorTLSOpen    = "tls open"
	floorTCPSend    = "tcp send"
	floorTCPRecv    = "tcp recv"
	floorReadCached = "file read"
	floorReadDirect = "file read direct"
	floorWriteDir   = "file write direct"
)

// ends are the four ends of a send and a receive over TCP, the row whose CPU
// they are measured in, and the floors each must pay for every byte. The
// clients hash twice: the plaintext file by file for the bundle manifest, and
// the ciphertext for the signed manifest. The gateway hashes what it stores,
// but not what it serves to lex, which checks the ciphertext itself and
// reports a mismatch (api.HeaderIntegrity).
var ends = []struct {
	name    string
	row     string
	gateway bool
	pieces  []string
}{
	{"send, client", rowSend("tcp"), false, []string{floorReadCached, floorSHA256, floorAgeEnc, floorSHA256, floorTLSSeal, floorTCPSend, floorWriteDir}},
	{"send, gateway", rowSend("tcp"), true, []string{floorTCPRecv, floorTLSOpen, floorSHA256, floorWriteDir}},
	{"receive, gateway", rowReceive("tcp"), true, []string{floorReadDirect, floorTLSSeal, floorTCPSend}},
	{"receive, client", rowReceive("tcp"), false, []string{floorTCPRecv, floorTLSOpen, floorSHA256, floorAgeDec, floorSHA256, floorWriteDir}},
}

// floor is one piece's CPU seconds per GiB.
type floor struct {
	Name          string  `json:"name"`
	SecondsPerGiB float64 `json:"cpu_seconds_per_gib"`
}

// endBudget is one end's measured CPU per GiB beside the sum of its floors.
type endBudget struct {
	End            string   `json:"end"`
	Row            string   `json:"row"`
	MeasuredPerGiB float64  `json:"measured_cpu_seconds_per_gib"`
	FloorsPerGiB   float64  `json:"floors_cpu_seconds_per_gib"`
	Pieces         []string `json:"pieces"`
}

// benchFloors measures every floor over n bytes in dir.
func (b *bench) benchFloors(n int64, dir string) error {
	b.logf("measuring CPU floors over %s each", humanBytes(n))
	buf := directio.AlignedBuffer(1 << 20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	type piece struct {
		name string
		fn   func() (time.Duration, error)
	}
	file := filepath.Join(dir, "floor.bin")
	pieces := []piece{
		{floorSHA256, func() (time.Duration, error) { return onThread(func() error { return hashFloor(buf, n) }) }},
		{floorAgeEnc, func() (time.Duration, error) { return onThread(func() error { return ageEncFloor(buf, n) }) }},
		{floorAgeDec, func() (time.Duration, error) { return ageDecFloor(buf, n) }},
		{floorTLSSeal, func() (time.Duration, error) { return gcmFloor(n, true) }},
		{floorTLSOpen, func() (time.Duration, error) { return gcmFloor(n, false) }},
		{floorWriteDir, func() (time.Duration, error) { return onThread(func() error { return writeFloor(file, buf, n) }) }},
		{floorReadDirect, func() (time.Duration, error) { return onThread(func() error { return readFloor(file, buf, true) }) }},
		{floorReadCached, func() (time.Duration, error) { return cachedReadFloor(file, buf) }},
	}
	scale := float64(1<<30) / float64(n)
	for _, p := range pieces {
		d, err := p.fn()
		if err != nil {
			return fmt.Errorf("floor %s: %w", p.name, err)
		}
		b.rep.Floors = append(b.rep.Floors, floor{p.name, d.Seconds() * scale})
	}
	os.Remove(file)
	send, recv, err := tcpFloor(buf, n)
	if err != nil {
		return fmt.Errorf("floor tcp: %w", err)
	}
	b.rep.Floors = append(b.rep.Floors, floor{floorTCPSend, send.Seconds() * scale}, floor{floorTCPRecv, recv.Seconds() * scale})
	for _, f := range b.rep.Floors {
		b.logf("floor %-18s %.3f CPU s/GiB", f.Name, f.SecondsPerGiB)
	}
	return nil
}

// budgets works out each end's measured CPU per GiB and its floors.
func (r *report) budgets() {
	floors := map[string]float64{}
	for _, f := range r.Floors {
		floors[f.Name] = f.SecondsPerGiB
	}
	if len(floors) == 0 {
		return
	}
	gib := float64(r.SizeBytes) / (1 << 30)
	for _, e := range ends {
		w, ok := r.byName[e.row]
		if !ok || len(w.walls) == 0 {
			continue
		}
		cpu := w.ClientCPUSeconds
		if e.gateway {
			cpu = w.GatewayCPUSeconds
		}
		var sum float64
		for _, p := range e.pieces {
			sum += floors[p]
		}
		r.Budgets = append(r.Budgets, endBudget{End: e.name, Row: e.row, MeasuredPerGiB: cpu / gib, FloorsPerGiB: sum, Pieces: e.pieces})
	}
	r.ceilings()
}

// The ceiling. On loopback both ends of a transfer share the machine's cores:
// lex and the gateway, sftp and sshd. A command cannot take less wall time
// than the CPU time of both its ends spread over every core, so lex's ratio to
// sftp is bounded by sftp's wall time over that: with lex at its floors (no
// implementation does better), with the CPU lex spends today, and with that
// CPU spread over the cores only as well as sftp and sshd spread theirs.

// ceiling bounds one lex row's ratio to its sftp row.
type ceiling struct {
	Row   string `json:"row"`
	Cores int    `json:"cores"`
	// SFTPSeconds is the sftp command's wall time; SFTPCPUSeconds its client's
	// and sshd's CPU time, and SFTPCoreUse that over cores × wall time.
	SFTPSeconds    float64 `json:"sftp_seconds"`
	SFTPCPUSeconds float64 `json:"sftp_cpu_seconds"`
	SFTPCoreUse    float64 `json:"sftp_core_use"`
	// LexFloorsCPUSeconds is the sum of both lex ends' floors for the test
	// file; LexCPUSeconds both ends' measured CPU time.
	LexFloorsCPUSeconds float64 `json:"lex_floors_cpu_seconds"`
	LexCPUSeconds       float64 `json:"lex_cpu_seconds"`
	// The ratio ceilings: at the floors on every core, at the measured CPU on
	// every core, and at the measured CPU with sftp's use of the cores.
	AtFloors   float64 `json:"ratio_ceiling_at_floors"`
	AtMeasured float64 `json:"ratio_ceiling_at_measured_cpu"`
	AtSFTPUse  float64 `json:"ratio_at_measured_cpu_and_sftp_core_use"`
	Measured   float64 `json:"ratio_measured"`
	ClientEnd  string  `json:"client_end"`
	GatewayEnd string  `json:"gateway_end"`
	SFTPRow    string  `json:"sftp_row"`
}

// ceilings works out the ceiling of the send and the receive over TCP.
func (r *report) ceilings() {
	byEnd := map[string]endBudget{}
	for _, b := range r.Budgets {
		byEnd[b.End] = b
	}
	gib := float64(r.SizeBytes) / (1 << 30)
	for _, c := range []struct{ lex, sftp, client, gateway string }{
		{rowSend("tcp"), rowSFTPPut, "send, client", "send, gateway"},
		{rowReceive("tcp"), rowSFTPGet, "receive, client", "receive, gateway"},
	} {
		l, s := r.byName[c.lex], r.byName[c.sftp]
		ce, okc := byEnd[c.client]
		ge, okg := byEnd[c.gateway]
		if l == nil || s == nil || !okc || !okg || s.Seconds == 0 || r.CPUs < 1 {
			continue
		}
		cores := float64(r.CPUs)
		x := ceiling{Row: c.lex, SFTPRow: c.sftp, ClientEnd: c.client, GatewayEnd: c.gateway, Cores: r.CPUs,
			SFTPSeconds: s.Seconds, SFTPCPUSeconds: s.ClientCPUSeconds + s.GatewayCPUSeconds,
			LexFloorsCPUSeconds: (ce.FloorsPerGiB + ge.FloorsPerGiB) * gib,
			LexCPUSeconds:       l.ClientCPUSeconds + l.GatewayCPUSeconds, Measured: l.Ratio}
		x.SFTPCoreUse = x.SFTPCPUSeconds / (cores * x.SFTPSeconds)
		if x.LexFloorsCPUSeconds > 0 {
			x.AtFloors = x.SFTPSeconds / (x.LexFloorsCPUSeconds / cores)
		}
		if x.LexCPUSeconds > 0 {
			x.AtMeasured = x.SFTPSeconds / (x.LexCPUSeconds / cores)
			x.AtSFTPUse = x.AtMeasured * min(x.SFTPCoreUse, 1)
		}
		r.Ceilings = append(r.Ceilings, x)
	}
}

// threadCPU is the calling OS thread's CPU time, user and system.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// onThread runs fn locked to one OS thread and returns that thread's CPU time.
func onThread(fn func() error) (time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := threadCPU()
	err := fn()
	return threadCPU() - t0, err
}

func hashFloor(buf []byte, n int64) error {
	h := sha256.New()
	for left := n; left > 0; left -= int64(len(buf)) {
		h.Write(buf[:min(left, int64(len(buf)))])
	}
	h.Sum(nil)
	return nil
}

func floorRecipient() (*age.X25519Identity, error) { return age.GenerateX25519Identity() }

func ageEncFloor(buf []byte, n int64) error {
	id, err := floorRecipient()
	if err != nil {
		return err
	}
	w, err := age.Encrypt(io.Discard, id.Recipient())
	if err != nil {
		return err
	}
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := w.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			return err
		}
	}
	return w.Close()
}

// ageDecFloor encrypts 64 MiB once, untimed, and times decrypting it until n
// bytes have been decrypted.
func ageDecFloor(buf []byte, n int64) (time.Duration, error) {
	id, err := floorRecipient()
	if err != nil {
		return 0, err
	}
	sample := min(n, 64<<20)
	var ct bytesWriter
	w, err := age.Encrypt(&ct, id.Recipient())
	if err != nil {
		return 0, err
	}
	for left := sample; left > 0; left -= int64(len(buf)) {
		w.Write(buf[:min(left, int64(len(buf)))])
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return onThread(func() error {
		for done := int64(0); done < n; done += sample {
			r, err := age.Decrypt(&byteReader{b: ct.b}, id)
			if err != nil {
				return err
			}
			for {
				_, err := io.ReadFull(r, buf)
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					break
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// gcmFloor seals (or opens) n bytes as TLS 1.3 records of 16 KiB with
// AES-128-GCM, the suite Go's TLS picks on hardware with AES instructions.
func gcmFloor(n int64, seal bool) (time.Duration, error) {
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		return 0, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return 0, err
	}
	const record = 16 << 10
	nonce := make([]byte, aead.NonceSize())
	plain := make([]byte, record)
	sealed := aead.Seal(nil, nonce, plain, nil)
	out := make([]byte, 0, record+aead.Overhead())
	return onThread(func() error {
		for left := n; left > 0; left -= record {
			if seal {
				aead.Seal(out[:0], nonce, plain, nil)
				continue
			}
			if _, err := aead.Open(out[:0], nonce, sealed, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeFloor writes n bytes to path with O_DIRECT where it can.
func writeFloor(path string, buf []byte, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := directio.NewWriter(f, 0)
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := w.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// readFloor reads path through, with O_DIRECT if direct.
func readFloor(path string, buf []byte, direct bool) error {
	flags := os.O_RDONLY
	if direct {
		flags |= unix.O_DIRECT
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil && direct {
		f, err = os.Open(path) // no O_DIRECT here (tmpfs)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		_, err := f.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// cachedReadFloor reads path once untimed, to bring it into the page cache,
// then times reading it again.
func cachedReadFloor(path string, buf []byte) (time.Duration, error) {
	if err := readFloor(path, buf, false); err != nil {
		return 0, err
	}
	return onThread(func() error { return readFloor(path, buf, false) })
}

// tcpFloor sends n bytes through a loopback TCP connection in 1 MiB writes
// and reads them in 1 MiB reads, and returns each side's thread CPU.
func tcpFloor(buf []byte, n int64) (send, recv time.Duration, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer ln.Close()
	var wg sync.WaitGroup
	var recvErr error
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			recvErr = err
			return
		}
		defer c.Close()
		rbuf := make([]byte, len(buf))
		recv, recvErr = onThread(func() error {
			_, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, rbuf)
			return err
		})
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, 0, err
	}
	send, err = onThread(func() error {
		for left := n; left > 0; left -= int64(len(buf)) {
			if _, err := c.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				return err
			}
		}
		return nil
	})
	c.Close()
	wg.Wait()
	if err == nil {
		err = recvErr
	}
	return send, recv, err
}

// bytesWriter and byteReader keep the age sample in memory without the
// bytes package's growth policy getting in the way of the timing.
type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

type byteReader struct {
	b   []byte
	off int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}
