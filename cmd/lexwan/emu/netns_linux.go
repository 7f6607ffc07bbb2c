package emu

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// The addresses of the two ends, from the range set aside for benchmarks
// (RFC 2544).
var (
	AddrA = netip.MustParseAddr("198.18.0.1")
	AddrB = netip.MustParseAddr("198.18.0.2")
)

// TxQueueLen is the TUN devices' transmit queue: the kernel's default of 500
// drops packets whenever the forwarder is starved of CPU for a moment.
const TxQueueLen = 10000

// devName is the TUN device's name in both namespaces.
const devName = "lexwan0"

// Netns is a network namespace made by Setup, with one end of the link.
type Netns struct {
	Name string     // as ip-netns(8) knows it
	Addr netip.Addr // its end of the link
}

// Command returns a command that runs name with args inside the namespace
// (through "ip netns exec").
func (n Netns) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Do runs fn on an OS thread moved into the namespace, so the sockets fn opens
// live there (they may be used from any goroutine afterwards). The thread is
// never handed back to the Go scheduler: it exits when fn returns.
func (n Netns) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // and never unlock: the thread ends with this goroutine
		f, err := os.Open("/run/netns/" + n.Name)
		if err != nil {
			errc <- fmt.Errorf("emu: netns %s: %w", n.Name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("emu: entering netns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Path is two network namespaces, A and B, joined by a Link.
type Path struct {
	A, B Netns
	*Link
}

// Setup makes the namespaces prefix-a and prefix-b (removing leftovers of an
// earlier run of the same name), a TUN device in each with AddrA and AddrB, and
// the Link between them with conditions ab (A→B) and ba (B→A). Close undoes it all.
func Setup(ctx context.Context, prefix string, ab, ba Params) (_ *Path, err error) {
	p := &Path{A: Netns{prefix + "-a", AddrA}, B: Netns{prefix + "-b", AddrB}}
	var devs []*os.File
	defer func() {
		if err != nil {
			for _, f := range devs {
				f.Close()
			}
			p.removeNetns()
		}
	}()
	for _, n := range []Netns{p.A, p.B} {
		_ = ip(ctx, "netns", "del", n.Name) // a leftover of a killed run
		if err := ip(ctx, "netns", "add", n.Name); err != nil {
			return nil, err
		}
		var dev *os.File
		if err := n.Do(func() (err error) { dev, err = openTUN(devName); return err }); err != nil {
			return nil, err
		}
		devs = append(devs, dev)
		peer := AddrB
		if n.Addr == AddrB {
			peer = AddrA
		}
		for _, args := range [][]string{
			{"link", "set", "dev", "lo", "up"},
			{"addr", "add", n.Addr.String(), "peer", peer.String(), "dev", devName},
			{"link", "set", "dev", devName, "mtu", fmt.Sprint(mtu), "txqueuelen", fmt.Sprint(TxQueueLen), "up"},
		} {
			if err := ip(ctx, append([]string{"-n", n.Name}, args...)...); err != nil {
				return nil, err
			}
		}
	}
	p.Link = NewLink(devs[0], devs[1], ab, ba)
	return p, nil
}

// Close stops the link and removes both namespaces.
func (p *Path) Close() error {
	return errors.Join(p.Link.Close(), p.removeNetns())
}

func (p *Path) removeNetns() error {
	var errs []error
	for _, n := range []Netns{p.A, p.B} {
		if err := ip(context.Background(), "netns", "del", n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Sysctl sets a sysctl inside the namespace, e.g. "net.ipv4.tcp_congestion_control".
func (n Netns) Sysctl(name, value string) error {
	return n.Do(func() error {
		path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("emu: sysctl %s in %s: %w", name, n.Name, err)
		}
		return nil
	})
}

// openTUN creates the TUN device name (IP packets without a header) in the
// calling thread's network namespace, in non-blocking mode for the Go poller.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("emu: /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("emu: TUN %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("emu: creating TUN %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tun:"+name), nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("emu: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
