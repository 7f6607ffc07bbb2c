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
)

// Parallel downloads. On a long lossy path one connection's congestion window
// caps what it carries (it halves on loss, or waits for the path's RTT), so a
// large ciphertext is fetched as several HTTP Range requests at once: separate
// TCP connections over the bulk transport, or separate QUIC streams. Each range
// is written at its offset in the download file; whatever happens, the file is
// cut back to the longest prefix that arrived whole, so that the next run
// resumes from there as a single download would.
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

// fetchParallel fills f from off to size with ranges fetched by streams workers.
// On return, successful or not, f holds a whole prefix of the ciphertext and
// nothing beyond it.
func (r *receiver) fetchParallel(ctx context.Context, f *os.File, id string, off, size int64, streams int) error {
	step := rangeSize(size-off, streams)
	type span struct{ start, end int64 }
	var spans []span
	for s := off; s < size; s += step {
		spans = append(spans, span{s, min(s+step, size)})
	}
	streams = min(streams, len(spans))
	r.e.verbosef("download: %d parallel ranges of up to %s over %s (%d requests), from byte %d of %d",
		streams, humanSize(step), r.c.BulkTransport(), len(spans), off, size)
	p := newProgress(r.e.stderr, "receiving", size, off)
	defer p.done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		done     = make([]bool, len(spans))
		firstErr error
		wg       sync.WaitGroup
	)
	for range streams {
		wg.Go(func() {
			buf := make([]byte, copyBufSize)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(spans) || ctx.Err() != nil {
					return
				}
				err := r.fetchRange(ctx, f, id, spans[i].start, spans[i].end, buf, p)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				done[i] = err == nil
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		r.e.verbosef("downloaded %d bytes in %v (%.0f MB/s over %d %s ranges)", size-off, time.Since(start).Round(time.Millisecond),
			mbps(size-off, time.Since(start)), streams, r.c.BulkTransport())
	}
	whole := off
	for i, s := range spans {
		if !done[i] {
			break
		}
		whole = s.end
	}
	if whole < size {
		if err := f.Truncate(whole); err != nil {
			return errors.Join(firstErr, err)
		}
		if firstErr == nil {
			firstErr = ctx.Err()
		}
		return firstErr
	}
	return nil
}

// fetchRange downloads [start, end) into f at start.
func (r *receiver) fetchRange(ctx context.Context, f *os.File, id string, start, end int64, buf []byte, p *progress) error {
	body, err := r.c.DownloadRange(ctx, id, start, end)
	if err != nil {
		return err
	}
	defer body.Close()
	w := io.MultiWriter(io.NewOffsetWriter(f, start), p)
	n, err := io.CopyBuffer(w, io.LimitReader(body, end-start), buf)
	if err != nil {
		return err
	}
	if n != end-start {
		return fmt.Errorf("download %s: got %d bytes of range %d-%d", id, n, start, end-1)
	}
	return nil
}
