package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BenchSample returns what a benchmark asks about: every VIN, every lot,
// every tool and the time span of the record.
func (t *Tx) BenchSample(ctx context.Context) (vins, lots, tools []string, from, to time.Time, err error) {
	collect := func(sql string) ([]string, error) {
		rows, err := t.tx.Query(ctx, sql)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if vins, err = collect(`SELECT vin FROM vehicles ORDER BY vin`); err != nil {
		return nil, nil, nil, from, to, fmt.Errorf("sample vins: %w", err)
	}
	if lots, err = collect(`SELECT DISTINCT lot FROM installed_parts ORDER BY lot`); err != nil {
		return nil, nil, nil, from, to, fmt.Errorf("sample lots: %w", err)
	}
	if tools, err = collect(`SELECT DISTINCT tool FROM joints ORDER BY tool`); err != nil {
		return nil, nil, nil, from, to, fmt.Errorf("sample tools: %w", err)
	}
	err = t.tx.QueryRow(ctx, `SELECT coalesce(min(first_seen_at), 'epoch'), coalesce(max(last_seen_at), 'epoch') FROM vehicles`).Scan(&from, &to)
	if err != nil {
		return nil, nil, nil, from, to, fmt.Errorf("sample span: %w", err)
	}
	return vins, lots, tools, from, to, nil
}

// Size is how big the record is: rows of the largest tables and bytes on
// disk.
type Size struct {
	Vehicles, Events, Visits, Parts, Joints, Tests int64
	Bytes                                          int64
	Partitions                                     int64
}

func (z Size) String() string {
	return fmt.Sprintf("%d cars, %d events, %d visits, %d parts, %d joints, %d tests (%d rows); %d partitions; %.1f GB",
		z.Vehicles, z.Events, z.Visits, z.Parts, z.Joints, z.Tests, z.Events+z.Visits+z.Parts+z.Joints+z.Tests, z.Partitions, float64(z.Bytes)/1e9)
}

// Size counts the record's rows.
func (s *Store) Size(ctx context.Context) (Size, error) {
	var z Size
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM vehicles), (SELECT seq FROM chain_head), (SELECT count(*) FROM station_visits),
		(SELECT count(*) FROM installed_parts), (SELECT count(*) FROM joints), (SELECT count(*) FROM test_results),
		pg_database_size(current_database()), (SELECT count(*) FROM trace_partitions WHERE removed_at IS NULL)`).
		Scan(&z.Vehicles, &z.Events, &z.Visits, &z.Parts, &z.Joints, &z.Tests, &z.Bytes, &z.Partitions)
	if err != nil {
		return z, fmt.Errorf("record size: %w", err)
	}
	return z, nil
}
