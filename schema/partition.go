package schema

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PartitionedTables are the traceability tables partitioned by month (UTC)
// of their event's time, in the order retention treats them.
var PartitionedTables = []string{"event_log", "station_visits", "installed_parts", "joints", "test_results", "tightenings"}

// partitionCache is the range of months [from, through] known to have
// partitions; zero when nothing is known yet.
type partitionCache struct {
	mu            sync.Mutex
	from, through time.Time
}

func (c *partitionCache) covers(first, last time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.from.IsZero() && !first.Before(c.from) && last.Before(c.through.AddDate(0, 1, 0))
}

func (c *partitionCache) add(from, through time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Only a range that touches the known one keeps the cache contiguous.
	if c.from.IsZero() || from.After(c.through.AddDate(0, 1, 0)) || through.Before(c.from.AddDate(0, -1, 0)) {
		c.from, c.through = from, through
		return
	}
	if from.Before(c.from) {
		c.from = from
	}
	if through.After(c.through) {
		c.through = through
	}
}

func (c *partitionCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.from, c.through = time.Time{}, time.Time{}
}

// MonthStart returns the first instant of t's month in UTC: the lower bound
// of the partition that holds t.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// EnsurePartitions makes the monthly partitions every traceability table
// needs for events from first to last, plus the months ahead that
// trace_settings asks for. It is safe to call often: months that have
// partitions are skipped without a lock on the tables.
func (s *Store) EnsurePartitions(ctx context.Context, first, last time.Time) error {
	return s.WithTx(ctx, func(tx *Tx) error { return tx.ensurePartitions(ctx, first, last) })
}

// ensurePartitions is EnsurePartitions inside t, asking the database only
// when the store does not already know the months are there.
func (t *Tx) ensurePartitions(ctx context.Context, first, last time.Time) error {
	if t.store != nil && t.store.parts.covers(first, last) {
		return nil
	}
	var ahead int
	err := t.tx.QueryRow(ctx, `SELECT ahead_months FROM trace_settings WHERE id = 1`).Scan(&ahead)
	if err != nil {
		return fmt.Errorf("partitions: settings: %w", err)
	}
	through := MonthStart(last).AddDate(0, ahead, 0)
	if _, err := t.tx.Exec(ctx, `SELECT keiline_ensure_partitions($1, $2)`, MonthStart(first), through); err != nil {
		return fmt.Errorf("partitions for %s to %s: %w", MonthStart(first).Format("2006-01"), through.Format("2006-01"), err)
	}
	if t.store != nil {
		t.store.parts.add(MonthStart(first), through)
	}
	return nil
}

// forgetPartitions drops what the store knows of partitions when err says
// a row found no partition (retention removed a month a late event needs),
// so the next attempt makes it again.
func (t *Tx) forgetPartitions(err error) {
	var pgErr *pgconn.PgError
	if t.store != nil && errors.As(err, &pgErr) && pgErr.Code == "23514" {
		t.store.parts.reset()
	}
}

// Vacuum vacuums and analyzes the traceability tables, as autovacuum would
// in time: after a bulk load (keiline history gen) or a retention run, so
// that the planner's statistics are current and a car's chain positions
// are read from the index alone. It must run as the owner of the schema.
func (s *Store) Vacuum(ctx context.Context) error {
	for _, t := range append(append([]string{}, PartitionedTables...), "event_ids", "vehicles", "holds", "gate_decisions") {
		if _, err := s.pool.Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{t}.Sanitize()); err != nil {
			return fmt.Errorf("vacuum %s: %w", t, err)
		}
	}
	return nil
}
