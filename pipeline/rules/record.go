package rules

import (
	"context"
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
// the log (a redelivery) derives nothing. Errors are the record's, with
// the batch's first event id.
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
	res := Apply(line, view, news)
	if err := tx.Apply(ctx, &res.Changes); err != nil {
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
