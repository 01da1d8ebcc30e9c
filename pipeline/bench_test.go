package pipeline_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
)

// benchEvents makes n realistic cycle events: each car visits stations
// like C04 (16 joints), F01 (3 parts, 8 joints) and a test station.
func benchEvents(b *testing.B, n int) []*event.Event {
	b.Helper()
	stations := []string{"W01", "W02", "C01", "Q05"}
	evs := make([]*event.Event, 0, n)
	for i := 0; len(evs) < n; i++ {
		v := mkVIN(b, i+1)
		for k, st := range stations {
			if len(evs) == n {
				break
			}
			c := &event.Cycle{Counter: uint32(i + 1), Result: "OK", Model: "KW", Variant: "NA", Colour: "mint",
				Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}}
			for p := range 3 {
				c.Parts = append(c.Parts, event.Part{PartNumber: fmt.Sprintf("PN-%s-%d", st, p), Serial: fmt.Sprintf("SN-%d-%d", i, p), Lot: "LOT-42", Supplier: "SUP-A"})
			}
			for j := range 12 {
				c.Joints = append(c.Joints, event.Joint{Joint: fmt.Sprintf("J%d", j+1), Tool: st + "-NR1", TorqueNm: new(108.25), AngleDeg: new(42.5), OK: new(true)})
			}
			for x := range 4 {
				c.Tests = append(c.Tests, event.Test{Name: fmt.Sprintf("T%d", x+1), Value: new(3.2), Unit: "mm", Low: new(2.5), High: new(3.5), OK: new(true)})
			}
			at := t0.Add(time.Duration(i*len(stations)+k) * time.Second)
			ev, err := event.NewEvent("US1", "L1", st, event.KindCycle, v, 0, uint64(uint32(i+1)), at, at, c)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

// rowsOf counts the rows an event makes in the record: the log row, the
// visit, parts, joints and tests (vehicles are not counted).
func rowsOf(evs []*event.Event) int {
	n := 0
	for _, ev := range evs {
		c, _ := ev.Cycle()
		n += 2 + len(c.Parts) + len(c.Joints) + len(c.Tests)
	}
	return n
}

// copyRows writes the same rows the tracker would with plain COPY, the
// raw limit of the server.
func copyRows(b *testing.B, store *schema.Store, evs []*event.Event) {
	b.Helper()
	var logRows, visits, parts, joints, tests [][]any
	prev := []byte{}
	for i, ev := range evs {
		c, _ := ev.Cycle()
		payload, _ := jsonMarshal(ev)
		seq := int64(i + 1)
		h := schema.ChainHash(prev, seq, ev.ID, payload)
		logRows = append(logRows, []any{seq, ev.ID, ev.Kind, ev.Plant, ev.Line, ev.Station, ev.VIN, ev.OccurredAt, ev.RecordedAt, payload, prev, h})
		prev = h
		visits = append(visits, []any{ev.ID, ev.VIN, ev.Station, 0, int64(c.Counter), c.Result, ev.OccurredAt})
		for k, p := range c.Parts {
			parts = append(parts, []any{ev.ID, k + 1, ev.VIN, ev.Station, p.PartNumber, p.Serial, p.Lot, p.Supplier, ev.OccurredAt})
		}
		for k, j := range c.Joints {
			joints = append(joints, []any{ev.ID, k + 1, ev.VIN, ev.Station, j.Joint, j.Tool, j.TorqueNm, j.AngleDeg, j.OK, ev.OccurredAt})
		}
		for k, x := range c.Tests {
			tests = append(tests, []any{ev.ID, k + 1, ev.VIN, ev.Station, x.Name, x.Value, x.Unit, x.Low, x.High, x.OK, ev.OccurredAt})
		}
	}
	ctx := b.Context()
	// The partitions of the events' months, as the tracker makes them.
	if err := store.EnsurePartitions(ctx, evs[0].OccurredAt, evs[len(evs)-1].OccurredAt); err != nil {
		b.Fatal(err)
	}
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"event_log", []string{"seq", "event_id", "kind", "plant", "line", "station", "vin", "occurred_at", "recorded_at", "payload", "prev_hash", "hash"}, logRows},
		{"station_visits", []string{"event_id", "vin", "station", "pos", "cycle_counter", "result", "finished_at"}, visits},
		{"installed_parts", []string{"event_id", "slot", "vin", "station", "part_number", "serial", "lot", "supplier", "installed_at"}, parts},
		{"joints", []string{"event_id", "slot", "vin", "station", "joint", "tool", "torque_nm", "angle_deg", "ok", "made_at"}, joints},
		{"test_results", []string{"event_id", "slot", "vin", "station", "name", "value", "unit", "low", "high", "ok", "tested_at"}, tests},
	} {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIngest measures the tracker's ingest of realistic events from
// JetStream into Postgres against the raw limit: a plain COPY of the same
// rows into the same tables on the same server, in the same run.
//
//	go test -run XXX -bench Ingest -benchtime 3x ./pipeline/
func BenchmarkIngest(b *testing.B) {
	const n = 4000
	evs := benchEvents(b, n)
	rows := rowsOf(evs)
	var trackerSec, copySec float64
	runs := 0
	b.StopTimer()
	for range b.N {
		// The raw limit: COPY into a fresh database.
		base, err := schema.Open(b.Context(), pgtest.NewDB(b))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		copyRows(b, base, evs)
		copySec += time.Since(start).Seconds()
		base.Close()

		// The tracker: the same events waiting in the stream, consumed
		// into another fresh database.
		e := newEnv(b)
		for _, ev := range evs {
			if err := e.pub.Publish(b.Context(), ev); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start = time.Now()
		tr, stop := e.runBatch(pipeline.BatchSizeDefault)
		for {
			if n, err := tr.Pending(b.Context()); err == nil && n == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		trackerSec += time.Since(start).Seconds()
		b.StopTimer()
		stop()
		if got := count(b, e.store, `SELECT count(*) FROM joints`); got != 12*n {
			b.Fatalf("tracker wrote %d joints, want %d", got, 12*n)
		}
		runs++
	}
	b.StartTimer()
	trackerRate := float64(rows*runs) / trackerSec
	copyRate := float64(rows*runs) / copySec
	b.ReportMetric(float64(n*runs)/trackerSec, "events/s")
	b.ReportMetric(trackerRate, "rows/s")
	b.ReportMetric(copyRate, "copy-rows/s")
	b.ReportMetric(trackerRate/copyRate, "ratio")
}

func jsonMarshal(ev *event.Event) ([]byte, error) { return json.Marshal(ev) }

// BenchmarkIngestFlood measures how much a flood of malformed messages
// slows the ingest of good ones: the same good events are consumed once
// alone and once interleaved with as many malformed messages (bad JSON,
// unknown stations), in the same run. ratio = good events/s with the flood
// over good events/s without it. Every malformed message must end up in the
// dead-letter stream.
//
//	go test -run XXX -bench IngestFlood -benchtime 2x ./pipeline/
func BenchmarkIngestFlood(b *testing.B) {
	const n = 2000
	evs := benchEvents(b, n)
	var cleanSec, floodSec float64
	b.StopTimer()
	for range b.N {
		for _, flood := range []bool{false, true} {
			e := newEnv(b)
			for i, ev := range evs {
				if err := e.pub.Publish(b.Context(), ev); err != nil {
					b.Fatal(err)
				}
				if flood {
					if i%2 == 0 {
						e.publishRaw("keiline.US1.L1.W01.cycle", []byte(`{"version":1,"id":"truncated`))
					} else {
						e.publishRaw("keiline.US1.L1.X99.cycle", []byte(`{"version":1,"kind":"cycle","plant":"US1","line":"L1","station":"X99"}`))
					}
				}
			}
			b.StartTimer()
			start := time.Now()
			tr, stop := e.runBatch(pipeline.BatchSizeDefault)
			for {
				if n, err := tr.Pending(b.Context()); err == nil && n == 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			sec := time.Since(start).Seconds()
			b.StopTimer()
			stop()
			if flood {
				floodSec += sec
				if st := tr.Stats(); st.DeadLettered != n || st.Recorded != n {
					b.Fatalf("stats %+v, want %d recorded and %d dead-lettered", st, n, n)
				}
				if s, err := e.js.Stream(b.Context(), event.DeadLetterStream); err != nil || s.CachedInfo().State.Msgs != n {
					b.Fatalf("dead-letter stream: %v, want %d messages", err, n)
				}
			} else {
				cleanSec += sec
			}
		}
	}
	b.StartTimer()
	b.ReportMetric(float64(n*b.N)/cleanSec, "good/s-clean")
	b.ReportMetric(float64(n*b.N)/floodSec, "good/s-flood")
	b.ReportMetric(cleanSec/floodSec, "ratio")
}
