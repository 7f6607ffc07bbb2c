package store

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"fmt"
	"hash"
	"sync"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/semaphore"
)

// The running SHA-256 of an S3 upload, and the bounded pool of part buffers.
//
// An upload sent in order (lex's default: chunks from offset 0) hashes each
// part as it sends it, continuing a SHA-256 whose state is recorded with the
// upload (s3_uploads.hash_state, covering bytes [0, hashed)) in the same
// transaction as the part, so that any replica continues it and a crash loses
// nothing. The hash covers the bytes exactly as sent in UploadPart — a part
// assembled from pieces is hashed as read back from them — and each part's
// ETag is recorded with it (s3_parts.etag). At completion, when the hash
// covers every byte and every part has its recorded ETag,
// CompleteMultipartUpload is sent with those ETags: S3 refuses it if any part
// in the bucket is not the one that was hashed, and then the store falls back
// to reading the object back, as it does whenever the hash does not cover the
// object (parallel ranges, a part sent by a range write, the head of a
// part unreadable from its pieces, an upload from before schema 8). An
// append that starts inside a part reads the part's head back from its
// pieces and sends the part whole, so that the hash goes on.

// runningHash is the SHA-256 of bytes [0, n) of an upload as sent in its
// parts; h is nil when the upload has none (it can no longer be continued).
type runningHash struct {
	h hash.Hash
	n int64
}

// loadRunningHash restores a running hash from its recorded state (nil: none).
func loadRunningHash(state []byte, n int64) runningHash {
	if state == nil {
		return runningHash{}
	}
	h := sha256.New()
	if h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state) != nil {
		return runningHash{} // unreadable: read the object back instead
	}
	return runningHash{h: h, n: n}
}

// newRunningHash is the running hash of an upload with no bytes yet.
func newRunningHash() runningHash { return runningHash{h: sha256.New()} }

// state returns the marshalled hash state, nil for none.
func (r runningHash) state() ([]byte, error) {
	if r.h == nil {
		return nil, nil
	}
	b, err := r.h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("store: save hash state: %w", err)
	}
	return b, nil
}

// clone returns a copy of r that goes on independently.
func (r runningHash) clone() runningHash {
	hs, err := r.state()
	if err != nil || hs == nil {
		return runningHash{}
	}
	return loadRunningHash(hs, r.n)
}

// continues reports whether a part starting at start continues the hash.
func (r *runningHash) continues(start int64) bool { return r != nil && r.h != nil && r.n == start }

// sum returns the hex SHA-256 of the bytes hashed.
func (r runningHash) sum() string { return hex.EncodeToString(r.h.Sum(nil)) }

// hashPart returns the hex SHA-256 of b, the payload hash that signs its
// UploadPart, and writes b into rh too if rh continues at start; the two
// hashes run in parallel. rh is then advanced in memory only: the caller
// records it with the part, or drops it if the part is not sent.
func hashPart(b []byte, rh *runningHash, start int64) string {
	cont := rh.continues(start)
	done := make(chan struct{})
	if cont {
		go func() {
			rh.h.Write(b)
			close(done)
		}()
	}
	sum := sha256.Sum256(b)
	if cont {
		<-done
		rh.n += int64(len(b))
	}
	return hex.EncodeToString(sum[:])
}

type payloadHashKey struct{}

// computePayloadHashID is the ID of the SDK's middleware that hashes a
// request's body to sign it (v4.ComputePayloadSHA256, or the S3 client's
// variant that signs over plain http only). TestS3SignsPartsOnce fails if
// it changes.
const computePayloadHashID = "ComputePayloadHash"

// withPayloadHash returns ctx carrying the hex SHA-256 of the body of the
// request made with it, which the signer then uses instead of hashing the
// body once more.
func withPayloadHash(ctx context.Context, sum string) context.Context {
	return context.WithValue(ctx, payloadHashKey{}, sum)
}

// presetPayloadHash is an API option that signs a request with the payload
// hash withPayloadHash put in its context. A wrong hash is refused by the
// server (the signature covers it), so it cannot let other bytes through.
func presetPayloadHash(stack *middleware.Stack) error {
	if _, ok := stack.Finalize.Get(computePayloadHashID); !ok {
		return nil // a request without a signed payload
	}
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("lexgatePayloadHash",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if sum, ok := ctx.Value(payloadHashKey{}).(string); ok {
				ctx = v4.SetPayloadHash(ctx, sum)
			}
			return next.HandleFinalize(ctx, in)
		}), computePayloadHashID, middleware.Before)
}

// defaultPartBuffers is S3Config.PartBuffers unless configured.
const defaultPartBuffers = 8

// partBufs lends the buffers writes receive their parts and pieces into,
// within a budget of bytes (PartBuffers × the part size): a write waits
// for room rather than allocating beyond it, so a replica's memory for
// writes to S3 stays bounded however many uploads run. A small write (a
// piece) takes only its own size from the budget, so many small uploads
// do not queue behind the large ones. Part-sized buffers not in use stay in
// a sync.Pool, which the garbage collector empties when the replica is idle.
type partBufs struct {
	sem    *semaphore.Weighted
	budget int64
	pool   sync.Pool
}

// pooledBuf is the size from which buffers are kept for reuse; smaller
// ones are allocated for the write and left to the garbage collector.
const pooledBuf = 1 << 20

func newPartBufs(n int, partSize int64) *partBufs {
	budget := int64(n) * partSize
	return &partBufs{sem: semaphore.NewWeighted(budget), budget: budget}
}

// weight is what a buffer of n bytes takes from the budget: a part larger
// than the whole budget (a transfer whose parts were doubled) takes all of it.
func (p *partBufs) weight(n int64) int64 { return min(max(n, 1), p.budget) }

// get returns a buffer of n bytes, waiting for room; put it back.
func (p *partBufs) get(ctx context.Context, n int64) (*[]byte, error) {
	if err := p.sem.Acquire(ctx, p.weight(n)); err != nil {
		return nil, fmt.Errorf("store: s3: waiting for a part buffer: %w", err)
	}
	if n >= pooledBuf {
		if bp, _ := p.pool.Get().(*[]byte); bp != nil && int64(cap(*bp)) >= n {
			*bp = (*bp)[:n]
			return bp, nil
		}
	}
	b := make([]byte, n)
	return &b, nil
}

// put gives back a buffer from get, unchanged in length.
func (p *partBufs) put(bp *[]byte) {
	n := int64(len(*bp))
	if n >= pooledBuf {
		p.pool.Put(bp)
	}
	p.sem.Release(p.weight(n))
}
