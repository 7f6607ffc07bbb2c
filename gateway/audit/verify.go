package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// ErrInconsistent is wrapped by every *InconsistencyError.
var ErrInconsistent = errors.New("audit: the log is inconsistent with a checkpoint seen before")

// InconsistencyError says that a log's current checkpoint cannot follow one seen
// before: the log was truncated, forked or rewritten.
type InconsistencyError struct {
	How              string // "truncated", "forked" or "rewritten"
	OldSize, NewSize uint64
	Detail           string
}

func (e *InconsistencyError) Error() string {
	msg := fmt.Sprintf("audit: THE AUDIT LOG WAS %s: a checkpoint of size %d was seen before, the log now shows size %d",
		bytes.ToUpper([]byte(e.How)), e.OldSize, e.NewSize)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrInconsistent) true.
func (e *InconsistencyError) Unwrap() error { return ErrInconsistent }

// OpenCheckpoint verifies a signed checkpoint with the log's public key.
func OpenCheckpoint(raw []byte, v note.Verifier) (*log.Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(raw, v.Name(), v)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint does not verify with the pinned log key %s: %w", v.Name(), err)
	}
	return cp, nil
}

// CheckConsistency proves that the log r, whose current checkpoint is newer,
// extends the checkpoint older seen before, with a consistency proof built from
// r's tiles. Both checkpoints must be verified already. A log that shrank, shows
// another root at the same size, or whose proof fails returns an
// *InconsistencyError.
func CheckConsistency(ctx context.Context, r Fetcher, older, newer *log.Checkpoint) error {
	switch {
	case newer.Size < older.Size:
		return &InconsistencyError{How: "truncated", OldSize: older.Size, NewSize: newer.Size}
	case newer.Size == older.Size:
		if !bytes.Equal(newer.Hash, older.Hash) {
			return &InconsistencyError{How: "forked", OldSize: older.Size, NewSize: newer.Size, Detail: "same size, another root hash"}
		}
		return nil
	case older.Size == 0:
		return nil
	}
	pb, err := newProofBuilder(ctx, r, newer.Size)
	if err != nil {
		return err
	}
	p, err := pb.ConsistencyProof(ctx, older.Size, newer.Size)
	if err != nil {
		return &InconsistencyError{How: "rewritten", OldSize: older.Size, NewSize: newer.Size, Detail: "no consistency proof: " + err.Error()}
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, p, older.Hash, newer.Hash); err != nil {
		return &InconsistencyError{How: "rewritten", OldSize: older.Size, NewSize: newer.Size, Detail: err.Error()}
	}
	return nil
}

// ReceiptAt builds a receipt for entry index under the verified checkpoint cp
// (whose signed bytes are cpRaw), reading r.
func ReceiptAt(ctx context.Context, r Fetcher, cp *log.Checkpoint, cpRaw []byte, index uint64) (*Receipt, error) {
	return buildReceipt(ctx, r, cp, cpRaw, index)
}

// Prover builds many receipts under one checkpoint, fetching each tile once: what
// an export of many entries needs. It is not safe for concurrent use.
type Prover struct {
	pb    *client.ProofBuilder
	cp    *log.Checkpoint
	cpRaw []byte
}

// NewProver returns a Prover for the verified checkpoint cp of log r.
func NewProver(ctx context.Context, r Fetcher, cp *log.Checkpoint, cpRaw []byte) (*Prover, error) {
	pb, err := newProofBuilder(ctx, r, cp.Size)
	if err != nil {
		return nil, err
	}
	return &Prover{pb: pb, cp: cp, cpRaw: cpRaw}, nil
}

// Receipt returns the receipt of entry index, whose bytes the caller read already.
func (p *Prover) Receipt(ctx context.Context, index uint64, entry []byte) (*Receipt, error) {
	proof, err := p.pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("audit: inclusion proof of entry %d: %w", index, err)
	}
	return &Receipt{Version: ReceiptVersion, Index: index, Entry: string(entry), LeafHash: leafHash(entry),
		TreeSize: p.cp.Size, InclusionProof: proof, Checkpoint: string(p.cpRaw)}, nil
}

// VerifyLog walks every entry of r up to the verified checkpoint cp: each must be a
// leaf (a commitment or a canonical public event), each level-0 hash tile must hold
// the entries' leaf hashes, and the tree recomputed from the entries must have cp's
// root. fn, if not nil, sees every leaf. It returns how many entries it checked.
func VerifyLog(ctx context.Context, r Fetcher, cp *log.Checkpoint, fn func(index uint64, leaf Leaf) error) (uint64, error) {
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	var n uint64
	var tile api.HashTile
	err := Walk(ctx, r, cp.Size, func(i uint64, entry []byte) error {
		lf, err := ParseLeaf(entry)
		if err != nil {
			return fmt.Errorf("audit: entry %d: %w", i, err)
		}
		lh := rfc6962.DefaultHasher.HashLeaf(entry)
		if i%layout.TileWidth == 0 {
			t := i / layout.TileWidth
			raw, err := tileFetcher(r)(ctx, 0, t, layout.PartialTileSize(0, t, cp.Size))
			if err != nil {
				return fmt.Errorf("audit: hash tile 0/%d: %w", t, err)
			}
			if err := tile.UnmarshalText(raw); err != nil {
				return fmt.Errorf("audit: hash tile 0/%d: %w", t, err)
			}
		}
		if j := i % layout.TileWidth; j >= uint64(len(tile.Nodes)) || !bytes.Equal(tile.Nodes[j], lh) {
			return fmt.Errorf("audit: entry %d does not match its leaf hash in hash tile 0/%d: the entry or the tile was altered", i, i/layout.TileWidth)
		}
		if err := rng.Append(lh, nil); err != nil {
			return fmt.Errorf("audit: entry %d: %w", i, err)
		}
		n++
		if fn != nil {
			return fn(i, lf)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if n > 0 {
		if root, err = rng.GetRootHash(nil); err != nil {
			return n, fmt.Errorf("audit: recompute root: %w", err)
		}
	}
	if !bytes.Equal(root, cp.Hash) {
		return n, fmt.Errorf("audit: the tree recomputed from %d entries has root %x, the signed checkpoint says %x: the log's entries were altered", n, root, cp.Hash)
	}
	return n, nil
}

// NewerRegistration reports the index of a key registration of id after entry
// after, in the log of the verified checkpoint cp, if there is one: a gateway that
// hands out an older registration than the latest is caught this way.
func NewerRegistration(ctx context.Context, r Fetcher, cp *log.Checkpoint, after uint64, id string) (uint64, bool, error) {
	var found uint64
	var ok bool
	first := (after + 1) / layout.EntryBundleWidth
	for b := first; b*layout.EntryBundleWidth < cp.Size; b++ {
		bundle, err := getBundle(ctx, r, b, cp.Size)
		if err != nil {
			return 0, false, err
		}
		for j, e := range bundle.Entries {
			i := b*layout.EntryBundleWidth + uint64(j)
			if i <= after || i >= cp.Size {
				continue
			}
			lf, err := ParseLeaf(e)
			if err != nil {
				return 0, false, fmt.Errorf("audit: entry %d: %w", i, err)
			}
			if ev := lf.Public; ev != nil && ev.Kind == KindKeyRegistration && ev.Actor == id {
				found, ok = i, true
			}
		}
	}
	return found, ok, nil
}
