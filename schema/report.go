package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The end-of-shift report's questions beyond the shift's numbers
// (ShiftRecord): the defects found and the holds opened and closed in a
// window.

// DefectCount is how often one joint, test or PLC tag was NOK (or
// unreadable) in a window.
type DefectCount struct {
	Station string `json:"station"`
	// Kind is DefectJoint, DefectTest or DefectBadValue.
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Count int64  `json:"count"`
	// Cars counts the distinct cars.
	Cars int64 `json:"cars"`
}

// HoldEvent is a hold opened or closed in a window.
type HoldEvent struct {
	VIN      string     `json:"vin"`
	Station  string     `json:"station"`
	Kind     string     `json:"kind"`
	Reason   string     `json:"reason"`
	OpenedAt time.Time  `json:"opened_at"`
	ClosedAt *time.Time `json:"closed_at,omitempty"`
}

// ShiftQuality is what went wrong in a window.
type ShiftQuality struct {
	// Defects are the most frequent NOK joints and tests and unreadable
	// PLC values, most first (ties by station, kind and name).
	Defects []DefectCount `json:"defects"`
	// DefectsTotal counts every NOK joint and test and unreadable value.
	DefectsTotal int64 `json:"defects_total"`
	// Opened and Closed are the holds opened and those closed in the
	// window, in time order; OpenedCount and ClosedCount count them all.
	Opened      []HoldEvent `json:"opened"`
	Closed      []HoldEvent `json:"closed"`
	OpenedCount int64       `json:"opened_count"`
	ClosedCount int64       `json:"closed_count"`
}

// Defaults of ShiftQuality.
const (
	TopDefectsDefault = 10
	HoldEventsMax     = 200
)

// ShiftQuality reads the defects and hold changes of stations in [from,
// to) in one read-only snapshot: the top defects (TopDefectsDefault when
// top is 0) and up to HoldEventsMax holds opened and closed.
func (s *Store) ShiftQuality(ctx context.Context, from, to time.Time, stations []string, top int) (*ShiftQuality, error) {
	if !from.Before(to) || len(stations) == 0 {
		return nil, fmt.Errorf("shift quality: want from before to and stations")
	}
	if top <= 0 {
		top = TopDefectsDefault
	}
	out := &ShiftQuality{Defects: []DefectCount{}, Opened: []HoldEvent{}, Closed: []HoldEvent{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH d AS (
				SELECT station, 'joint' AS kind, joint AS name, vin FROM joints
				WHERE NOT ok AND station = ANY($3) AND made_at >= $1 AND made_at < $2
				UNION ALL
				SELECT station, 'test', name, vin FROM test_results
				WHERE NOT ok AND station = ANY($3) AND tested_at >= $1 AND tested_at < $2
				UNION ALL
				SELECT v.station, 'bad_value', b.tag, v.vin FROM bad_values b
				JOIN station_visits v ON v.event_id = b.event_id
				WHERE v.station = ANY($3) AND v.finished_at >= $1 AND v.finished_at < $2
			)
			SELECT station, kind, name, count(*), count(DISTINCT vin), sum(count(*)) OVER ()
			FROM d GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3`, from, to, stations)
		if err != nil {
			return fmt.Errorf("defects: %w", err)
		}
		var d DefectCount
		if _, err := pgx.ForEachRow(rows, []any{&d.Station, &d.Kind, &d.Name, &d.Count, &d.Cars, &out.DefectsTotal}, func() error {
			if len(out.Defects) < top {
				out.Defects = append(out.Defects, d)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("defects: %w", err)
		}
		for _, q := range []struct {
			at    string
			list  *[]HoldEvent
			count *int64
		}{{"opened_at", &out.Opened, &out.OpenedCount}, {"closed_at", &out.Closed, &out.ClosedCount}} {
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM holds WHERE `+q.at+` >= $1 AND `+q.at+` < $2`, from, to).Scan(q.count); err != nil {
				return fmt.Errorf("holds by %s: %w", q.at, err)
			}
			rows, err := tx.Query(ctx, `
				SELECT vin, station, kind, reason, opened_at, closed_at FROM holds
				WHERE `+q.at+` >= $1 AND `+q.at+` < $2 ORDER BY `+q.at+`, id LIMIT $3`, from, to, HoldEventsMax)
			if err != nil {
				return fmt.Errorf("holds by %s: %w", q.at, err)
			}
			var h HoldEvent
			if _, err := pgx.ForEachRow(rows, []any{&h.VIN, &h.Station, &h.Kind, &h.Reason, &h.OpenedAt, &h.ClosedAt}, func() error {
				*q.list = append(*q.list, h)
				return nil
			}); err != nil {
				return fmt.Errorf("holds by %s: %w", q.at, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("shift quality %s..%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	return out, nil
}
