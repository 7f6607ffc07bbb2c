package transfer

import (
	"encoding/json"
	"io"
	"slices"

	"github.com/lexgate/lexgate/gateway/api"
	"github.com/lexgate/lexgate/gateway/store"
)

// namedRecipient reports whether the signed manifest stored with t names id as
// a recipient. The store's recipient list is an index for inbox queries; the
// signed manifest is what the policy decided on, so visibility follows it: a
// recipient added to the store behind the core's back sees nothing.
func namedRecipient(t *store.Transfer, id string) bool {
	var sm api.SignedManifest
	if json.Unmarshal(t.Manifest, &sm) != nil {
		return false
	}
	m, err := sm.Decode()
	return err == nil && slices.Contains(m.Recipients, id)
}

// hasMore reports whether r has at least one more byte (consuming it).
func hasMore(r io.Reader) bool {
	var b [1]byte
	n, _ := io.ReadFull(r, b[:])
	return n > 0
}
