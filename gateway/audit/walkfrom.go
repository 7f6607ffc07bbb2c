package audit

import (
	"context"
	"fmt"

	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
)

// WalkFrom calls fn for the entries from index from up to size (exclusive)
// of a log, in order, reading only the entry bundles that hold them: a
// follower (the SIEM forwarder) resumes where its cursor is.
func WalkFrom(ctx context.Context, r Fetcher, from, size uint64, fn func(index uint64, entry []byte) error) error {
	for b := from / layout.EntryBundleWidth; b*layout.EntryBundleWidth < size; b++ {
		bundle, err := client.GetEntryBundle(ctx, bundleFetcher(r), b, size)
		if err != nil {
			return fmt.Errorf("audit: read entry bundle %d: %w", b, err)
		}
		want := min(size-b*layout.EntryBundleWidth, layout.EntryBundleWidth)
		if uint64(len(bundle.Entries)) < want {
			return fmt.Errorf("audit: entry bundle %d holds %d entries, the log's size needs %d", b, len(bundle.Entries), want)
		}
		for i, e := range bundle.Entries[:want] {
			if idx := b*layout.EntryBundleWidth + uint64(i); idx >= from {
				if err := fn(idx, e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
