package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/lexgate/lexgate/certs"
	"github.com/lexgate/lexgate/cli"
	"github.com/lexgate/lexgate/gateway/api"

	"github.com/lexgate/lexgate/cmd/internal/benchkit"
)

// The dev PKI's identities: alice sends, the review team receives.
const (
	alice     = "spiffe://harbor-law.example/paralegal/alice"
	team      = "spiffe://manila-lpo.example/site/review-team"
	gatewayID = "spiffe://harbor-law.example/gateway"
)

// bundle is the age ciphertext one class sends, over and over: every transfer
// has its own signed manifest (its own nonce), so each is a distinct transfer.
type bundle struct {
	f    *os.File
	size int64
	sum  string
}

// rig is everything the senders and receivers share.
type rig struct {
	o     *options
	dir   string
	pki   string
	be    *backend
	svid  *x509svid.SVID
	log   io.Writer
	queue map[string]chan string // class name → transfers to receive
	dials atomic.Int64           // clients dialled: each starts at the next replica
}

// load runs the load against each backend of o in turn and returns their
// reports (those done when it fails).
func load(ctx context.Context, o *options, log io.Writer) ([]*report, error) {
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "lexload-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !o.keepOnExit {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The database servers run as their own users (as root): they must
	// reach the directories inside.
	os.Chmod(dir, 0o711)
	pki := filepath.Join(dir, "pki")
	if err := certs.MintDev(pki, certs.DefaultDevSpec()); err != nil {
		return nil, fmt.Errorf("mint dev PKI: %w", err)
	}
	var rs []*report
	for _, kind := range o.backends {
		r, err := loadOn(ctx, o, kind, dir, pki, log)
		if err != nil {
			return rs, fmt.Errorf("%s: %w", kind, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// loadOn runs the load against one backend.
func loadOn(ctx context.Context, o *options, kind, dir, pki string, log io.Writer) (*report, error) {
	rg := &rig{o: o, dir: filepath.Join(dir, kind), pki: pki, log: log}
	var err error
	if rg.svid, err = certs.LoadSVID(rg.svidFiles(alice)); err != nil {
		return nil, err
	}
	be, err := startBackend(ctx, o, kind, dir, pki, log)
	if err != nil {
		return nil, err
	}
	rg.be = be
	defer func() {
		if err := be.close(); err != nil {
			fmt.Fprintf(log, "lexload: stopping the %s backend: %v\n", kind, err)
		}
	}()
	r := &report{o: o, backend: kind, pooled: be.pooled}
	for i, g := range be.gws {
		fmt.Fprintf(log, "lexload: %s: %s pid %d on %s, work directory %s\n", kind, be.names[i], g.pid(), g.addr, dir)
		gr := &gatewayReport{name: be.names[i], pid: g.pid()}
		if gr.fdsBefore, err = countFDs(g.pid(), be.data[i], be.spool); err != nil {
			return nil, err
		}
		r.gateways = append(r.gateways, gr)
	}
	if err := rg.run(ctx, r); err != nil {
		return nil, err
	}
	// Every client has gone: give the gateways a moment to see their connections close.
	for i, g := range be.gws {
		gr := r.gateways[i]
		gr.fdsAfter, _ = countFDs(g.pid(), be.data[i], be.spool)
		for deadline := time.Now().Add(10 * time.Second); gr.fdsAfter.leaks(gr.fdsBefore, !be.pooled) && time.Now().Before(deadline); {
			time.Sleep(250 * time.Millisecond)
			gr.fdsAfter, _ = countFDs(g.pid(), be.data[i], be.spool)
		}
		gr.hwm, _ = benchkit.ProcStatus(g.pid(), "VmHWM")
	}
	r.spoolFiles, r.spoolBytes = spoolUse(be.spool)
	for i, g := range be.gws {
		if err := g.stop(); err != nil {
			fmt.Fprintf(log, "lexload: %s stop: %v\n", be.names[i], err)
		}
	}
	return r, nil
}

// queueBytes bounds the finished transfers of one class waiting for a receiver.
const queueBytes = 1 << 30

// run starts the receivers and senders, stops the senders after the duration,
// drains the receivers, and closes every client.
func (rg *rig) run(ctx context.Context, r *report) error {
	key, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	teamClient, err := rg.dial(ctx, team)
	if err != nil {
		return err
	}
	if err := teamClient.RegisterKeys(ctx, []string{key.Recipient().String()}); err != nil {
		teamClient.Close()
		return fmt.Errorf("register the team's key: %w", err)
	}
	teamClient.Close()
	bundles := map[string]*bundle{}
	for _, c := range []class{rg.o.small, rg.o.large} {
		if c.senders == 0 {
			continue
		}
		b, err := makeBundle(filepath.Join(rg.dir, c.name+".age"), c.size, key.Recipient())
		if err != nil {
			return err
		}
		defer b.f.Close()
		bundles[c.name] = b
	}

	// Clients first, so that the run measures transfers, not handshakes.
	type sender struct {
		c     class
		b     *bundle
		s     *stats
		cl    *cli.Client
		queue chan string
	}
	var senders []sender
	var clients []*cli.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	rg.queue = map[string]chan string{}
	for _, c := range []class{rg.o.small, rg.o.large} {
		st := r.class(c)
		// A bounded queue: senders wait for receivers rather than fill the disk
		// (at most about queueBytes of finished transfers wait per class).
		rg.queue[c.name] = make(chan string, max(2, min(4096, queueBytes/c.size)))
		for range c.senders {
			cl, err := rg.dial(ctx, alice)
			if err != nil {
				return err
			}
			clients = append(clients, cl)
			senders = append(senders, sender{c: c, b: bundles[c.name], s: st, cl: cl, queue: rg.queue[c.name]})
		}
	}
	recv := &r.recv
	var rwg sync.WaitGroup
	for range rg.o.receivers {
		cl, err := rg.dial(ctx, team)
		if err != nil {
			return err
		}
		clients = append(clients, cl)
		rwg.Go(func() { rg.receive(cl, bundles, recv) })
	}
	fmt.Fprintf(rg.log, "lexload: %d senders and %d receivers connected; sending for %v\n", len(senders), rg.o.receivers, rg.o.duration)

	runCtx, cancel := context.WithTimeout(ctx, rg.o.duration)
	defer cancel()
	start := time.Now()
	var swg sync.WaitGroup
	for _, s := range senders {
		swg.Go(func() { rg.send(runCtx, s.cl, s.b, s.s, s.queue) })
	}
	swg.Wait()
	r.elapsed = time.Since(start)
	for _, q := range rg.queue {
		close(q)
	}
	rwg.Wait()
	return nil
}

func (rg *rig) svidFiles(id string) (string, string) {
	td, path, _ := strings.Cut(strings.TrimPrefix(id, "spiffe://"), "/")
	base := filepath.Join(rg.pki, td, strings.ReplaceAll(path, "/", "-"))
	return base + ".crt", base + ".key"
}

// dial connects a client as id, given every gateway's address, starting
// at the next one in turn: the clients spread over a cluster's replicas.
func (rg *rig) dial(ctx context.Context, id string) (*cli.Client, error) {
	cert, key := rg.svidFiles(id)
	addrs := rg.be.addrs()
	n := int(rg.dials.Add(1)-1) % len(addrs)
	addrs = append(addrs[n:], addrs[:n]...)
	cfg := &cli.Config{Gateway: strings.Join(addrs, ","), GatewayID: gatewayID, SVIDCert: cert, SVIDKey: key,
		Bundles: map[string]string{
			"harbor-law.example": filepath.Join(rg.pki, "harbor-law.example", "bundle.pem"),
			"manila-lpo.example": filepath.Join(rg.pki, "manila-lpo.example", "bundle.pem"),
		}, LogKey: rg.be.gws[0].logKey, Path: filepath.Join(rg.dir, "lex.yaml")}
	c, err := cli.Dial(ctx, cfg, rg.o.transport, nil)
	if err != nil {
		return nil, fmt.Errorf("dial the gateway as %s: %w", id, err)
	}
	return c, nil
}

// makeBundle age-encrypts size random bytes to recipient into path.
func makeBundle(path string, size int64, recipient age.Recipient) (*bundle, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	w, err := age.Encrypt(io.MultiWriter(f, h), recipient)
	if err != nil {
		f.Close()
		return nil, err
	}
	if _, err := io.CopyN(w, rand.Reader, size); err != nil {
		f.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &bundle{f: f, size: fi.Size(), sum: hex.EncodeToString(h.Sum(nil))}, nil
}

// send loops until ctx ends: create a transfer for b, upload it, hand it to the
// receivers. A transfer the end of the run cuts is counted as cut, not failed.
func (rg *rig) send(ctx context.Context, c *cli.Client, b *bundle, st *stats, queue chan<- string) {
	for ctx.Err() == nil {
		start := time.Now()
		id, err := rg.sendOne(ctx, c, b)
		switch {
		case ctx.Err() != nil:
			st.cut()
			return
		case err != nil:
			st.fail(err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		st.done(time.Since(start))
		select {
		case queue <- id:
		case <-ctx.Done():
			// Not received in this run: the spool keeps it, the report counts it.
			st.unreceived()
			return
		}
	}
}

func (rg *rig) sendOne(ctx context.Context, c *cli.Client, b *bundle) (string, error) {
	sm, err := api.Sign(api.Manifest{Sender: alice, Recipients: []string{team}, Matter: "HL-2026-0042",
		Labels: []string{"privileged"}, FileCount: 1, PlaintextSize: b.size, CiphertextSize: b.size,
		CiphertextSHA256: b.sum}, rg.svid.PrivateKey, rg.svid.Certificates)
	if err != nil {
		return "", err
	}
	t, err := c.CreateTransfer(ctx, sm)
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	for off := int64(0); off < b.size; {
		n := min(rg.o.chunk, b.size-off)
		next, err := c.UploadChunk(ctx, t.ID, off, io.NewSectionReader(b.f, off, n), n)
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeConflict {
			next = ae.Offset
		} else if err != nil {
			return "", fmt.Errorf("upload %s at %d: %w", t.ID, off, err)
		}
		off = next
	}
	return t.ID, nil
}

// receive downloads each queued transfer, checks its SHA-256, and acknowledges it.
func (rg *rig) receive(c *cli.Client, bundles map[string]*bundle, st *recvStats) {
	small, large := rg.queue[rg.o.small.name], rg.queue[rg.o.large.name]
	for small != nil || large != nil {
		var id string
		var b *bundle
		var ok bool
		select {
		case id, ok = <-small:
			if !ok {
				small = nil
				continue
			}
			b = bundles[rg.o.small.name]
		case id, ok = <-large:
			if !ok {
				large = nil
				continue
			}
			b = bundles[rg.o.large.name]
		}
		st.add(rg.receiveOne(c, id, b))
	}
}

func (rg *rig) receiveOne(c *cli.Client, id string, b *bundle) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	body, _, err := c.Download(ctx, id, 0)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(h, body)
	body.Close()
	if err != nil {
		return fmt.Errorf("download %s: %w", id, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.sum {
		return fmt.Errorf("download %s: SHA-256 %s, sent %s", id, got, b.sum)
	}
	if err := c.Ack(ctx, id); err != nil {
		return fmt.Errorf("ack %s: %w", id, err)
	}
	return nil
}
