package schema

import (
	"context"
	"fmt"
	"time"
)

// CyclesSince counts cycle events that PLCs finished after t, at the given
// stations (all stations when none are given).
func (s *Store) CyclesSince(ctx context.Context, t time.Time, stations []string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM event_log WHERE kind = 'cycle' AND occurred_at > $1
		AND (cardinality($2::text[]) = 0 OR station = ANY($2))`, t, stations).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("cycles since %s: %w", t.Format(time.RFC3339), err)
	}
	return n, nil
}
