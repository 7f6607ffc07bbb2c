package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lexgate/lexgate/gateway/api"
)

// Parallel uploads. On a long lossy path one TCP connection's congestion
// window caps what it carries, so a large bundle for a far gateway goes up as
// several ranges at once over separate connections, into the same resumable
// transfer; the gateway reassembles them by offset. The first 256 KiB (the
// age header, which the gateway checks before it keeps a byte) goes first,
// alone.
// The ranges are read from the spool, which the encryption fills as it goes: a
// range leaves once the spool holds it. Each range is retried on its own; a
// resumed send asks the gateway which ranges it holds and sends only the rest.
// Near gateways (loopback, LAN) and small bundles keep the single stream: one
// connection fills such a link, and parallel ranges would only add work.

// headSize is the first range, sent alone before the others: it must carry
// the whole age header, which the gateway bounds at 256 KiB
// (agecheck.MaxHeaderSize). It is no larger, so that it crosses a cold
// connection in few round trips.
const headSize = 256 << 10

// uploadStreams is how many ranges to upload at once, of left bytes, and why:
// --streams when given, else what a download of as many bytes from a gateway
// that replies in reply would use (downloadStreams), over TCP only: the streams
// of a QUIC connection share one congestion controller.
func (s *sender) uploadStreams(left int64, reply time.Duration) (int, string) {
	switch n := downloadStreams(left, s.o.streams, reply); {
	case s.o.streams > 0:
		return n, "--streams"
	case s.c.BulkTransport() != TransportTCP:
		return 1, "QUIC streams share one congestion controller"
	case left < parallelMin:
		return 1, fmt.Sprintf("%s to send, less than %s", humanSize(left), humanSize(parallelMin))
	case n == 1:
		return 1, fmt.Sprintf("the gateway is near (replied in %v)", reply.Round(time.Millisecond))
	default:
		return n, fmt.Sprintf("the gateway is far (replied in %v) and %s remain", reply.Round(time.Millisecond), humanSize(left))
	}
}

// UploadProgress asks how much of transfer id the gateway holds durably: the
// contiguous prefix and the ranges of a parallel upload beyond it.
func (c *Client) UploadProgress(ctx context.Context, id string) (int64, []api.Span, error) {
	req, err := c.newRequest(ctx, http.MethodHead, transferPath(id, "/content"), nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, nil, err
	}
	resp.Body.Close()
	return progressHeaders(resp)
}

// UploadRange sends bytes [off, end) of transfer id's ciphertext from body, one
// range of a parallel upload, over the bulk transport, and returns what the
// gateway holds afterwards.
func (c *Client) UploadRange(ctx context.Context, id string, off, end int64, body io.Reader) (int64, []api.Span, error) {
	req, err := c.newRequest(ctx, http.MethodPatch, transferPath(id, "/content"), body)
	if err != nil {
		return 0, nil, err
	}
	req.ContentLength = end - off
	req.Header.Set("Content-Type", api.ContentTypeChunk)
	req.Header.Set(api.HeaderUploadOffset, strconv.FormatInt(off, 10))
	req.Header.Set(api.HeaderUploadRangeEnd, strconv.FormatInt(end, 10))
	resp, err := c.doWith(c.bulk, req)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	return progressHeaders(resp)
}

// warmBulk opens up to n more bulk connections to the gateway, each with a HEAD
// of transfer id's content, and closes the returned channel when they are done,
// idle in the pool. Failures are ignored: the ranges dial again.
func (c *Client) warmBulk(ctx context.Context, id string, n int) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, err := c.newRequest(ctx, http.MethodHead, transferPath(id, "/content"), nil)
			if err != nil {
				return
			}
			if resp, err := c.doWith(c.bulk, req); err == nil {
				resp.Body.Close()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

func progressHeaders(resp *http.Response) (int64, []api.Span, error) {
	off, err := offsetHeader(resp)
	if err != nil {
		return 0, nil, err
	}
	spans, err := api.ParseSpans(resp.Header.Get(api.HeaderUploadRanges))
	if err != nil {
		return 0, nil, fmt.Errorf("gateway sent a bad header: %w", err)
	}
	return off, spans, nil
}

// missing returns the spans of [0, size) that neither the prefix [0, off) nor
// held covers.
func missing(size, off int64, held []api.Span) []api.Span {
	var out []api.Span
	at := off
	for _, h := range held {
		if h.Start > at {
			out = append(out, api.Span{Start: at, End: min(h.Start, size)})
		}
		at = max(at, h.End)
	}
	if at < size {
		out = append(out, api.Span{Start: at, End: size})
	}
	return out
}

// split cuts spans into pieces of at most step bytes.
func split(spans []api.Span, step int64) []api.Span {
	var out []api.Span
	for _, sp := range spans {
		for a := sp.Start; a < sp.End; a += step {
			out = append(out, api.Span{Start: a, End: min(a+step, sp.End)})
		}
	}
	return out
}

// spoolWatch follows how much of the spool file the encryption has written,
// so that ranges can leave as soon as the spool holds them.
type spoolWatch struct {
	mu      sync.Mutex
	n       int64         // bytes [0, n) are in the file
	done    bool          // the spool is complete, or failed (err)
	err     error         //
	changed chan struct{} // closed and replaced at every change
}

func newSpoolWatch() *spoolWatch { return &spoolWatch{changed: make(chan struct{})} }

// complete returns a watch of a spool written already, of size bytes.
func completeSpool(size int64) *spoolWatch {
	w := newSpoolWatch()
	w.finish(size, nil)
	return w
}

func (w *spoolWatch) set(n int64, done bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n, w.done, w.err = max(w.n, n), w.done || done, err
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *spoolWatch) finish(n int64, err error) { w.set(n, true, err) }

// relay hands the blocks of in on to the spool writer (spoolBlocks), one at a
// time: when the writer takes a block it has written the one before, so the
// watch advances past it.
func (w *spoolWatch) relay(in <-chan *block) <-chan *block {
	out := make(chan *block)
	go func() {
		defer close(out)
		var before int64
		for b := range in {
			n := int64(len(b.buf)) // b may be reused once the writer releases it
			out <- b
			w.set(before, false, nil)
			before += n
		}
	}()
	return out
}

// follow returns the spool writer's result channel, marking the watch
// complete (at size, or failed) when the writer finishes.
func (w *spoolWatch) follow(spooled <-chan error, size int64) <-chan error {
	out := make(chan error, 1)
	go func() {
		err := <-spooled
		if err != nil {
			w.finish(0, fmt.Errorf("spool: %w", err))
		} else {
			w.finish(size, nil)
		}
		out <- err
	}()
	return out
}

// wait returns once the spool holds bytes [0, end), or with the spool's error
// or ctx's.
func (w *spoolWatch) wait(ctx context.Context, end int64) error {
	for {
		w.mu.Lock()
		n, done, err, ch := w.n, w.done, w.err, w.changed
		w.mu.Unlock()
		switch {
		case err != nil:
			return err
		case n >= end:
			return nil
		case done:
			return fmt.Errorf("spool: %d bytes, the upload needs %d", n, end)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// uploadRanges uploads what the gateway does not hold of transfer id (prefix
// off, ranges held beyond it) from the spool, whose progress w follows, as
// ranges over streams connections at once: the first headSize bytes alone
// first if the gateway holds nothing yet. On return without error the gateway holds every
// byte. bar says whether to draw a progress bar (a send that is encrypting
// draws its own).
func (s *sender) uploadRanges(ctx context.Context, id, spool string, w *spoolWatch, size, off int64, held []api.Span, streams int, bar bool) error {
	f, err := os.Open(spool)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	var (
		p  io.Writer = io.Discard
		pb *progress // nil without a bar
	)
	if bar {
		pb = newProgress(s.e.stderr, "uploading", size, size-spanBytes(missing(size, off, held)))
		defer pb.done()
		p = pb
	}
	ru := &rangeUpload{s: s, id: id, f: f, w: w, size: size, p: p}
	if off == 0 {
		// While the head goes, the other connections are dialled (TCP and TLS
		// handshakes take two round trips), so the ranges start on warm ones.
		warmed := s.c.warmBulk(ctx, id, streams-1)
		head := api.Span{Start: 0, End: min(headSize, size)}
		err := ru.send(ctx, head)
		<-warmed
		if err != nil {
			return err
		}
	}
	todo := missing(size, ru.prefix(off), ru.heldOr(held))
	step := rangeSize(spanBytes(todo), streams)
	spans := split(todo, step)
	streams = min(streams, len(spans))
	s.e.verbosef("upload: %d parallel ranges of up to %s over %s (%d requests), %s of %s left",
		streams, humanSize(step), s.c.BulkTransport(), len(spans), humanSize(spanBytes(todo)), humanSize(size))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range streams {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(spans) || ctx.Err() != nil {
					return
				}
				if err := ru.send(ctx, spans[i]); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if got := ru.prefix(0); got != size {
		return fmt.Errorf("upload of %s: every range is up, but the gateway holds %d of %d bytes", id, got, size)
	}
	pb.complete()
	return nil
}

func spanBytes(spans []api.Span) int64 {
	var n int64
	for _, s := range spans {
		n += s.End - s.Start
	}
	return n
}

// rangeUpload is one parallel upload in progress.
type rangeUpload struct {
	s    *sender
	id   string
	f    *os.File // the spool
	w    *spoolWatch
	size int64
	p    io.Writer // progress

	mu   sync.Mutex
	off  int64      // the highest prefix the gateway reported
	held []api.Span // the ranges it reported with it
	seen bool       // off and held come from the gateway
}

// note records what the gateway reported holding.
func (ru *rangeUpload) note(off int64, held []api.Span) {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if off >= ru.off {
		ru.off, ru.held, ru.seen = off, held, true
	}
}

func (ru *rangeUpload) prefix(def int64) int64 {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if !ru.seen {
		return def
	}
	return ru.off
}

func (ru *rangeUpload) heldOr(def []api.Span) []api.Span {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if !ru.seen {
		return def
	}
	return ru.held
}

// send uploads span once the spool holds it, retrying after network errors:
// each retry asks the gateway what it holds of the span and sends only the rest.
// A reply that does not cover its range (the gateway writes every byte of a
// range it answers, so this would be a fault) is retried the same way.
func (ru *rangeUpload) send(ctx context.Context, span api.Span) error {
	if err := ru.w.wait(ctx, span.End); err != nil {
		return err
	}
	todo := []api.Span{span}
	r := retrier{c: ru.s.c, what: fmt.Sprintf("upload of %s, bytes %d-%d", ru.id, span.Start, span.End-1)}
	for {
		err := ru.sendAll(ctx, todo)
		if err == nil {
			return nil
		}
		if !r.again(ctx, err) {
			return fmt.Errorf("upload of %s, bytes %d-%d: %w", ru.id, span.Start, span.End-1, err)
		}
		off, held, perr := ru.s.c.UploadProgress(ctx, ru.id)
		if perr != nil {
			continue // send the same again
		}
		ru.note(off, held)
		todo = within(span, missing(ru.size, off, held))
		if len(todo) == 0 {
			return nil
		}
	}
}

// within is the parts of spans inside span.
func within(span api.Span, spans []api.Span) []api.Span {
	var out []api.Span
	for _, m := range spans {
		if a, b := max(m.Start, span.Start), min(m.End, span.End); a < b {
			out = append(out, api.Span{Start: a, End: b})
		}
	}
	return out
}

// sendAll sends each of spans as one range request, in turn. A reply that
// does not cover its range is an error.
func (ru *rangeUpload) sendAll(ctx context.Context, spans []api.Span) error {
	for _, sp := range spans {
		body := ru.s.counted(io.TeeReader(io.NewSectionReader(ru.f, sp.Start, sp.End-sp.Start), ru.p))
		off, held, err := ru.s.c.UploadRange(ctx, ru.id, sp.Start, sp.End, body)
		if err != nil {
			return err
		}
		ru.note(off, held)
		if lack := within(sp, missing(ru.size, off, held)); off < ru.size && len(lack) > 0 {
			return fmt.Errorf("the gateway answered bytes %d-%d without holding %s of them", sp.Start, sp.End-1, humanSize(spanBytes(lack)))
		}
	}
	return nil
}

// streamsPhrase says how an upload went: "a single upload stream" or "4
// parallel range streams".
func streamsPhrase(n int) string {
	if n == 1 {
		return "a single upload stream"
	}
	return fmt.Sprintf("%d parallel range streams", n)
}

// lockedWriter serialises writes to w, so that lines written from several
// goroutines (the workers of a parallel upload, the encryption) do not race
// on a writer that is not safe for concurrent use, as an *os.File is.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
