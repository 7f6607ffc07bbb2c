package store

import "context"

// TransfersIn returns up to limit transfers in state, in ID order, starting
// after the ID after ("" for the first page). A caller walks every transfer
// in a state page by page, passing the last ID it got, without holding the
// whole set in memory; the start-up reconciler does.
func (s *Store) TransfersIn(ctx context.Context, state State, after string, limit int) ([]*Transfer, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.list(ctx, `WHERE state = ? AND id > ? ORDER BY id LIMIT ?`, state, after, limit)
}
