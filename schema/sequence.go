package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrOrderNotOpen is wrapped by SavePlan when an order of the plan is no
// longer open (sequenced or cancelled by someone else meanwhile).
var ErrOrderNotOpen = errors.New("order is not open")

// OpenOrders returns up to limit open orders (0: all), the earliest due
// first, then higher priority, then order id.
func (s *Store) OpenOrders(ctx context.Context, limit int) ([]Order, error) {
	q := `SELECT order_id, model, variant, colour, options, due, priority FROM orders
		WHERE status = 'open' ORDER BY due NULLS LAST, priority DESC, order_id`
	args := []any{}
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("open orders: %w", err)
	}
	var out []Order
	for rows.Next() {
		var o Order
		var due *time.Time
		if err := rows.Scan(&o.ID, &o.Model, &o.Variant, &o.Colour, &o.Options, &due, &o.Priority); err != nil {
			rows.Close()
			return nil, fmt.Errorf("open orders: %w", err)
		}
		if due != nil {
			o.Due = due.UTC()
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open orders: %w", err)
	}
	return out, nil
}

// SequencedCar is one car of the build sequence.
type SequencedCar struct {
	Seq          int64      `json:"seq"`
	OrderID      string     `json:"order_id"`
	VIN          string     `json:"vin"`
	Model        string     `json:"model"`
	Variant      string     `json:"variant"`
	Colour       string     `json:"colour"`
	Options      []string   `json:"options"`
	PlanID       int64      `json:"plan_id"`
	DownloadedAt *time.Time `json:"downloaded_at"`
}

// PlanSummary is how a sequencing run went, as sequence_plans records it.
type PlanSummary struct {
	PlanID                                         int64
	PlannedAt                                      time.Time
	Cars                                           int
	FirstSeq                                       int64
	Violations, Excess, BatchExcess, ColourChanges int
	Rules                                          json.RawMessage
	Seconds                                        float64
}

// NextSeq returns the sequence number the next planned car gets.
func (s *Store) NextSeq(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM build_sequence`).Scan(&n); err != nil {
		return 0, fmt.Errorf("next sequence number: %w", err)
	}
	return n, nil
}

// SavePlan appends cars (in build order, numbered from p.FirstSeq on, each
// with its VIN) to the build sequence and marks their orders sequenced, in
// one transaction. If an order is no longer open, or another plan took
// the same sequence numbers meanwhile, nothing is saved. It returns the
// plan id.
func (s *Store) SavePlan(ctx context.Context, p PlanSummary, cars []SequencedCar) (int64, error) {
	if len(cars) == 0 {
		return 0, errors.New("save plan: no cars")
	}
	ids := make([]string, len(cars))
	for i, c := range cars {
		if c.Seq != p.FirstSeq+int64(i) {
			return 0, fmt.Errorf("save plan: car %d (order %s) has seq %d, want %d", i, c.OrderID, c.Seq, p.FirstSeq+int64(i))
		}
		ids[i] = c.OrderID
	}
	rules := p.Rules
	if rules == nil {
		rules = json.RawMessage("null")
	}
	var planID int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		t := tx.tx
		rows, err := t.Query(ctx, `UPDATE orders SET status = 'sequenced' WHERE order_id = ANY($1) AND status = 'open' RETURNING order_id`, ids)
		if err != nil {
			return err
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(done) != len(ids) {
			var missing []string
			for _, id := range ids {
				if !slices.Contains(done, id) {
					missing = append(missing, id)
				}
			}
			if len(missing) > 5 {
				missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
			}
			return fmt.Errorf("%w: %v", ErrOrderNotOpen, missing)
		}
		if err := t.QueryRow(ctx, `INSERT INTO sequence_plans (cars, first_seq, violations, excess, batch_excess, colour_changes, rules, seconds)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING plan_id`,
			len(cars), p.FirstSeq, p.Violations, p.Excess, p.BatchExcess, p.ColourChanges, rules, p.Seconds).Scan(&planID); err != nil {
			return err
		}
		_, err = t.CopyFrom(ctx, pgx.Identifier{"build_sequence"},
			[]string{"seq", "order_id", "vin", "model", "variant", "colour", "options", "plan_id"},
			pgx.CopyFromSlice(len(cars), func(i int) ([]any, error) {
				c := cars[i]
				opts := c.Options
				if opts == nil {
					opts = []string{}
				}
				return []any{c.Seq, c.OrderID, c.VIN, c.Model, c.Variant, c.Colour, opts, planID}, nil
			}))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("save plan from seq %d: %w", p.FirstSeq, err)
	}
	return planID, nil
}

// Sequence returns up to limit cars of the build sequence after seq
// afterSeq, in order.
func (s *Store) Sequence(ctx context.Context, afterSeq int64, limit int) ([]SequencedCar, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, order_id, vin, model, variant, colour, options, plan_id, downloaded_at
		FROM build_sequence WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("build sequence after %d: %w", afterSeq, err)
	}
	var out []SequencedCar
	for rows.Next() {
		var c SequencedCar
		if err := rows.Scan(&c.Seq, &c.OrderID, &c.VIN, &c.Model, &c.Variant, &c.Colour, &c.Options, &c.PlanID, &c.DownloadedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("build sequence after %d: %w", afterSeq, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("build sequence after %d: %w", afterSeq, err)
	}
	return out, nil
}

// MarkDownloaded records that car seq was written to the framing PLC's
// manifest (the first time only).
func (s *Store) MarkDownloaded(ctx context.Context, seq int64, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE build_sequence SET downloaded_at = $2 WHERE seq = $1 AND downloaded_at IS NULL`, seq, at); err != nil {
		return fmt.Errorf("mark seq %d downloaded: %w", seq, err)
	}
	return nil
}

// Plans returns the latest limit sequencing runs, newest first.
func (s *Store) Plans(ctx context.Context, limit int) ([]PlanSummary, error) {
	rows, err := s.pool.Query(ctx, `SELECT plan_id, planned_at, cars, first_seq, violations, excess, batch_excess, colour_changes, rules, seconds
		FROM sequence_plans ORDER BY plan_id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PlanSummary, error) {
		var p PlanSummary
		err := r.Scan(&p.PlanID, &p.PlannedAt, &p.Cars, &p.FirstSeq, &p.Violations, &p.Excess, &p.BatchExcess, &p.ColourChanges, &p.Rules, &p.Seconds)
		return p, err
	})
}

// NextCars is what comes next on the line: the first cars of the build
// sequence not yet framed, and how many orders wait.
type NextCars struct {
	// LastFramed is the sequence number of the last car framed (0: none).
	LastFramed int64 `json:"last_framed"`
	// Cars are the next cars in sequence order (at most the limit asked).
	Cars []SequencedCar `json:"cars"`
	// Sequenced counts the cars sequenced and not yet framed; OpenOrders
	// the orders not yet sequenced.
	Sequenced  int64 `json:"sequenced"`
	OpenOrders int64 `json:"open_orders"`
}

// NextCars returns the next limit cars of the build sequence after the
// last one framed (a car is framed once the record has its VIN). It reads
// only the end of the sequence: the framing PLC holds at most a few dozen
// downloaded cars, so the last framed car is among the last 64 downloaded.
// It returns nil when nothing was ever sequenced or ordered.
func (s *Store) NextCars(ctx context.Context, limit int) (*NextCars, error) {
	n := &NextCars{Cars: []SequencedCar{}}
	err := s.pool.QueryRow(ctx, `
		WITH d AS (SELECT coalesce(max(seq), 0) AS top FROM build_sequence WHERE downloaded_at IS NOT NULL)
		SELECT coalesce((SELECT max(b.seq) FROM build_sequence b, d WHERE b.seq > d.top - 64 AND b.seq <= d.top
				AND EXISTS (SELECT 1 FROM vehicles v WHERE v.vin = b.vin)), 0),
			(SELECT count(*) FROM orders WHERE status = 'open')`).Scan(&n.LastFramed, &n.OpenOrders)
	if err != nil {
		return nil, fmt.Errorf("next cars: %w", err)
	}
	var top int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM build_sequence`).Scan(&top); err != nil {
		return nil, fmt.Errorf("next cars: %w", err)
	}
	if top == 0 && n.OpenOrders == 0 {
		return nil, nil
	}
	n.Sequenced = top - n.LastFramed
	cars, err := s.Sequence(ctx, n.LastFramed, limit)
	if err != nil {
		return nil, err
	}
	if cars != nil {
		n.Cars = cars
	}
	return n, nil
}
