package cli

import (
	"context"
	"errors"
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

// Parallel downloads. On a long lossy path one connection's congestion window
// caps what it carries (it halves on loss, or waits for the path's RTT), so a
// large ciphertext is fetched as several HTTP Range requests at once: separate
// TCP connections over the bulk transport, or separate QUIC streams. Each range
// is written at its offset in a reassembly file, and the pipeline reads the
// longest prefix that arrived whole as it grows; the file is removed at the
// end, and a later run resumes from the pipeline's checkpoint (resume.go).
const (
	// parallelMin is the least left to fetch for ranges to pay off.
	parallelMin = 32 << 20
	// defaultStreams is how many ranges are fetched at once by default.
	defaultStreams = 4
	// maxRange bounds one range request.
	maxRange = 64 << 20
)

// minRange is the smallest range requested (a variable for tests).
var minRange int64 = 8 << 20

// nearRTT is the reply time below which the gateway counts as near (a LAN or
// loopback): one connection fills such a link, and parallel ranges would only
// add work.
const nearRTT = 40 * time.Millisecond

// downloadStreams is how many parallel ranges to fetch of left bytes, given how
// long a small request to the gateway took: want (from --streams) when set, else
// defaultStreams for large downloads from a far gateway, else 1.
func downloadStreams(left int64, want int, reply time.Duration) int {
	switch {
	case want > 0:
		return want
	case left < parallelMin || reply < nearRTT:
		return 1
	}
	return defaultStreams
}

// rangeSize splits left bytes into about two equal ranges per stream, so a
// stream that finishes early takes another while a slow one completes.
func rangeSize(left int64, streams int) int64 {
	step := min(max(left/int64(2*streams), minRange), maxRange)
	n := (left + step - 1) / step
	return (left + n - 1) / n
}

// DownloadRange requests bytes [off, end) of a transfer's ciphertext. The reply
// must be a 206 for exactly that range.
func (c *Client) DownloadRange(ctx context.Context, id string, off, end int64) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, http.MethodGet, transferPath(id, "/content"), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(api.HeaderIntegrity, api.IntegrityRecipient) // see Download
	want := "bytes " + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(end-1, 10) + "/"
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(end-1, 10))
	resp, err := c.doWith(c.bulk, req)
	if err != nil {
		return nil, err
	}
	if cr := resp.Header.Get("Content-Range"); resp.StatusCode != http.StatusPartialContent || len(cr) < len(want) || cr[:len(want)] != want {
		resp.Body.Close()
		return nil, fmt.Errorf("download %s: asked for bytes %d-%d, the gateway answered %s %q", id, off, end-1, resp.Status, cr)
	}
	return resp.Body, nil
}

// followRanges fetches off to size as parallel ranges written into f at their
// offsets, and pumps the longest whole prefix of f as it grows.
func (r *receiver) followRanges(ctx context.Context, p *pump, f *os.File, id string, off, size int64, streams int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fr := newRangeFetch(off, size, streams)
	r.e.verbosef("download: %d parallel ranges of up to %s over %s (%d requests), from byte %d of %d",
		fr.streams, humanSize(fr.step), r.c.BulkTransport(), len(fr.spans), off, size)
	bar := newProgress(r.e.stderr, "receiving", size, off)
	defer bar.done()
	start := time.Now()
	var wg sync.WaitGroup
	for range fr.streams {
		wg.Go(func() {
			buf := make([]byte, copyBufSize)
			for {
				i := int(fr.next.Add(1) - 1)
				if i >= len(fr.spans) || ctx.Err() != nil {
					return
				}
				if err := r.fetchRangeRetrying(ctx, f, id, &fr.spans[i], buf, bar, fr.notify); err != nil {
					fr.fail(err)
					cancel()
					return
				}
			}
		})
	}
	read, err := os.Open(f.Name())
	if err == nil {
		err = p.from(&prefixFollower{ctx: ctx, f: read, pos: off, size: size, fr: fr}, nil)
		read.Close()
	}
	cancel()
	wg.Wait()
	if err == nil {
		r.e.verbosef("downloaded %d bytes in %v (%.0f MB/s over %d %s ranges)", size-off, time.Since(start).Round(time.Millisecond),
			mbps(size-off, time.Since(start)), fr.streams, r.c.BulkTransport())
		return nil
	}
	if ferr := fr.err(); ferr != nil {
		err = ferr
	}
	return err
}

// span is one range of a parallel download and the bytes of it written so far.
type span struct {
	start, end int64
	written    atomic.Int64
}

// rangeFetch is the shared state of a parallel download.
type rangeFetch struct {
	spans   []span
	step    int64
	streams int
	next    atomic.Int64
	notify  chan struct{} // a range grew
	mu      sync.Mutex
	first   error
	failed  chan struct{} // closed on the first failure
}

func newRangeFetch(off, size int64, streams int) *rangeFetch {
	step := rangeSize(size-off, streams)
	n := int((size - off + step - 1) / step)
	fr := &rangeFetch{spans: make([]span, n), step: step, notify: make(chan struct{}, 1), failed: make(chan struct{})}
	for i := range fr.spans {
		s := off + int64(i)*step
		fr.spans[i].start, fr.spans[i].end = s, min(s+step, size)
	}
	fr.streams = min(streams, n)
	return fr
}

func (fr *rangeFetch) fail(err error) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.first == nil {
		fr.first = err
		close(fr.failed)
	}
}

func (fr *rangeFetch) err() error {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.first
}

// whole is the end of the longest prefix written whole.
func (fr *rangeFetch) whole() int64 {
	for i := range fr.spans {
		s := &fr.spans[i]
		if w := s.written.Load(); s.start+w < s.end {
			return s.start + w
		}
	}
	return fr.spans[len(fr.spans)-1].end
}

// fetchRangeRetrying downloads sp into f, asking again for what is missing when
// a request breaks, up to uploadAttempts times.
func (r *receiver) fetchRangeRetrying(ctx context.Context, f *os.File, id string, sp *span, buf []byte, bar *progress, notify chan<- struct{}) error {
	for failures := 0; ; failures++ {
		err := r.fetchRange(ctx, f, id, sp, buf, bar, notify)
		var ae *api.Error
		if err == nil || ctx.Err() != nil || failures >= uploadAttempts || errors.As(err, &ae) || handshakeError(err) != nil {
			return err
		}
		select {
		case <-time.After(time.Duration(failures+1) * 500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fetchRange downloads what is missing of sp into f at its offset, counting
// the bytes written in sp and signalling notify as they land.
func (r *receiver) fetchRange(ctx context.Context, f *os.File, id string, sp *span, buf []byte, bar *progress, notify chan<- struct{}) error {
	start := sp.start + sp.written.Load()
	body, err := r.c.DownloadRange(ctx, id, start, sp.end)
	if err != nil {
		return err
	}
	defer body.Close()
	pos := start
	for pos < sp.end {
		n, err := io.ReadFull(body, buf[:min(int64(len(buf)), sp.end-pos)])
		if n > 0 {
			if _, werr := f.WriteAt(buf[:n], pos); werr != nil {
				return werr
			}
			pos += int64(n)
			sp.written.Add(int64(n))
			bar.Write(buf[:n])
			select {
			case notify <- struct{}{}:
			default:
			}
		}
		if err != nil && pos < sp.end {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return fmt.Errorf("download %s: got %d bytes of range %d-%d", id, pos-sp.start, sp.start, sp.end-1)
			}
			return err
		}
	}
	return nil
}

// prefixFollower reads f from pos to size, waiting for the parallel ranges to
// write each byte before it reads it.
type prefixFollower struct {
	ctx       context.Context
	f         *os.File
	pos, size int64
	fr        *rangeFetch
}

func (pf *prefixFollower) Read(p []byte) (int, error) {
	if pf.pos >= pf.size {
		return 0, io.EOF
	}
	for {
		if avail := pf.fr.whole(); avail > pf.pos {
			n, err := pf.f.ReadAt(p[:min(int64(len(p)), avail-pf.pos)], pf.pos)
			pf.pos += int64(n)
			if err == io.EOF && n > 0 {
				err = nil
			}
			return n, err
		}
		select {
		case <-pf.fr.notify:
		case <-pf.fr.failed:
			return 0, pf.fr.err()
		case <-pf.ctx.Done():
			return 0, pf.ctx.Err()
		}
	}
}
