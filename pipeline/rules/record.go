package rules

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// Row returns the event log row of ev, whose message body is payload.
func Row(ev *event.Event, payload []byte) schema.EventRow {
	return schema.EventRow{ID: ev.ID, Kind: ev.Kind, Plant: ev.Plant, Line: ev.Line, Station: ev.Station, VIN: ev.VIN,
		OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt, Payload: payload}
}

// Record records a batch of events in tx, in three rounds: it appends the
// events (rows, with in their decoded inputs in the same order) to the
// hash-chained log and reads what the record knows of their cars
// (schema.Tx.AppendAndView), applies the rules to the events that were
// new (Apply), and writes what they derive (schema.Tx.Apply). It returns
// which events were new and what the rules derived; an event already in
// the log (a redelivery) derives nothing. An event whose id the log holds
// with a different content (event.Differs) is a conflict: Record appends
// the tracker's conflict event (event.NewConflict), which keeps the
// conflicting message in the chain and raises the station's alarm, once
// per conflicting message. With line.SPC, the values the batch recorded
// are checked against their characteristics' frozen limits, and each rule
// break is recorded as the tracker's spc event in the same transaction
// (spc.go); the caller keeps the monitor's new state with SPC.Commit once
// the transaction has committed. Errors are the record's, with the
// batch's first event id.
func Record(ctx context.Context, tx *schema.Tx, line *Line, rows []schema.EventRow, in []Input) ([]bool, *Result, error) {
	if len(rows) != len(in) {
		return nil, nil, fmt.Errorf("record: %d rows for %d events", len(rows), len(in))
	}
	fresh, view, err := tx.AppendAndView(ctx, rows, line.Needs(in))
	if err != nil {
		return nil, nil, batchErr(rows, err)
	}
	news := make([]Input, 0, len(in))
	for i, x := range in {
		if fresh[i] {
			news = append(news, x)
		}
	}
	conflicts, err := appendConflicts(ctx, tx, line, rows, in, view)
	if err != nil {
		return nil, nil, batchErr(rows, err)
	}
	res := Apply(line, view, append(news, conflicts...))
	if err := tx.Apply(ctx, &res.Changes); err != nil {
		return nil, nil, batchErr(rows, err)
	}
	if err := line.SPC.record(ctx, tx, line, res); err != nil {
		return nil, nil, batchErr(rows, err)
	}
	return fresh, res, nil
}

func batchErr(rows []schema.EventRow, err error) error {
	if len(rows) == 0 {
		return err
	}
	return fmt.Errorf("batch of %d events from %s: %w", len(rows), rows[0].ID, err)
}

// appendConflicts appends the conflict events of the batch's events that
// the log held with a different content, and returns the new ones as
// inputs for the rules (a conflicting message redelivered is one
// conflict).
func appendConflicts(ctx context.Context, tx *schema.Tx, line *Line, rows []schema.EventRow, in []Input, view *schema.View) ([]Input, error) {
	var crows []schema.EventRow
	var cin []Input
	for i := range rows { // in batch order: the log reads the same on every run
		st, ok := view.Stored[i]
		if !ok || st.Payload == nil {
			continue // new, or retention removed it: nothing to compare with
		}
		differs := event.Differs(st.Payload, rows[i].Payload)
		if differs == nil {
			continue
		}
		cf, err := event.NewConflict(in[i].Event, st.Seq, rows[i].Payload, differs, line.now())
		if err != nil {
			return nil, err
		}
		c, err := cf.Conflict()
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(cf)
		if err != nil {
			return nil, fmt.Errorf("conflict of %s: %w", cf.ID, err)
		}
		crows = append(crows, Row(cf, b))
		cin = append(cin, Input{Event: cf, Conflict: c})
	}
	if len(crows) == 0 {
		return nil, nil
	}
	fresh, _, err := tx.AppendAndView(ctx, crows, schema.ViewQuery{})
	if err != nil {
		return nil, fmt.Errorf("conflicts: %w", err)
	}
	var out []Input
	for k, x := range cin {
		if fresh[k] {
			out = append(out, x)
		}
	}
	return out, nil
}
