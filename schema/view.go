package schema

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// viewCars is the set of car keys of a view: those asked for and the VINs
// the asked body numbers were paired with ($1 keys, $2 bodies).
const viewCars = `(SELECT unnest($1::text[]) UNION SELECT vin FROM car_ids WHERE body = ANY($2::text[]))`

// queueView queues the queries of the view q asks for, filling view.
func queueView(b *pgx.Batch, q ViewQuery, view *View) {
	cars, bodies, suppliers := q.Cars, q.Bodies, q.Suppliers
	car := func(vin string) *CarView {
		c := view.Cars[vin]
		if c == nil {
			c = &CarView{Broadcasts: map[string]bool{}, Tightened: map[string]bool{}}
			view.Cars[vin] = c
		}
		return c
	}
	b.Queue(`SELECT vin, model, variant, colour, first_seen_at, last_seen_at, last_station, last_pos, shipped_at
		FROM vehicles WHERE vin IN `+viewCars, cars, bodies).Query(func(rows pgx.Rows) error {
		var v Vehicle
		var shipped *time.Time
		_, err := pgx.ForEachRow(rows, []any{&v.VIN, &v.Model, &v.Variant, &v.Colour, &v.FirstSeenAt, &v.LastSeenAt, &v.LastStation, &v.LastPos, &shipped}, func() error {
			v.ShippedAt = time.Time{}
			if shipped != nil {
				v.ShippedAt = *shipped
			}
			car(v.VIN).Vehicle = v
			return nil
		})
		if err != nil {
			return fmt.Errorf("view: vehicles: %w", err)
		}
		return nil
	})
	b.Queue(`SELECT id, vin, station, kind, reason, opened_event_id, opened_at, item_kind, item_name, item_slot
		FROM holds WHERE vin IN `+viewCars+` AND closed_at IS NULL ORDER BY id`, cars, bodies).Query(func(rows pgx.Rows) error {
		var h HoldRecord
		_, err := pgx.ForEachRow(rows, []any{&h.ID, &h.VIN, &h.Station, &h.Kind, &h.Reason, &h.EventID, &h.At, &h.Item.Kind, &h.Item.Name, &h.Item.Slot}, func() error {
			if c := view.Cars[h.VIN]; c != nil {
				c.Holds = append(c.Holds, h)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("view: open holds: %w", err)
		}
		return nil
	})
	b.Queue(`SELECT DISTINCT ON (vin) event_id, vin, station, released, open_holds, reason, decided_at, kind
		FROM gate_decisions WHERE vin IN `+viewCars+` ORDER BY vin, decided_at DESC, kind DESC, event_id DESC`, cars, bodies).Query(func(rows pgx.Rows) error {
		var g GateDecision
		_, err := pgx.ForEachRow(rows, []any{&g.EventID, &g.VIN, &g.Station, &g.Released, &g.OpenHolds, &g.Reason, &g.DecidedAt, &g.Kind}, func() error {
			if c := view.Cars[g.VIN]; c != nil {
				d := g
				c.Gate = &d
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("view: gate decisions: %w", err)
		}
		return nil
	})
	// Only the months from a week before the cars were first seen: the
	// bound is known when the query runs, so the older partitions are not
	// read (a car's tightenings are made while it is on the line).
	b.Queue(`SELECT vin, station, joint, bool_or(result = 'OK') FROM tightenings
		WHERE vin IN `+viewCars+` AND joint <> ''
			AND made_at >= (SELECT min(first_seen_at) FROM vehicles WHERE vin IN `+viewCars+`) - interval '7 days'
		GROUP BY 1, 2, 3`, cars, bodies).Query(func(rows pgx.Rows) error {
		var vin, station, joint string
		var ok bool
		_, err := pgx.ForEachRow(rows, []any{&vin, &station, &joint, &ok}, func() error {
			if c := view.Cars[vin]; c != nil {
				c.Tightened[TightKey(station, joint)] = ok
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("view: tightenings: %w", err)
		}
		return nil
	})
	b.Queue(`SELECT body, vin FROM car_ids WHERE body = ANY($1) ORDER BY paired_at, event_id`, bodies).Query(func(rows pgx.Rows) error {
		var body, vin string
		_, err := pgx.ForEachRow(rows, []any{&body, &vin}, func() error {
			view.Pairs[body] = append(view.Pairs[body], vin)
			return nil
		})
		if err != nil {
			return fmt.Errorf("view: car ids: %w", err)
		}
		return nil
	})
	b.Queue(`SELECT p.event_id, p.body, p.station, p.occurred_at, e.payload
		FROM pending_cycles p JOIN event_ids i ON i.event_id = p.event_id JOIN event_log e ON e.seq = i.seq AND e.occurred_at = i.occurred_at
		WHERE p.body = ANY($1) AND p.resolved_event_id IS NULL ORDER BY i.seq`, bodies).Query(func(rows pgx.Rows) error {
		var p PendingCycle
		_, err := pgx.ForEachRow(rows, []any{&p.EventID, &p.Body, &p.Station, &p.At, &p.Payload}, func() error {
			x := p
			x.Payload = append([]byte(nil), p.Payload...)
			view.Pending = append(view.Pending, x)
			return nil
		})
		if err != nil {
			return fmt.Errorf("view: pending cycles: %w", err)
		}
		return nil
	})
	if len(suppliers) > 0 {
		queueJIS(b, q, view)
	}
}

// queueJIS queues the queries of the suppliers' last broadcast numbers and
// the broadcasts the view's cars have.
func queueJIS(b *pgx.Batch, q ViewQuery, view *View) {
	cars, bodies, suppliers := q.Cars, q.Bodies, q.Suppliers
	b.Queue(`SELECT s, coalesce((SELECT max(seq) FROM jis_broadcasts WHERE supplier = s), 0) FROM unnest($1::text[]) s`, suppliers).Query(func(rows pgx.Rows) error {
		var s string
		var n int64
		_, err := pgx.ForEachRow(rows, []any{&s, &n}, func() error { view.LastSeq[s] = n; return nil })
		if err != nil {
			return fmt.Errorf("view: broadcast numbers: %w", err)
		}
		return nil
	})
	b.Queue(`SELECT b.vin, b.supplier FROM unnest($3::text[]) s JOIN jis_broadcasts b ON b.supplier = s AND b.vin IN `+viewCars,
		cars, bodies, suppliers).Query(func(rows pgx.Rows) error {
		var vin, s string
		_, err := pgx.ForEachRow(rows, []any{&vin, &s}, func() error {
			if c := view.Cars[vin]; c != nil {
				c.Broadcasts[s] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("view: broadcasts: %w", err)
		}
		return nil
	})
}
