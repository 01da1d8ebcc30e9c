package schema

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/pipeline/event"
)

// CarRecord is what was built into one car, in the shape of the
// simulator's truth file: its stations in visit order.
type CarRecord struct {
	VIN      string          `json:"vin"`
	Model    string          `json:"model"`
	Variant  string          `json:"variant"`
	Colour   string          `json:"colour"`
	Stations []StationRecord `json:"stations"`
	// Tightenings are the car's tightening controller results, in the
	// order they were made (by controller, then tightening id, at one
	// instant).
	Tightenings []TighteningRecord `json:"tightenings,omitempty"`
}

// TighteningRecord is one tightening result of a car as the record holds
// it: the event's data with its id, station and time.
type TighteningRecord struct {
	EventID string `json:"event_id"`
	Station string `json:"station"`
	event.Tightening
	MadeAt time.Time `json:"made_at"`
}

// StationRecord is one station's cycle on a car.
type StationRecord struct {
	Station string        `json:"station"`
	Result  string        `json:"result"`
	Parts   []event.Part  `json:"parts"`
	Joints  []event.Joint `json:"joints"`
	Tests   []event.Test  `json:"tests"`
	// Unreadable are the tags the PLC gave with bad quality (their values
	// are unknown), as the simulator's truth names them.
	Unreadable []string `json:"unreadable,omitempty"`
}

// CarTrace is the full record of one car for people and auditors: its
// route with every part, joint and test, its holds and quality gate
// decisions, where it is now, and the event log rows behind it.
type CarTrace struct {
	Vehicle Vehicle
	Status  CarStatus
	Visits  []Visit
	Holds   []HoldRecord
	Gate    []GateDecision
	// Tightenings are its tightening results in the order they were made.
	Tightenings []Tightening
	// Humans are people's decisions about the car, oldest first.
	Humans []HumanAction
	// Chain maps each event id of the car to its event log row: sequence
	// number and chained hash, the fingerprint `keiline audit verify`
	// checks.
	Chain map[string]ChainRef
}

// ChainRef is an event's place in the hash-chained event log.
type ChainRef struct {
	Seq  int64  `json:"seq"`
	Hash []byte `json:"hash"`
}

// exportPage is how many cars Export reads at a time.
const exportPage = 500

// Export calls fn for every car, ordered by VIN, reading the record a page
// of cars at a time.
func (s *Store) Export(ctx context.Context, fn func(CarRecord) error) error {
	after := ""
	for {
		rows, err := s.pool.Query(ctx, `SELECT vin FROM vehicles WHERE vin > $1 ORDER BY vin LIMIT $2`, after, exportPage)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		vins, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if len(vins) == 0 {
			return nil
		}
		traces, err := s.traces(ctx, vins)
		if err != nil {
			return err
		}
		for _, vin := range vins {
			if err := fn(traces[vin].Record()); err != nil {
				return err
			}
		}
		after = vins[len(vins)-1]
	}
}

// Trace returns everything recorded about vin, or an error wrapping
// ErrNotFound when no car has that VIN.
func (s *Store) Trace(ctx context.Context, vin string) (*CarTrace, error) {
	if notText("vin", vin) != nil {
		return nil, fmt.Errorf("trace %q: %w", vin, ErrNotFound)
	}
	traces, err := s.traces(ctx, []string{vin})
	if err != nil {
		return nil, err
	}
	t, ok := traces[vin]
	if !ok {
		return nil, fmt.Errorf("vin %s: %w", vin, ErrNotFound)
	}
	return t, nil
}

// Record turns a trace into the truth file's shape.
func (c *CarTrace) Record() CarRecord {
	r := CarRecord{VIN: c.Vehicle.VIN, Model: c.Vehicle.Model, Variant: c.Vehicle.Variant, Colour: c.Vehicle.Colour, Stations: []StationRecord{}}
	for _, v := range c.Visits {
		sr := StationRecord{Station: v.Station, Result: v.Result, Parts: v.Parts, Joints: v.Joints, Tests: v.Tests}
		for _, b := range v.Bad {
			sr.Unreadable = append(sr.Unreadable, b.Tag)
		}
		r.Stations = append(r.Stations, sr)
	}
	for _, t := range c.Tightenings {
		r.Tightenings = append(r.Tightenings, t.Record())
	}
	return r
}

// Record is t as a car's record shows it.
func (t Tightening) Record() TighteningRecord {
	return TighteningRecord{EventID: t.EventID, Station: t.Station, Tightening: t.Tightening, MadeAt: t.MadeAt}
}

// traces reads the record of vins in one read-only snapshot: the vehicles
// first, for the time span their rows lie in, then every other table in
// one round trip, reading only the partitions of that span.
func (s *Store) traces(ctx context.Context, vins []string) (map[string]*CarTrace, error) {
	out := map[string]*CarTrace{}
	err := readOnly(ctx, s, func(tx pgx.Tx) error {
		t := &Tx{tx: tx, store: s}
		vs, err := t.vehicles(ctx, vins)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return nil
		}
		var from, to time.Time
		found := make([]string, 0, len(vs))
		for vin, v := range vs {
			out[vin] = &CarTrace{Vehicle: v, Visits: []Visit{}, Holds: []HoldRecord{}, Gate: []GateDecision{}, Humans: []HumanAction{}, Chain: map[string]ChainRef{}}
			found = append(found, vin)
			if from.IsZero() || v.FirstSeenAt.Before(from) {
				from = v.FirstSeenAt
			}
			if v.LastSeenAt.After(to) {
				to = v.LastSeenAt
			}
		}
		sort.Strings(found)
		b := &pgx.Batch{}
		b.Queue(`SELECT event_id, vin, station, pos, cycle_counter, result, coalesce(started_at, 'epoch'), finished_at
			FROM station_visits WHERE vin = ANY($1) AND finished_at BETWEEN $2 AND $3 ORDER BY vin, finished_at, pos`, found, from, to)
		b.Queue(`SELECT event_id, part_number, serial, lot, supplier FROM installed_parts
			WHERE vin = ANY($1) AND installed_at BETWEEN $2 AND $3 ORDER BY event_id, slot`, found, from, to)
		b.Queue(`SELECT event_id, joint, tool, torque_nm, angle_deg, ok FROM joints
			WHERE vin = ANY($1) AND made_at BETWEEN $2 AND $3 ORDER BY event_id, slot`, found, from, to)
		b.Queue(`SELECT event_id, name, value, unit, low, high, ok FROM test_results
			WHERE vin = ANY($1) AND tested_at BETWEEN $2 AND $3 ORDER BY event_id, slot`, found, from, to)
		b.Queue(`SELECT b.event_id, b.tag, b.node_id, b.reason FROM bad_values b
			JOIN station_visits v ON v.event_id = b.event_id AND v.vin = ANY($1) AND v.finished_at BETWEEN $2 AND $3
			ORDER BY b.event_id, b.tag`, found, from, to)
		b.Queue(`SELECT id, vin, station, kind, reason, opened_event_id, opened_at, closed_event_id, closed_at, item_kind, item_name, item_slot
			FROM holds WHERE vin = ANY($1) ORDER BY id`, found)
		b.Queue(`SELECT event_id, vin, station, released, open_holds, reason, decided_at, kind
			FROM gate_decisions WHERE vin = ANY($1) ORDER BY decided_at, kind, event_id`, found)
		b.Queue(`SELECT `+tighteningCols+` FROM tightenings
			WHERE vin = ANY($1) AND made_at BETWEEN $2 AND $3 ORDER BY vin, made_at, controller, tightening_id`, found, from, to)
		b.Queue(`SELECT vin, event_id, seq, hash FROM event_log
			WHERE vin = ANY($1) AND vin <> '' AND occurred_at BETWEEN $2 AND $3`, found, from, to)
		// People's decisions come at any time (a release after the car's
		// last cycle): found by car, with their place in the log.
		b.Queue(`SELECT h.event_id, h.action, h.station, h.vin, h.user_id, h.user_name, h.role, h.reason, h.code, h.zone, h.severity, h.text,
			h.lot, h.meaning, h.cites, h.occurred_at, coalesce(i.seq, 0), coalesce(l.hash, '')
			FROM human_actions h LEFT JOIN event_ids i ON i.event_id = h.event_id
			LEFT JOIN event_log l ON l.seq = i.seq AND l.occurred_at = i.occurred_at
			WHERE h.vin = ANY($1) ORDER BY h.occurred_at, h.event_id`, found)
		br := tx.SendBatch(ctx, b)
		defer br.Close()

		var v Visit
		rows, _ := br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&v.EventID, &v.VIN, &v.Station, &v.Pos, &v.Counter, &v.Result, &v.StartedAt, &v.FinishedAt}, func() error {
			if v.StartedAt.Equal(time.Unix(0, 0)) {
				v.StartedAt = time.Time{}
			}
			if c := out[v.VIN]; c != nil {
				v.Parts, v.Joints, v.Tests = []event.Part{}, []event.Joint{}, []event.Test{}
				c.Visits = append(c.Visits, v)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace visits: %w", err)
		}
		byEvent := map[string]*Visit{}
		for _, c := range out {
			for i := range c.Visits {
				byEvent[c.Visits[i].EventID] = &c.Visits[i]
			}
		}
		var id string
		var p event.Part
		rows, _ = br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&id, &p.PartNumber, &p.Serial, &p.Lot, &p.Supplier}, func() error {
			if v := byEvent[id]; v != nil {
				v.Parts = append(v.Parts, p)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace parts: %w", err)
		}
		var j event.Joint
		rows, _ = br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&id, &j.Joint, &j.Tool, &j.TorqueNm, &j.AngleDeg, &j.OK}, func() error {
			if v := byEvent[id]; v != nil {
				v.Joints = append(v.Joints, j)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace joints: %w", err)
		}
		var x event.Test
		rows, _ = br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&id, &x.Name, &x.Value, &x.Unit, &x.Low, &x.High, &x.OK}, func() error {
			if v := byEvent[id]; v != nil {
				v.Tests = append(v.Tests, x)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace tests: %w", err)
		}
		var bv event.BadValue
		rows, _ = br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&id, &bv.Tag, &bv.NodeID, &bv.Reason}, func() error {
			if v := byEvent[id]; v != nil {
				v.Bad = append(v.Bad, bv)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace bad values: %w", err)
		}
		var h HoldRecord
		var closedID *string
		var closedAt *time.Time
		rows, _ = br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&h.ID, &h.VIN, &h.Station, &h.Kind, &h.Reason, &h.EventID, &h.At, &closedID, &closedAt, &h.Item.Kind, &h.Item.Name, &h.Item.Slot}, func() error {
			h.ClosedEventID, h.ClosedAt = "", time.Time{}
			if closedID != nil {
				h.ClosedEventID = *closedID
			}
			if closedAt != nil {
				h.ClosedAt = *closedAt
			}
			if c := out[h.VIN]; c != nil {
				c.Holds = append(c.Holds, h)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace holds: %w", err)
		}
		var g GateDecision
		rows, _ = br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&g.EventID, &g.VIN, &g.Station, &g.Released, &g.OpenHolds, &g.Reason, &g.DecidedAt, &g.Kind}, func() error {
			if c := out[g.VIN]; c != nil {
				c.Gate = append(c.Gate, g)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace gate decisions: %w", err)
		}
		rows, _ = br.Query()
		if err := scanTightenings(rows, func(x Tightening) {
			if c := out[x.VIN]; c != nil {
				c.Tightenings = append(c.Tightenings, x)
			}
		}); err != nil {
			return fmt.Errorf("trace tightenings: %w", err)
		}
		var vin string
		var ref ChainRef
		rows, _ = br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&vin, &id, &ref.Seq, &ref.Hash}, func() error {
			if c := out[vin]; c != nil {
				c.Chain[id] = ChainRef{Seq: ref.Seq, Hash: append([]byte(nil), ref.Hash...)}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace event log: %w", err)
		}
		var ha HumanAction
		rows, _ = br.Query()
		if _, err := pgx.ForEachRow(rows, []any{&ha.EventID, &ha.Action, &ha.Station, &ha.VIN, &ha.UserID, &ha.User, &ha.Role, &ha.Reason, &ha.Code,
			&ha.Zone, &ha.Severity, &ha.Text, &ha.Lot, &ha.Meaning, &ha.Cites, &ha.At, &ref.Seq, &ref.Hash}, func() error {
			if c := out[ha.VIN]; c != nil {
				c.Humans = append(c.Humans, ha)
				if ref.Seq > 0 {
					c.Chain[ha.EventID] = ChainRef{Seq: ref.Seq, Hash: append([]byte(nil), ref.Hash...)}
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("trace decisions: %w", err)
		}
		for _, c := range out {
			c.Status = statusOf(c.Vehicle, c.Holds)
		}
		if err := br.Close(); err != nil {
			return err
		}
		return t.chainOfUnnamed(ctx, out)
	})
	return out, err
}

// chainOfUnnamed finds the log rows of visits whose event does not carry
// the car's key in the log's vin column (a cycle that gave only a body
// number, or a car filed under its body number): one more round trip, only
// when there are such visits.
func (t *Tx) chainOfUnnamed(ctx context.Context, traces map[string]*CarTrace) error {
	var ids []string
	for _, c := range traces {
		for _, v := range c.Visits {
			if _, ok := c.Chain[v.EventID]; !ok {
				ids = append(ids, v.EventID)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := t.tx.Query(ctx, `SELECT v.vin, e.event_id, e.seq, e.hash FROM event_ids i
		JOIN event_log e ON e.seq = i.seq AND e.occurred_at = i.occurred_at
		JOIN station_visits v ON v.event_id = i.event_id AND v.finished_at = i.occurred_at
		WHERE i.event_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("trace event log: %w", err)
	}
	var vin, id string
	var ref ChainRef
	_, err = pgx.ForEachRow(rows, []any{&vin, &id, &ref.Seq, &ref.Hash}, func() error {
		if c := traces[vin]; c != nil {
			c.Chain[id] = ChainRef{Seq: ref.Seq, Hash: append([]byte(nil), ref.Hash...)}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("trace event log: %w", err)
	}
	return nil
}

// vehicles returns the known vehicles among vins.
func (t *Tx) vehicles(ctx context.Context, vins []string) (map[string]Vehicle, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT vin, model, variant, colour, first_seen_at, last_seen_at, last_station, last_pos, coalesce(shipped_at, 'epoch')
		FROM vehicles WHERE vin = ANY($1)`, vins)
	if err != nil {
		return nil, fmt.Errorf("vehicles: %w", err)
	}
	out := map[string]Vehicle{}
	var v Vehicle
	_, err = pgx.ForEachRow(rows, []any{&v.VIN, &v.Model, &v.Variant, &v.Colour, &v.FirstSeenAt, &v.LastSeenAt, &v.LastStation, &v.LastPos, &v.ShippedAt}, func() error {
		if v.ShippedAt.Equal(time.Unix(0, 0)) {
			v.ShippedAt = time.Time{}
		}
		out[v.VIN] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vehicles: %w", err)
	}
	return out, nil
}

// Counts are totals of the record, for progress and summaries.
type Counts struct {
	Events, Vehicles, Shipped, Visits, OpenHolds int64
	// Pending counts the cycles in the event log that wait for their body
	// number to be paired with a VIN before they are filed under a car.
	Pending int64
}

// Counts returns totals of the record.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT seq FROM chain_head WHERE id = 1),
		(SELECT count(*) FROM vehicles),
		(SELECT count(*) FROM vehicles WHERE shipped_at IS NOT NULL),
		(SELECT count(*) FROM station_visits),
		(SELECT count(*) FROM holds WHERE closed_at IS NULL),
		(SELECT count(*) FROM pending_cycles WHERE resolved_event_id IS NULL)`).Scan(&c.Events, &c.Vehicles, &c.Shipped, &c.Visits, &c.OpenHolds, &c.Pending)
	if err != nil {
		return c, fmt.Errorf("counts: %w", err)
	}
	return c, nil
}

// SetIdentityPolicy records the identity policy (event.IdentityPolicy)
// the line's tracker files cars under, for the audit. It returns an error
// naming the allowed policies when the record refuses p.
func (s *Store) SetIdentityPolicy(ctx context.Context, p string) error {
	if p == "" {
		p = "vin"
	}
	if _, err := s.pool.Exec(ctx, `UPDATE trace_settings SET identity_policy = $1 WHERE id = 1 AND identity_policy <> $1`, p); err != nil {
		return fmt.Errorf("identity policy %q (vin, body-number or any): %w", p, err)
	}
	return nil
}
