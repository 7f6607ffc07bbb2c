package emu

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Probe is what Measure saw of the path: round trips of small UDP packets
// echoed from the other end.
type Probe struct {
	Sent, Received int
	Min, Median    time.Duration // round-trip times
	P99            time.Duration
}

// Loss is the fraction of probes that did not come back: about twice the
// one-way loss when both directions drop.
func (p Probe) Loss() float64 {
	if p.Sent == 0 {
		return 0
	}
	return 1 - float64(p.Received)/float64(p.Sent)
}

func (p Probe) String() string {
	return fmt.Sprintf("RTT min %v median %v p99 %v, %d/%d back (%.2f%% lost)",
		p.Min.Round(10*time.Microsecond), p.Median.Round(10*time.Microsecond), p.P99.Round(10*time.Microsecond),
		p.Received, p.Sent, 100*p.Loss())
}

// probeWait is how long a probe may take to come back before it counts as lost.
const probeWait = 2 * time.Second

// probeSize is a probe's UDP payload: sequence number and send time, padded.
const probeSize = 64

// Measure sends n UDP probes from client to an echo server in server, one every
// interval, and measures their round trips.
func Measure(ctx context.Context, client, server Netns, n int, interval time.Duration) (Probe, error) {
	var srv *net.UDPConn
	if err := server.Do(func() (err error) {
		srv, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(server.Addr, 0)))
		return err
	}); err != nil {
		return Probe{}, fmt.Errorf("emu: echo server: %w", err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	var c *net.UDPConn
	if err := client.Do(func() (err error) {
		c, err = net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		return Probe{}, fmt.Errorf("emu: probe client: %w", err)
	}
	defer c.Close()

	start := time.Now()
	sendErr := make(chan error, 1)
	var sent atomic.Bool
	go func() {
		defer sent.Store(true)
		buf := make([]byte, probeSize)
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := range n {
			binary.BigEndian.PutUint64(buf, uint64(i))
			binary.BigEndian.PutUint64(buf[8:], uint64(time.Since(start)))
			if _, err := c.Write(buf); err != nil {
				sendErr <- err
				return
			}
			select {
			case <-ctx.Done():
				sendErr <- ctx.Err()
				return
			case <-t.C:
			}
		}
		sendErr <- nil
	}()
	seen := make([]bool, n)
	var rtts []time.Duration
	buf := make([]byte, 2048)
	// Wait for each probe at most probeWait after the last one was sent.
	for len(rtts) < n {
		c.SetReadDeadline(time.Now().Add(probeWait))
		k, err := c.Read(buf)
		if err != nil {
			if sent.Load() {
				break // the rest is lost
			}
			continue
		}
		if k != probeSize {
			continue
		}
		seq := binary.BigEndian.Uint64(buf)
		if seq >= uint64(n) || seen[seq] {
			continue
		}
		seen[seq] = true
		rtts = append(rtts, time.Since(start)-time.Duration(binary.BigEndian.Uint64(buf[8:])))
	}
	if err := <-sendErr; err != nil {
		return Probe{}, fmt.Errorf("emu: sending probes: %w", err)
	}
	p := Probe{Sent: n, Received: len(rtts)}
	if len(rtts) > 0 {
		slices.Sort(rtts)
		p.Min, p.Median, p.P99 = rtts[0], rtts[len(rtts)/2], rtts[len(rtts)*99/100]
	}
	return p, nil
}
