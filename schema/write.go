package schema

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// A batch of events reaches the record in three rounds: AppendAndView
// locks the chain head, finds the duplicates and reads the view of the
// batch's cars in one round trip, then appends the new events; the rules
// (pipeline/rules) derive the changes in memory; Apply writes them, with
// every update (and the chain head) in one pipelined batch. A table's
// rows go by COPY when there are many (CopyMin), else as an INSERT from
// unnest'ed arrays in that last round trip: a small batch, as a live line
// makes, costs three round trips and the commit.

// AppendAndView appends the events not yet in the log, in order, to the
// hash-chained log (see AppendEvents) and returns for each whether it was
// new, with the view q asks for. The view is read after the chain head is
// locked, so no other writer changes it before the transaction ends.
// View.Stored holds, by index in evs, the seq and payload the log already
// holds for each event that was not new (a payload of nil: retention
// removed it), so the caller can tell a redelivery from a conflict. It may
// be called again in the same transaction: the later appends chain on from
// the earlier ones; the events of separate calls must have distinct ids
// (an earlier call's rows may not be written yet when the next one looks
// for duplicates).
func (t *Tx) AppendAndView(ctx context.Context, evs []EventRow, q ViewQuery) ([]bool, *View, error) {
	fresh := make([]bool, len(evs))
	view := &View{Cars: map[string]*CarView{}, Pairs: map[string][]string{}, LastSeq: map[string]int64{}, Stored: map[int]StoredEvent{}}
	if len(evs) == 0 && q.empty() {
		return fresh, view, nil
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	b := &pgx.Batch{}
	var seq int64
	var prev []byte
	b.Queue(`SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE`).QueryRow(func(r pgx.Row) error {
		if err := r.Scan(&seq, &prev); err != nil {
			return fmt.Errorf("event log: lock chain head: %w", err)
		}
		return nil
	})
	have := make(map[string]StoredEvent, len(evs))
	b.Queue(`SELECT i.event_id, i.seq, l.payload FROM event_ids i
		LEFT JOIN event_log l ON l.seq = i.seq AND l.occurred_at = i.occurred_at
		WHERE i.event_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		var id string
		var st StoredEvent
		if _, err := pgx.ForEachRow(rows, []any{&id, &st.Seq, &st.Payload}, func() error { have[id] = st; return nil }); err != nil {
			return fmt.Errorf("event log: find duplicates: %w", err)
		}
		return nil
	})
	if !q.empty() {
		queueView(b, q, view)
	}
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, err
	}
	if t.head != nil { // an earlier append of this transaction, not yet flushed
		seq, prev = t.head.seq, t.head.hash
	}
	var logRows, idRows [][]any
	var first, last time.Time
	for i, ev := range evs {
		if st, ok := have[ev.ID]; ok {
			view.Stored[i] = st
			continue
		}
		fresh[i] = true
		seq++
		have[ev.ID] = StoredEvent{Seq: seq, Payload: ev.Payload}
		hash := ChainHash(prev, seq, ev.ID, ev.Payload)
		logRows = append(logRows, []any{seq, ev.ID, ev.Kind, ev.Plant, ev.Line, ev.Station, ev.VIN, ev.OccurredAt, ev.RecordedAt, ev.Payload, prev, hash})
		idRows = append(idRows, []any{ev.ID, seq, ev.OccurredAt})
		prev = hash
		if first.IsZero() || ev.OccurredAt.Before(first) {
			first = ev.OccurredAt
		}
		if ev.OccurredAt.After(last) {
			last = ev.OccurredAt
		}
	}
	if len(logRows) == 0 {
		return fresh, view, nil
	}
	if err := t.ensurePartitions(ctx, first, last); err != nil {
		return nil, nil, err
	}
	if err := t.insert(ctx, copyTable{"event_ids", []string{"event_id text", "seq bigint", "occurred_at timestamptz"}, idRows}); err != nil {
		return nil, nil, fmt.Errorf("event log: index: %w", err)
	}
	if err := t.insert(ctx, copyTable{"event_log", []string{"seq bigint", "event_id text", "kind text", "plant text", "line text", "station text",
		"vin text", "occurred_at timestamptz", "recorded_at timestamptz", "payload bytea", "prev_hash bytea", "hash bytea"}, logRows}); err != nil {
		return nil, nil, fmt.Errorf("event log: append: %w", err)
	}
	// The chain head moves with the batch's last statements (Apply, or
	// the commit).
	t.later(`UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1`, "event log: move chain head", seq, prev)
	t.head = &chainHead{seq: seq, hash: prev}
	return fresh, view, nil
}

// CopyMin is the fewest rows of a table a batch writes by COPY. Fewer go
// as one INSERT … SELECT FROM unnest in the batch's last pipelined round
// trip: a live line's batches are a few events each, and a COPY costs
// round trips of its own.
const CopyMin = 32

// copyTable is the new rows of one table: cols are "name type" pairs.
type copyTable struct {
	table string
	cols  []string
	rows  [][]any
}

// names returns the column names of c.
func (c copyTable) names() []string {
	out := make([]string, len(c.cols))
	for i, col := range c.cols {
		out[i], _, _ = strings.Cut(col, " ")
	}
	return out
}

// insert writes c's rows: by COPY now when there are CopyMin or more,
// else queued as one INSERT from unnest'ed arrays, in row order.
func (t *Tx) insert(ctx context.Context, c copyTable) error {
	if len(c.rows) == 0 {
		return nil
	}
	what := fmt.Sprintf("save %d %s rows (first event %v)", len(c.rows), c.table, firstEvent(c))
	if len(c.rows) >= CopyMin {
		if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.names(), pgx.CopyFromRows(c.rows)); err != nil {
			t.forgetPartitions(err)
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	names := c.names()
	arrays := make([]string, len(c.cols))
	args := make([]any, len(c.cols))
	for j, col := range c.cols {
		_, typ, _ := strings.Cut(col, " ")
		arrays[j] = fmt.Sprintf("$%d::%s[]", j+1, typ)
		vals := make([]any, len(c.rows))
		for i, r := range c.rows {
			vals[i] = r[j]
		}
		args[j] = vals
	}
	list := strings.Join(names, ", ")
	t.later(`INSERT INTO `+pgx.Identifier{c.table}.Sanitize()+` (`+list+`) SELECT `+list+
		` FROM unnest(`+strings.Join(arrays, ", ")+`) WITH ORDINALITY AS u(`+list+`, ord) ORDER BY ord`, what, args...)
	return nil
}

// Apply writes the changes a batch derived: new rows by COPY (a table's
// few rows, fewer than CopyMin, as an INSERT), then the vehicles, the
// closes of earlier holds, the lot spans, the stations' latest state and
// alarm, the resolved pending cycles and the chain head in one pipelined
// round trip. Each visit's event must be new (see
// AppendAndView).
func (t *Tx) Apply(ctx context.Context, ch *Changes) error {
	for _, c := range append(visitCopies(ch.Visits), changeCopies(ch)...) {
		if err := t.insert(ctx, c); err != nil {
			return err
		}
	}
	t.laterVehicles(ch.Vehicles)
	t.laterCloses(ch.Closes)
	t.laterLots(ch.Visits)
	t.laterStatus(ch.States, ch.Alarms)
	t.laterResolved(ch.Resolved)
	return t.flush(ctx)
}

// changeCopies are the new rows of ch besides the visits'.
func changeCopies(ch *Changes) []copyTable {
	var copies []copyTable
	if len(ch.Holds) > 0 {
		rows := make([][]any, len(ch.Holds))
		for i, h := range ch.Holds {
			var closedID *string
			var closedAt *time.Time
			if h.ClosedEventID != "" {
				closedID, closedAt = &h.ClosedEventID, &h.ClosedAt
			}
			rows[i] = []any{h.VIN, h.Station, h.Kind, h.Reason, h.EventID, h.At, closedID, closedAt, h.Item.Kind, h.Item.Name, h.Item.Slot}
		}
		copies = append(copies, copyTable{"holds", []string{"vin text", "station text", "kind text", "reason text", "opened_event_id text", "opened_at timestamptz",
			"closed_event_id text", "closed_at timestamptz", "item_kind text", "item_name text", "item_slot int"}, rows})
	}
	if len(ch.Tightenings) > 0 {
		copies = append(copies, tighteningCopy(ch.Tightenings))
	}
	if len(ch.Gate) > 0 {
		rows := make([][]any, len(ch.Gate))
		for i, g := range ch.Gate {
			rows[i] = []any{g.EventID, g.VIN, g.Station, g.Released, g.OpenHolds, g.Reason, g.DecidedAt, g.Kind}
		}
		copies = append(copies, copyTable{"gate_decisions", []string{"event_id text", "vin text", "station text", "released boolean", "open_holds int", "reason text",
			"decided_at timestamptz", "kind text"}, rows})
	}
	if len(ch.Broadcasts) > 0 {
		rows := make([][]any, len(ch.Broadcasts))
		for i, b := range ch.Broadcasts {
			rows[i] = []any{b.Supplier, b.Seq, b.VIN, b.PartNumber, b.PartVariant, b.Install, b.EventID, b.PassedAt}
		}
		copies = append(copies, copyTable{"jis_broadcasts", []string{"supplier text", "seq bigint", "vin text", "part_number text", "part_variant text", "install text",
			"event_id text", "passed_at timestamptz"}, rows})
	}
	if len(ch.States) > 0 {
		rows := make([][]any, len(ch.States))
		for i, s := range ch.States {
			rows[i] = []any{s.EventID, s.Station, s.Counter, s.State, s.FaultCode, s.FaultText, s.Andon, s.VinPresent, s.ChangedAt}
		}
		copies = append(copies, copyTable{"station_states", []string{"event_id text", "station text", "counter bigint", "state text", "fault_code int", "fault_text text",
			"andon boolean", "vin_present text", "changed_at timestamptz"}, rows})
	}
	if len(ch.Alarms) > 0 {
		rows := make([][]any, len(ch.Alarms))
		for i, a := range ch.Alarms {
			rows[i] = []any{a.EventID, a.Station, a.Counter, a.Active, a.Code, a.Text, a.Cycle, a.At}
		}
		copies = append(copies, copyTable{"alarms", []string{"event_id text", "station text", "counter bigint", "active boolean", "code text", "text text", "cycle bigint",
			"occurred_at timestamptz"}, rows})
	}
	if len(ch.Humans) > 0 {
		rows := make([][]any, len(ch.Humans))
		for i, h := range ch.Humans {
			rows[i] = []any{h.EventID, h.Action, h.Station, h.VIN, h.UserID, h.User, h.Role, h.Reason, h.Code, h.Zone, h.Severity, h.Text,
				h.Lot, h.Meaning, h.Cites, h.At}
		}
		copies = append(copies, copyTable{"human_actions", []string{"event_id text", "action text", "station text", "vin text", "user_id bigint",
			"user_name text", "role text", "reason text", "code text", "zone text", "severity text", "text text", "lot text", "meaning text",
			"cites text", "occurred_at timestamptz"}, rows})
	}
	if len(ch.CarIDs) > 0 {
		rows := make([][]any, len(ch.CarIDs))
		for i, c := range ch.CarIDs {
			rows[i] = []any{c.Body, c.VIN, c.EventID, c.At}
		}
		copies = append(copies, copyTable{"car_ids", []string{"body text", "vin text", "event_id text", "paired_at timestamptz"}, rows})
	}
	if len(ch.Pending) > 0 {
		rows := make([][]any, len(ch.Pending))
		for i, p := range ch.Pending {
			var resolvedID *string
			var resolvedAt *time.Time
			if p.ResolvedEventID != "" {
				resolvedID, resolvedAt = &p.ResolvedEventID, &p.ResolvedAt
			}
			rows[i] = []any{p.EventID, p.Body, p.Station, p.At, p.VIN, resolvedID, resolvedAt}
		}
		copies = append(copies, copyTable{"pending_cycles", []string{"event_id text", "body text", "station text", "occurred_at timestamptz", "vin text",
			"resolved_event_id text", "resolved_at timestamptz"}, rows})
	}
	return copies
}

// tighteningCopy is the COPY of tightening results.
func tighteningCopy(ts []Tightening) copyTable {
	rows := make([][]any, len(ts))
	for i, t := range ts {
		var ct *time.Time
		if !t.ControllerTime.IsZero() {
			ct = &t.ControllerTime
		}
		rows[i] = []any{t.EventID, t.VIN, t.Station, t.Controller, t.Channel, int64(t.TighteningID), t.Tightening.VIN, t.Pset, t.PsetName,
			t.BatchSize, t.BatchCounter, t.BatchStatus, t.Result, t.TorqueStatus, t.AngleStatus,
			t.TorqueNm, t.TorqueMinNm, t.TorqueMaxNm, t.TorqueTargetNm, t.AngleDeg, t.AngleMinDeg, t.AngleMaxDeg, t.AngleTargetDeg,
			t.TorqueUnit, ct, t.Clock, t.Joint, t.Class, t.ToolSerial, t.MID, t.WhileDisabled, t.MadeAt}
	}
	return copyTable{"tightenings", []string{"event_id text", "vin text", "station text", "controller text", "channel int", "tightening_id bigint",
		"tool_vin text", "pset int", "pset_name text", "batch_size int", "batch_counter int", "batch_status text", "result text",
		"torque_status text", "angle_status text", "torque_nm float8", "torque_min_nm float8", "torque_max_nm float8", "torque_target_nm float8",
		"angle_deg float8", "angle_min_deg float8", "angle_max_deg float8", "angle_target_deg float8", "torque_unit text",
		"controller_time timestamptz", "clock text", "joint text", "class text", "tool_serial text", "mid int", "made_while_disabled boolean",
		"made_at timestamptz"}, rows}
}

// firstEvent names the first row's event of a COPY, for its error.
func firstEvent(c copyTable) any {
	for i, col := range c.names() {
		if col == "event_id" || col == "opened_event_id" {
			return c.rows[0][i]
		}
	}
	return c.rows[0][0]
}

// visitCopies are the COPYs of visits with their parts, joints, tests and
// bad values.
func visitCopies(visits []Visit) []copyTable {
	if len(visits) == 0 {
		return nil
	}
	vr := make([][]any, 0, len(visits))
	var pr, jr, tr, br [][]any
	for _, v := range visits {
		var started *time.Time
		if !v.StartedAt.IsZero() {
			started = &v.StartedAt
		}
		vr = append(vr, []any{v.EventID, v.VIN, v.Station, v.Pos, v.Counter, v.Result, started, v.FinishedAt})
		for i, p := range v.Parts {
			pr = append(pr, []any{v.EventID, i + 1, v.VIN, v.Station, p.PartNumber, p.Serial, p.Lot, p.Supplier, v.FinishedAt})
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
	return []copyTable{
		{"station_visits", []string{"event_id text", "vin text", "station text", "pos int", "cycle_counter bigint", "result text",
			"started_at timestamptz", "finished_at timestamptz"}, vr},
		{"installed_parts", []string{"event_id text", "slot int", "vin text", "station text", "part_number text", "serial text", "lot text",
			"supplier text", "installed_at timestamptz"}, pr},
		{"joints", []string{"event_id text", "slot int", "vin text", "station text", "joint text", "tool text", "torque_nm float8",
			"angle_deg float8", "ok boolean", "made_at timestamptz"}, jr},
		{"test_results", []string{"event_id text", "slot int", "vin text", "station text", "name text", "value float8", "unit text",
			"low float8", "high float8", "ok boolean", "tested_at timestamptz"}, tr},
		{"bad_values", []string{"event_id text", "tag text", "node_id text", "reason text"}, br},
	}
}

// laterVehicles queues the upsert of vehicles, one statement for all. A
// car's first and last seen times only ever widen: trace queries read
// only the partitions between them.
func (t *Tx) laterVehicles(vs []Vehicle) {
	if len(vs) == 0 {
		return
	}
	n := len(vs)
	vins, models, variants, colours, stations := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	firsts, lasts, shipped := make([]time.Time, n), make([]time.Time, n), make([]*time.Time, n)
	pos := make([]int32, n)
	for i, v := range vs {
		vins[i], models[i], variants[i], colours[i], stations[i] = v.VIN, v.Model, v.Variant, v.Colour, v.LastStation
		firsts[i], lasts[i], pos[i] = v.FirstSeenAt, v.LastSeenAt, int32(v.LastPos)
		if !v.ShippedAt.IsZero() {
			at := v.ShippedAt
			shipped[i] = &at
		}
	}
	t.later(`
		INSERT INTO vehicles (vin, model, variant, colour, first_seen_at, last_seen_at, last_station, last_pos, shipped_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[], $8::int[], $9::timestamptz[])
		ON CONFLICT (vin) DO UPDATE SET model = EXCLUDED.model, variant = EXCLUDED.variant, colour = EXCLUDED.colour,
			first_seen_at = least(vehicles.first_seen_at, EXCLUDED.first_seen_at),
			last_seen_at = greatest(vehicles.last_seen_at, EXCLUDED.last_seen_at), last_station = EXCLUDED.last_station, last_pos = EXCLUDED.last_pos,
			shipped_at = EXCLUDED.shipped_at`, fmt.Sprintf("save %d vehicles (first %s)", n, vins[0]),
		vins, models, variants, colours, firsts, lasts, stations, pos, shipped)
}

// laterCloses queues the closes of holds the record has, one statement.
func (t *Tx) laterCloses(cs []HoldClose) {
	if len(cs) == 0 {
		return
	}
	ids, events, ats := make([]int64, len(cs)), make([]string, len(cs)), make([]time.Time, len(cs))
	for i, c := range cs {
		ids[i], events[i], ats[i] = c.ID, c.EventID, c.At
	}
	t.later(`UPDATE holds h SET closed_event_id = c.event_id, closed_at = c.at
		FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) c(id, event_id, at)
		WHERE h.id = c.id AND h.closed_at IS NULL`, fmt.Sprintf("close %d holds (first by %s of vin %s)", len(cs), cs[0].EventID, cs[0].VIN), ids, events, ats)
}

// laterLots queues the widening of each supplier lot's span of
// installation times to cover the visits' parts.
func (t *Tx) laterLots(visits []Visit) {
	type lotKey struct{ lot, partNumber, supplier string }
	spans := map[lotKey][2]time.Time{}
	for _, v := range visits {
		for _, p := range v.Parts {
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
	}
	if len(spans) == 0 {
		return
	}
	var lots, numbers, suppliers []string
	var firsts, lasts []time.Time
	for k, sp := range spans {
		lots, numbers, suppliers = append(lots, k.lot), append(numbers, k.partNumber), append(suppliers, k.supplier)
		firsts, lasts = append(firsts, sp[0]), append(lasts, sp[1])
	}
	t.later(`
		INSERT INTO part_lots (lot, part_number, supplier, first_at, last_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) ORDER BY 1, 2, 3
		ON CONFLICT (lot, part_number, supplier) DO UPDATE SET
			first_at = least(part_lots.first_at, EXCLUDED.first_at), last_at = greatest(part_lots.last_at, EXCLUDED.last_at)
		WHERE EXCLUDED.first_at < part_lots.first_at OR EXCLUDED.last_at > part_lots.last_at`,
		fmt.Sprintf("save %d part lots", len(lots)), lots, numbers, suppliers, firsts, lasts)
}

// laterStatus queues the move of each station's latest state (never back
// to an older counter) and current alarm (the newest by the agent's
// counter) in station_status.
func (t *Tx) laterStatus(ss []StationState, as []Alarm) {
	if len(ss) > 0 {
		// One row per station: the state that wins when applied in order.
		latest := map[string]StationState{}
		var order []string
		for _, s := range ss {
			cur, ok := latest[s.Station]
			if !ok {
				order = append(order, s.Station)
			}
			if !ok || cur.Counter < s.Counter || cur.ChangedAt.Before(s.ChangedAt) {
				latest[s.Station] = s
			}
		}
		n := len(order)
		stations, states, texts, vins := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		counters, codes, andons, ats := make([]int64, n), make([]int32, n), make([]bool, n), make([]time.Time, n)
		for i, st := range order {
			s := latest[st]
			stations[i], counters[i], states[i], codes[i], texts[i], andons[i], vins[i], ats[i] = s.Station, s.Counter, s.State, s.FaultCode, s.FaultText, s.Andon, s.VinPresent, s.ChangedAt
		}
		t.later(`INSERT INTO station_status (station, counter, state, fault_code, fault_text, andon, vin_present, changed_at)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::boolean[], $7::text[], $8::timestamptz[])
			ON CONFLICT (station) DO UPDATE SET counter = EXCLUDED.counter, state = EXCLUDED.state,
				fault_code = EXCLUDED.fault_code, fault_text = EXCLUDED.fault_text, andon = EXCLUDED.andon,
				vin_present = EXCLUDED.vin_present, changed_at = EXCLUDED.changed_at
			WHERE station_status.counter < EXCLUDED.counter OR station_status.changed_at < EXCLUDED.changed_at`,
			fmt.Sprintf("update the state of %d stations", n), stations, counters, states, codes, texts, andons, vins, ats)
	}
	if len(as) > 0 {
		latest := map[string]Alarm{}
		var order []string
		for _, a := range as {
			cur, ok := latest[a.Station]
			if !ok {
				order = append(order, a.Station)
			}
			if !ok || cur.Counter < a.Counter {
				latest[a.Station] = a
			}
		}
		n := len(order)
		stations, codes, texts := make([]string, n), make([]string, n), make([]string, n)
		counters, cycles, ats := make([]int64, n), make([]int64, n), make([]time.Time, n)
		for i, st := range order {
			a := latest[st]
			stations[i], counters[i], ats[i] = a.Station, a.Counter, a.At
			if a.Active {
				codes[i], texts[i], cycles[i] = a.Code, a.Text, a.Cycle
			}
		}
		// A station that has not reported a state yet gets a row with its
		// alarm alone (state "", counter 0).
		t.later(`INSERT INTO station_status (station, counter, state, fault_code, fault_text, andon, vin_present, changed_at,
				alarm_counter, alarm_code, alarm_text, alarm_cycle, alarm_at)
			SELECT s, 0, '', 0, '', false, '', at, c, code, text, cycle, at
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[]) a(s, c, code, text, cycle, at)
			ON CONFLICT (station) DO UPDATE SET alarm_counter = EXCLUDED.alarm_counter, alarm_code = EXCLUDED.alarm_code,
				alarm_text = EXCLUDED.alarm_text, alarm_cycle = EXCLUDED.alarm_cycle, alarm_at = EXCLUDED.alarm_at
			WHERE station_status.alarm_counter < EXCLUDED.alarm_counter`,
			fmt.Sprintf("update the alarm of %d stations", n), stations, counters, codes, texts, cycles, ats)
	}
}

// laterResolved queues the resolution of earlier pending cycles.
func (t *Tx) laterResolved(ps []PendingCycle) {
	if len(ps) == 0 {
		return
	}
	ids, vins, by, ats := make([]string, len(ps)), make([]string, len(ps)), make([]string, len(ps)), make([]time.Time, len(ps))
	for i, p := range ps {
		ids[i], vins[i], by[i], ats[i] = p.EventID, p.VIN, p.ResolvedEventID, p.ResolvedAt
	}
	t.later(`UPDATE pending_cycles p SET vin = r.vin, resolved_event_id = r.by, resolved_at = r.at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) r(id, vin, by, at)
		WHERE p.event_id = r.id AND p.resolved_event_id IS NULL`,
		fmt.Sprintf("resolve %d pending cycles (first %s)", len(ps), ids[0]), ids, vins, by, ats)
}

// later queues a statement to run with the transaction's next flush (the
// end of Apply, or the commit); what names it in its error.
func (t *Tx) later(sql, what string, args ...any) {
	if t.queued == nil {
		t.queued = &pgx.Batch{}
	}
	t.queued.Queue(sql, args...)
	t.queuedWhat = append(t.queuedWhat, what)
}

// flush runs the queued statements in one round trip.
func (t *Tx) flush(ctx context.Context) error {
	if t.queued == nil {
		return nil
	}
	b, what := t.queued, t.queuedWhat
	t.queued, t.queuedWhat = nil, nil
	br := t.tx.SendBatch(ctx, b)
	for _, w := range what {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			t.forgetPartitions(err)
			return fmt.Errorf("%s: %w", w, err)
		}
	}
	return br.Close()
}
