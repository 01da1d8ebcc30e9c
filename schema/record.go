package schema

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/pipeline/event"
)

// Part, Joint, Test and BadValue are the rows a cycle derives; their JSON
// Visit is a finished station cycle on a car with everything it recorded.
type Visit struct {
	EventID    string
	VIN        string
	Station    string
	Pos        int // the station's place in the line
	Counter    int64
	Result     string
	StartedAt  time.Time // zero when unknown
	FinishedAt time.Time
	Parts      []event.Part
	Joints     []event.Joint
	Tests      []event.Test
	Bad        []event.BadValue
}

// Vehicle is a car's latest known place on the line.
type Vehicle struct {
	VIN                    string
	Model, Variant, Colour string
	FirstSeenAt            time.Time
	LastSeenAt             time.Time
	LastStation            string
	LastPos                int
	ShippedAt              time.Time // zero until shipped
}

// Hold puts a car on hold.
type Hold struct {
	VIN, Station, Kind, Reason string
	EventID                    string
	At                         time.Time
}

// Hold kinds.
const (
	HoldNOK     = "nok"
	HoldRoute   = "route"
	HoldBadData = "bad_data"
)

// StationState is a station's state change.
type StationState struct {
	EventID    string
	Station    string
	Counter    int64
	State      string
	FaultCode  int32
	FaultText  string
	Andon      bool
	VinPresent string
	ChangedAt  time.Time
}

// Vehicles returns the known vehicles among vins.
func (t *Tx) Vehicles(ctx context.Context, vins []string) (map[string]Vehicle, error) {
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

// SaveVehicles inserts or updates vehicles. A car's first and last seen
// times only ever widen: trace queries read only the partitions between
// them.
func (t *Tx) SaveVehicles(ctx context.Context, vs []Vehicle) error {
	b := &pgx.Batch{}
	for _, v := range vs {
		var shipped *time.Time
		if !v.ShippedAt.IsZero() {
			shipped = &v.ShippedAt
		}
		b.Queue(`
			INSERT INTO vehicles (vin, model, variant, colour, first_seen_at, last_seen_at, last_station, last_pos, shipped_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (vin) DO UPDATE SET model = EXCLUDED.model, variant = EXCLUDED.variant, colour = EXCLUDED.colour,
				first_seen_at = least(vehicles.first_seen_at, EXCLUDED.first_seen_at),
				last_seen_at = greatest(vehicles.last_seen_at, EXCLUDED.last_seen_at), last_station = EXCLUDED.last_station, last_pos = EXCLUDED.last_pos,
				shipped_at = EXCLUDED.shipped_at`,
			v.VIN, v.Model, v.Variant, v.Colour, v.FirstSeenAt, v.LastSeenAt, v.LastStation, v.LastPos, shipped)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("save %d vehicles: %w", len(vs), err)
	}
	return nil
}

// SaveVisits stores visits with their parts, joints, tests and bad values,
// and widens the installation span of each supplier lot they used. Each
// visit's event must be new (see AppendEvents).
func (t *Tx) SaveVisits(ctx context.Context, visits []Visit) error {
	if len(visits) == 0 {
		return nil
	}
	var vr, pr, jr, tr, br [][]any
	type lotKey struct{ lot, partNumber, supplier string }
	spans := map[lotKey][2]time.Time{}
	for _, v := range visits {
		var started *time.Time
		if !v.StartedAt.IsZero() {
			started = &v.StartedAt
		}
		vr = append(vr, []any{v.EventID, v.VIN, v.Station, v.Pos, v.Counter, v.Result, started, v.FinishedAt})
		for i, p := range v.Parts {
			pr = append(pr, []any{v.EventID, i + 1, v.VIN, v.Station, p.PartNumber, p.Serial, p.Lot, p.Supplier, v.FinishedAt})
			k := lotKey{p.Lot, p.PartNumber, p.Supplier}
			sp, ok := spans[k]
			if !ok || v.FinishedAt.Before(sp[0]) {
				sp[0] = v.FinishedAt
			}
			if !ok || v.FinishedAt.After(sp[1]) {
				sp[1] = v.FinishedAt
			}
			spans[k] = sp
		}
		for i, j := range v.Joints {
			jr = append(jr, []any{v.EventID, i + 1, v.VIN, v.Station, j.Joint, j.Tool, j.TorqueNm, j.AngleDeg, j.OK, v.FinishedAt})
		}
		for i, x := range v.Tests {
			tr = append(tr, []any{v.EventID, i + 1, v.VIN, v.Station, x.Name, x.Value, x.Unit, x.Low, x.High, x.OK, v.FinishedAt})
		}
		for _, b := range v.Bad {
			br = append(br, []any{v.EventID, b.Tag, b.NodeID, b.Reason})
		}
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"station_visits", []string{"event_id", "vin", "station", "pos", "cycle_counter", "result", "started_at", "finished_at"}, vr},
		{"installed_parts", []string{"event_id", "slot", "vin", "station", "part_number", "serial", "lot", "supplier", "installed_at"}, pr},
		{"joints", []string{"event_id", "slot", "vin", "station", "joint", "tool", "torque_nm", "angle_deg", "ok", "made_at"}, jr},
		{"test_results", []string{"event_id", "slot", "vin", "station", "name", "value", "unit", "low", "high", "ok", "tested_at"}, tr},
		{"bad_values", []string{"event_id", "tag", "node_id", "reason"}, br},
	} {
		if len(c.rows) == 0 {
			continue
		}
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("save %d %s rows: %w", len(c.rows), c.table, err)
		}
	}
	if len(spans) == 0 {
		return nil
	}
	// Each lot's span of installation times widens to cover these parts.
	var lots, numbers, suppliers []string
	var firsts, lasts []time.Time
	for k, sp := range spans {
		lots, numbers, suppliers = append(lots, k.lot), append(numbers, k.partNumber), append(suppliers, k.supplier)
		firsts, lasts = append(firsts, sp[0]), append(lasts, sp[1])
	}
	if _, err := t.tx.Exec(ctx, `
		INSERT INTO part_lots (lot, part_number, supplier, first_at, last_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) ORDER BY 1, 2, 3
		ON CONFLICT (lot, part_number, supplier) DO UPDATE SET
			first_at = least(part_lots.first_at, EXCLUDED.first_at), last_at = greatest(part_lots.last_at, EXCLUDED.last_at)
		WHERE EXCLUDED.first_at < part_lots.first_at OR EXCLUDED.last_at > part_lots.last_at`,
		lots, numbers, suppliers, firsts, lasts); err != nil {
		return fmt.Errorf("save %d part lots: %w", len(lots), err)
	}
	return nil
}

// OpenHolds puts cars on hold. A hold already opened by the same event and
// kind is left as it is.
func (t *Tx) OpenHolds(ctx context.Context, hs []Hold) error {
	if len(hs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, h := range hs {
		b.Queue(`INSERT INTO holds (vin, station, kind, reason, opened_event_id, opened_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (opened_event_id, kind, station) DO NOTHING`,
			h.VIN, h.Station, h.Kind, h.Reason, h.EventID, h.At)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("open %d holds: %w", len(hs), err)
	}
	return nil
}

// CloseHolds closes the open holds of the given kinds on vin, naming the
// event that closed them. It returns how many it closed.
func (t *Tx) CloseHolds(ctx context.Context, vin string, kinds []string, eventID string, at time.Time) (int64, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE holds SET closed_event_id = $3, closed_at = $4
		WHERE vin = $1 AND kind = ANY($2) AND closed_at IS NULL`, vin, kinds, eventID, at)
	if err != nil {
		return 0, fmt.Errorf("vin %s: close holds: %w", vin, err)
	}
	return tag.RowsAffected(), nil
}

// SaveStationStates logs state changes and moves each station's latest
// state forward (never back to an older counter).
func (t *Tx) SaveStationStates(ctx context.Context, ss []StationState) error {
	if len(ss) == 0 {
		return nil
	}
	rows := make([][]any, len(ss))
	b := &pgx.Batch{}
	for i, s := range ss {
		rows[i] = []any{s.EventID, s.Station, s.Counter, s.State, s.FaultCode, s.FaultText, s.Andon, s.VinPresent, s.ChangedAt}
		b.Queue(`INSERT INTO station_status (station, counter, state, fault_code, fault_text, andon, vin_present, changed_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (station) DO UPDATE SET counter = EXCLUDED.counter, state = EXCLUDED.state,
				fault_code = EXCLUDED.fault_code, fault_text = EXCLUDED.fault_text, andon = EXCLUDED.andon,
				vin_present = EXCLUDED.vin_present, changed_at = EXCLUDED.changed_at
			WHERE station_status.counter < EXCLUDED.counter OR station_status.changed_at < EXCLUDED.changed_at`,
			s.Station, s.Counter, s.State, s.FaultCode, s.FaultText, s.Andon, s.VinPresent, s.ChangedAt)
	}
	if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{"station_states"},
		[]string{"event_id", "station", "counter", "state", "fault_code", "fault_text", "andon", "vin_present", "changed_at"},
		pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("save %d station states: %w", len(ss), err)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("update station status: %w", err)
	}
	return nil
}

// OpenRouteHolds returns, per VIN among vins, the stations of its open
// route holds (stations a car was seen to skip).
func (t *Tx) OpenRouteHolds(ctx context.Context, vins []string) (map[string]map[string]bool, error) {
	rows, err := t.tx.Query(ctx, `SELECT vin, station FROM holds WHERE vin = ANY($1) AND kind = $2 AND closed_at IS NULL`, vins, HoldRoute)
	if err != nil {
		return nil, fmt.Errorf("open route holds: %w", err)
	}
	out := map[string]map[string]bool{}
	var vin, station string
	_, err = pgx.ForEachRow(rows, []any{&vin, &station}, func() error {
		if out[vin] == nil {
			out[vin] = map[string]bool{}
		}
		out[vin][station] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open route holds: %w", err)
	}
	return out, nil
}

// CloseStationHolds closes vin's open holds of kind at station, naming the
// event that closed them.
func (t *Tx) CloseStationHolds(ctx context.Context, vin, kind, station, eventID string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE holds SET closed_event_id = $4, closed_at = $5
		WHERE vin = $1 AND kind = $2 AND station = $3 AND closed_at IS NULL`, vin, kind, station, eventID, at)
	if err != nil {
		return fmt.Errorf("vin %s: close %s holds at %s: %w", vin, kind, station, err)
	}
	return nil
}
