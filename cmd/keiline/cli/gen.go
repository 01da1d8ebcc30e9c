package cli

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/rules"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/simulator"
)

// Synthetic history: the default line (simulator.History) as a plant runs
// it, two shifts a day at a takt of 60 s, recorded through the tracker's
// own code path (rules.Record: the hash-chained log, the record's rules,
// one round of COPYs per batch) in time order.
const (
	// GenTakt is the takt of generated history.
	GenTakt = 60 * time.Second
	// GenShiftStart and GenShiftHours are when the generated line runs
	// each day (UTC): two 8-hour shifts.
	GenShiftStart = 6 * time.Hour
	GenShiftHours = 16
	// GenBatchDefault is how many events go into one transaction.
	GenBatchDefault = 2048
	// genCycleTime is how long each generated cycle takes.
	genCycleTime = 45 * time.Second
)

// genOptions configures generateHistory.
type genOptions struct {
	Cars        int
	Seed        int64
	End         time.Time // the last production day ends before this
	Batch       int       // events per transaction; defaults to GenBatchDefault
	Plant, Line string
	Progress    func(cars int) // called after each committed batch with the cars shipped so far
}

// genEvent is one generated cycle.
type genEvent struct {
	at      time.Time
	car     int
	visit   int // index in the car's visits
	station string
	pos     int
}

type eventHeap []genEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].pos > h[j].pos // downstream first, as the line moves
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(genEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// genFrameAt is when car index (from 1) is framed: slot index-1 of the
// production days that end before end.
func genFrameAt(index, cars int, end time.Time) time.Time {
	perDay := GenShiftHours * int(time.Hour/GenTakt)
	days := (cars + perDay - 1) / perDay
	start := end.UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
	s := index - 1
	return start.AddDate(0, 0, s/perDay).Add(GenShiftStart + time.Duration(s%perDay)*GenTakt)
}

// generateHistory loads o.Cars cars of synthetic history into store.
func generateHistory(ctx context.Context, store *schema.Store, o genOptions) error {
	if o.Batch <= 0 {
		o.Batch = GenBatchDefault
	}
	route := simulator.LineStations()
	pos := map[string]int{}
	line := &rules.Line{Route: rules.Route{Plant: o.Plant, Line: o.Line}}
	for i, s := range route {
		pos[s.ID] = i
		line.Route.Stations = append(line.Route.Stations, rules.RouteStation{ID: s.ID, Optional: s.Optional})
		if s.Zone == "quality" && !s.Optional {
			line.Route.Gate = s.ID // the line's last quality station, as the tracker's route has it
		}
	}
	last := route[len(route)-1].ID
	cars := map[int]simulator.TruthCar{}
	var pending eventHeap
	counters := map[string]uint32{}
	g := &genBatch{store: store, o: o, line: line, last: last, cars: cars}
	flush := func(before time.Time) error {
		for pending.Len() > 0 && pending[0].at.Before(before) {
			e := heap.Pop(&pending).(genEvent)
			counters[e.station]++
			if err := g.add(ctx, e, counters[e.station]); err != nil {
				return err
			}
		}
		return nil
	}
	err := simulator.History(o.Seed, "", o.Cars, func(c simulator.TruthCar) error {
		index := len(cars) + g.shipped + 1
		framed := genFrameAt(index, o.Cars, o.End)
		if err := flush(framed); err != nil {
			return err
		}
		cars[index] = c
		for k, st := range c.Stations {
			heap.Push(&pending, genEvent{at: framed.Add(time.Duration(k)*GenTakt + genCycleTime), car: index, visit: k, station: st.Station, pos: pos[st.Station]})
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	if err := flush(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		return err
	}
	return g.commit(ctx)
}

// genBatch collects one transaction's events and records them through the
// record's rules, as the tracker does.
type genBatch struct {
	store   *schema.Store
	o       genOptions
	line    *rules.Line
	last    string
	cars    map[int]simulator.TruthCar
	shipped int

	rows []schema.EventRow
	in   []rules.Input
	gone []int // cars that left the line in this batch
}

func (g *genBatch) add(ctx context.Context, e genEvent, counter uint32) error {
	c := g.cars[e.car]
	st := c.Stations[e.visit]
	cy := &event.Cycle{Counter: counter, Result: st.Result, Model: c.Model, Variant: c.Variant, Colour: c.Colour,
		StartedAt: e.at.Add(-genCycleTime), Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}}
	for _, p := range st.Parts {
		cy.Parts = append(cy.Parts, event.Part(p))
	}
	for _, j := range st.Joints {
		cy.Joints = append(cy.Joints, event.Joint{Joint: j.Name, Tool: j.Tool, TorqueNm: new(j.TorqueNm), AngleDeg: new(j.AngleDeg), OK: new(j.OK)})
	}
	for _, x := range st.Tests {
		cy.Tests = append(cy.Tests, event.Test{Name: x.Name, Value: new(x.Value), Unit: x.Unit, Low: new(x.Low), High: new(x.High), OK: new(x.OK)})
	}
	ev, err := event.NewEvent(g.o.Plant, g.o.Line, st.Station, event.KindCycle, c.VIN, 0, uint64(counter), e.at, e.at.Add(150*time.Millisecond), cy)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("vin %s: event %s: %w", c.VIN, ev.ID, err)
	}
	g.rows = append(g.rows, rules.Row(ev, payload))
	g.in = append(g.in, rules.Input{Event: ev, Cycle: cy})
	if st.Station == g.last {
		g.gone = append(g.gone, e.car)
	}
	if len(g.rows) >= g.o.Batch {
		return g.commit(ctx)
	}
	return nil
}

// commit records the batch in one transaction.
func (g *genBatch) commit(ctx context.Context) error {
	if len(g.rows) == 0 {
		return nil
	}
	err := g.store.WithTx(ctx, func(tx *schema.Tx) error {
		fresh, _, err := rules.Record(ctx, tx, g.line, g.rows, g.in)
		if err != nil {
			return err
		}
		for i, f := range fresh {
			if !f {
				return fmt.Errorf("event %s is already in the log: generate into an empty database", g.rows[i].ID)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("generate history: %w", err)
	}
	for _, car := range g.gone {
		delete(g.cars, car)
	}
	g.shipped += len(g.gone)
	g.rows, g.in, g.gone = g.rows[:0], g.in[:0], g.gone[:0]
	if g.o.Progress != nil {
		g.o.Progress(g.shipped)
	}
	return nil
}
