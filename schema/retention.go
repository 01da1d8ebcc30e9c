package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keiline/keiline/pipeline/event"
)

// Retention modes.
const (
	// RetentionDetach detaches expired partitions from their tables and
	// keeps them as plain tables, to be archived (pg_dump) and dropped by
	// the operator.
	RetentionDetach = "detach"
	// RetentionDrop drops expired partitions.
	RetentionDrop = "drop"
)

// Retention defaults and limits (trace_settings).
const (
	KeepMonthsDefault  = 180 // 15 years
	AheadMonthsDefault = 3
	AheadMonthsMax     = 24
)

// ErrBadPolicy is wrapped by the errors of a retention policy that cannot
// be set.
var ErrBadPolicy = errors.New("bad retention policy")

// RetentionPolicy is how much history the record keeps: a setting in the
// database (trace_settings), changed by keiline history retention set.
type RetentionPolicy struct {
	// KeepMonths is how many months of history retention keeps, counting
	// back from the start of the current month. At least 1.
	KeepMonths int `json:"keep_months"`
	// AheadMonths is how many months of partitions are made ahead of the
	// newest event. 1 to AheadMonthsMax.
	AheadMonths int `json:"ahead_months"`
	// Mode is RetentionDetach or RetentionDrop.
	Mode string `json:"mode"`
}

// Validate names the first bad field of p and the values it allows.
func (p RetentionPolicy) Validate() error {
	switch {
	case p.KeepMonths < 1:
		return fmt.Errorf("%w: keep %d months: want 1 or more", ErrBadPolicy, p.KeepMonths)
	case p.AheadMonths < 1 || p.AheadMonths > AheadMonthsMax:
		return fmt.Errorf("%w: ahead %d months: want 1 to %d", ErrBadPolicy, p.AheadMonths, AheadMonthsMax)
	case p.Mode != RetentionDetach && p.Mode != RetentionDrop:
		return fmt.Errorf("%w: mode %q: want %s or %s", ErrBadPolicy, p.Mode, RetentionDetach, RetentionDrop)
	}
	return nil
}

// Retention returns the retention policy.
func (s *Store) Retention(ctx context.Context) (RetentionPolicy, error) {
	var p RetentionPolicy
	err := s.pool.QueryRow(ctx, `SELECT keep_months, ahead_months, retention_mode FROM trace_settings WHERE id = 1`).Scan(&p.KeepMonths, &p.AheadMonths, &p.Mode)
	if err != nil {
		return p, fmt.Errorf("retention policy: %w", err)
	}
	return p, nil
}

// SetRetention stores p (the owner's right) after Validate.
func (s *Store) SetRetention(ctx context.Context, p RetentionPolicy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `UPDATE trace_settings SET keep_months = $1, ahead_months = $2, retention_mode = $3 WHERE id = 1`, p.KeepMonths, p.AheadMonths, p.Mode)
	if err != nil {
		return fmt.Errorf("retention policy: %w", err)
	}
	s.parts.reset()
	return nil
}

// PartitionInfo is one monthly partition of a traceability table.
type PartitionInfo struct {
	Table     string     `json:"table"`
	Month     time.Time  `json:"month"`
	Name      string     `json:"name"`
	Rows      int64      `json:"rows"`  // the planner's estimate; -1 before the first ANALYZE
	Bytes     int64      `json:"bytes"` // with indexes and TOAST
	RemovedAt *time.Time `json:"removed_at,omitempty"`
	RemovedAs string     `json:"removed_as,omitempty"`
}

// Partitions lists the partitions made so far, those retention removed
// included, by table and month.
func (s *Store) Partitions(ctx context.Context) ([]PartitionInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT p.parent, p.month::timestamp AT TIME ZONE 'UTC', p.name,
			coalesce(c.reltuples::bigint, -1), coalesce(pg_total_relation_size(c.oid), 0), p.removed_at, coalesce(p.removed_as, '')
		FROM trace_partitions p LEFT JOIN pg_class c ON c.relname = p.name AND c.relnamespace = 'public'::regnamespace
		ORDER BY array_position($1::text[], p.parent), p.month`, PartitionedTables)
	if err != nil {
		return nil, fmt.Errorf("partitions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PartitionInfo, error) {
		var p PartitionInfo
		err := r.Scan(&p.Table, &p.Month, &p.Name, &p.Rows, &p.Bytes, &p.RemovedAt, &p.RemovedAs)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("partitions: %w", err)
	}
	return out, nil
}

// RetentionResult is what ApplyRetention removed, or would remove.
type RetentionResult struct {
	// Cutoff is where kept history begins: every month before it goes.
	Cutoff time.Time `json:"cutoff"`
	// Months are the months removed.
	Months []time.Time `json:"months"`
	// Events is how many event log rows went with them.
	Events int64 `json:"events"`
	// Cars is how many cars' records went entirely (last seen before the
	// cutoff).
	Cars int64 `json:"cars"`
	// Mode is how the partitions went: detached or dropped.
	Mode   string `json:"mode"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// ApplyRetention removes the months before the policy's cutoff (the start
// of now's month less KeepMonths), one month per transaction: it records
// the runs of event log rows it removes in chain_gaps, so that the audit
// steps over them and nothing else, and appends to the hash-chained log a
// retention event (event.KindRetention) that lists every run chain_gaps
// then holds, so that the audit can tell a gap added out of band; deletes their event_ids, bad values
// and station states, detaches or drops the month's partition of every
// traceability table, and deletes the cars last seen before the cutoff
// with their holds and gate decisions, and the lots used up before it. With dryRun it only reports what
// would go. It must run as the owner of the schema.
func (s *Store) ApplyRetention(ctx context.Context, now time.Time, dryRun bool) (*RetentionResult, error) {
	p, err := s.Retention(ctx)
	if err != nil {
		return nil, err
	}
	res := &RetentionResult{Cutoff: MonthStart(now).AddDate(0, -p.KeepMonths, 0), Mode: p.Mode, DryRun: dryRun, Months: []time.Time{}}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT month::timestamp AT TIME ZONE 'UTC' FROM trace_partitions
		WHERE removed_at IS NULL AND month < ($1::timestamptz AT TIME ZONE 'UTC')::date ORDER BY 1`, res.Cutoff)
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	months, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	for _, m := range months {
		n, err := s.removeMonth(ctx, m, p.Mode, dryRun)
		if err != nil {
			return res, err
		}
		res.Months = append(res.Months, m)
		res.Events += n
	}
	err = s.WithTx(ctx, func(tx *Tx) error {
		if err := tx.tx.QueryRow(ctx, `SELECT count(*) FROM vehicles WHERE last_seen_at < $1`, res.Cutoff).Scan(&res.Cars); err != nil {
			return err
		}
		if dryRun {
			return nil
		}
		for _, q := range []string{
			`UPDATE trace_settings SET retained_from = greatest(retained_from, $1) WHERE id = 1`,
			`DELETE FROM gate_decisions WHERE vin IN (SELECT vin FROM vehicles WHERE last_seen_at < $1)`,
			`DELETE FROM holds WHERE vin IN (SELECT vin FROM vehicles WHERE last_seen_at < $1)`,
			`DELETE FROM vehicles WHERE last_seen_at < $1`,
			`DELETE FROM part_lots WHERE last_at < $1`,
		} {
			if _, err := tx.tx.Exec(ctx, q, res.Cutoff); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("retention: expired cars: %w", err)
	}
	return res, nil
}

// removeMonth removes one month (see ApplyRetention) and returns its event
// log rows.
func (s *Store) removeMonth(ctx context.Context, month time.Time, mode string, dryRun bool) (int64, error) {
	logPart := fmt.Sprintf("event_log_%s", month.Format("2006_01"))
	ident := pgx.Identifier{logPart}.Sanitize()
	var n int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		var exists bool
		if err := tx.tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, logPart).Scan(&exists); err != nil {
			return err
		}
		if exists {
			if err := tx.tx.QueryRow(ctx, `SELECT count(*) FROM `+ident).Scan(&n); err != nil {
				return err
			}
		}
		if dryRun {
			return nil
		}
		if exists {
			// The runs of consecutive seqs this month holds, each with the
			// hash the next row links to.
			if _, err := tx.tx.Exec(ctx, `
				INSERT INTO chain_gaps (first_seq, last_seq, last_hash, rows, partition)
				SELECT min(seq), max(seq), (array_agg(hash ORDER BY seq DESC))[1], count(*), $1
				FROM (SELECT seq, hash, seq - row_number() OVER (ORDER BY seq) AS run FROM `+ident+`) r
				GROUP BY run`, logPart); err != nil {
				return fmt.Errorf("chain gaps: %w", err)
			}
			if err := tx.appendRetention(ctx, month); err != nil {
				return err
			}
			if _, err := tx.tx.Exec(ctx, `SET LOCAL keiline.retention = 'on'`); err != nil {
				return err
			}
			for _, q := range []string{
				`DELETE FROM event_ids WHERE event_id IN (SELECT event_id FROM ` + ident + `)`,
				`DELETE FROM bad_values WHERE event_id IN (SELECT event_id FROM ` + ident + `)`,
				`DELETE FROM station_states WHERE event_id IN (SELECT event_id FROM ` + ident + `)`,
				`DELETE FROM human_actions WHERE event_id IN (SELECT event_id FROM ` + ident + `)`,
			} {
				if _, err := tx.tx.Exec(ctx, q); err != nil {
					return err
				}
			}
		}
		for _, t := range PartitionedTables {
			part := t + "_" + month.Format("2006_01")
			var ok bool
			if err := tx.tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, part).Scan(&ok); err != nil {
				return err
			}
			if ok {
				q := `DROP TABLE ` + pgx.Identifier{part}.Sanitize()
				if mode == RetentionDetach {
					q = `ALTER TABLE ` + pgx.Identifier{t}.Sanitize() + ` DETACH PARTITION ` + pgx.Identifier{part}.Sanitize()
				}
				if _, err := tx.tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", part, err)
				}
			}
			removedAs := "dropped"
			if mode == RetentionDetach {
				removedAs = "detached"
			}
			if _, err := tx.tx.Exec(ctx, `UPDATE trace_partitions SET removed_at = now(), removed_as = $3 WHERE parent = $1 AND month = $2`,
				t, month.Format(time.DateOnly), removedAs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("retention: month %s: %w", month.Format("2006-01"), err)
	}
	if !dryRun {
		s.parts.reset()
	}
	return n, nil
}

// appendRetention appends the retention event of month to the log, with
// every run chain_gaps holds, filed under the plant and line of the log's
// newest row (the record's own), at keiline's clock.
func (t *Tx) appendRetention(ctx context.Context, month time.Time) error {
	rows, err := t.tx.Query(ctx, `SELECT first_seq, last_seq, last_hash, rows, partition FROM chain_gaps ORDER BY first_seq`)
	if err != nil {
		return fmt.Errorf("retention event: chain gaps: %w", err)
	}
	gaps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (event.RetentionGap, error) {
		var g event.RetentionGap
		err := r.Scan(&g.FirstSeq, &g.LastSeq, &g.LastHash, &g.Rows, &g.Partition)
		return g, err
	})
	if err != nil {
		return fmt.Errorf("retention event: chain gaps: %w", err)
	}
	// The chain head is locked first, so the event's seq (its id's last
	// part) is known: a month removed again (a late event gave it a
	// partition again) gets an event of its own.
	var seq int64
	var plant, line string
	err = t.tx.QueryRow(ctx, `SELECT h.seq, coalesce(l.plant, 'keiline'), coalesce(l.line, 'record') FROM chain_head h
		LEFT JOIN event_ids i ON i.seq = h.seq LEFT JOIN event_log l ON l.seq = i.seq AND l.occurred_at = i.occurred_at
		WHERE h.id = 1 FOR UPDATE OF h`).Scan(&seq, &plant, &line)
	if err != nil {
		return fmt.Errorf("retention event: lock chain head: %w", err)
	}
	if t.head != nil {
		seq = t.head.seq
	}
	ev, err := event.NewRetention(plant, line, month, seq+1, gaps, time.Now())
	if err != nil {
		return err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("retention event %s: %w", ev.ID, err)
	}
	fresh, _, err := t.AppendAndView(ctx, []EventRow{{ID: ev.ID, Kind: ev.Kind, Plant: ev.Plant, Line: ev.Line, Station: ev.Station,
		OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt, Payload: payload}}, ViewQuery{})
	if err != nil {
		return fmt.Errorf("retention event %s: %w", ev.ID, err)
	}
	if !fresh[0] {
		return fmt.Errorf("retention event %s: the log already holds it", ev.ID)
	}
	return nil
}
