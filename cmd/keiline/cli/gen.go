package cli

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/simulator"
)

// Synthetic history: the default line (simulator.History) as a plant runs
// it, two shifts a day at a takt of 60 s, recorded through the tracker's
// own schema code path (AppendEvents with the hash chain, SaveVisits by
// COPY, holds, gate decisions) in time order.
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
	gate := ""
	for i, s := range route {
		pos[s.ID] = i
		if s.Zone == "quality" && !s.Optional {
			gate = s.ID
		}
	}
	last := route[len(route)-1].ID
	cars := map[int]simulator.TruthCar{}
	var pending eventHeap
	counters := map[string]uint32{}
	g := &genBatch{store: store, o: o, gate: gate, last: last, cars: cars, vehicles: map[string]schema.Vehicle{}}
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

// genBatch collects one transaction's events and derives their rows as the
// tracker does.
type genBatch struct {
	store    *schema.Store
	o        genOptions
	gate     string
	last     string
	cars     map[int]simulator.TruthCar
	vehicles map[string]schema.Vehicle
	shipped  int

	events []schema.EventRow
	visits []schema.Visit
	ops    []genOp // holds, closings and gate decisions in event order
	gone   []int   // cars that left the line in this batch
}

// genOp is a hold to open, the holds a rework closes, or a gate decision.
type genOp struct {
	hold          *schema.Hold
	close, decide bool
	vin, station  string
	eventID       string
	at            time.Time
}

func (g *genBatch) add(ctx context.Context, e genEvent, counter uint32) error {
	c := g.cars[e.car]
	st := c.Stations[e.visit]
	cy := &event.Cycle{Counter: counter, Result: st.Result, Model: c.Model, Variant: c.Variant, Colour: c.Colour,
		StartedAt: e.at.Add(-genCycleTime), Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}}
	v := schema.Visit{VIN: c.VIN, Station: st.Station, Pos: e.pos, Counter: int64(counter), Result: st.Result,
		StartedAt: cy.StartedAt, FinishedAt: e.at}
	var nok []string
	for _, p := range st.Parts {
		cy.Parts = append(cy.Parts, event.Part(p))
		v.Parts = append(v.Parts, event.Part(p))
	}
	for _, j := range st.Joints {
		cy.Joints = append(cy.Joints, event.Joint{Joint: j.Name, Tool: j.Tool, TorqueNm: new(j.TorqueNm), AngleDeg: new(j.AngleDeg), OK: new(j.OK)})
		v.Joints = append(v.Joints, event.Joint{Joint: j.Name, Tool: j.Tool, TorqueNm: new(j.TorqueNm), AngleDeg: new(j.AngleDeg), OK: new(j.OK)})
		if !j.OK {
			nok = append(nok, fmt.Sprintf("joint %s %.2f Nm %.1f°", j.Name, j.TorqueNm, j.AngleDeg))
		}
	}
	for _, x := range st.Tests {
		cy.Tests = append(cy.Tests, event.Test{Name: x.Name, Value: new(x.Value), Unit: x.Unit, Low: new(x.Low), High: new(x.High), OK: new(x.OK)})
		v.Tests = append(v.Tests, event.Test{Name: x.Name, Value: new(x.Value), Unit: x.Unit, Low: new(x.Low), High: new(x.High), OK: new(x.OK)})
		if !x.OK {
			nok = append(nok, fmt.Sprintf("test %s %g %s outside %g..%g", x.Name, x.Value, x.Unit, x.Low, x.High))
		}
	}
	ev, err := event.NewEvent(g.o.Plant, g.o.Line, st.Station, event.KindCycle, c.VIN, 0, uint64(counter), e.at, e.at.Add(150*time.Millisecond), cy)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("vin %s: event %s: %w", c.VIN, ev.ID, err)
	}
	v.EventID = ev.ID
	g.events = append(g.events, schema.EventRow{ID: ev.ID, Kind: ev.Kind, Plant: ev.Plant, Line: ev.Line, Station: ev.Station, VIN: ev.VIN,
		OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt, Payload: payload})
	g.visits = append(g.visits, v)

	veh, ok := g.vehicles[c.VIN]
	if !ok {
		veh = schema.Vehicle{VIN: c.VIN, Model: c.Model, Variant: c.Variant, Colour: c.Colour, FirstSeenAt: e.at, LastPos: -1}
	}
	veh.LastSeenAt, veh.LastStation, veh.LastPos = e.at, st.Station, e.pos
	if st.Station == g.last {
		veh.ShippedAt = e.at
		g.gone = append(g.gone, e.car)
	}
	g.vehicles[c.VIN] = veh
	switch {
	case st.Result == "NOK":
		g.ops = append(g.ops, genOp{hold: &schema.Hold{VIN: c.VIN, Station: st.Station, Kind: schema.HoldNOK,
			Reason: "NOK at " + st.Station + ": " + strings.Join(nok, "; "), EventID: ev.ID, At: e.at}})
	case st.Station == "R01":
		g.ops = append(g.ops, genOp{close: true, vin: c.VIN, eventID: ev.ID, at: e.at})
	case st.Station == g.gate:
		g.ops = append(g.ops, genOp{decide: true, vin: c.VIN, station: st.Station, eventID: ev.ID, at: e.at})
	}
	if len(g.events) >= g.o.Batch {
		return g.commit(ctx)
	}
	return nil
}

// commit writes the batch in one transaction.
func (g *genBatch) commit(ctx context.Context) error {
	if len(g.events) == 0 {
		return nil
	}
	err := g.store.WithTx(ctx, func(tx *schema.Tx) error {
		fresh, err := tx.AppendEvents(ctx, g.events)
		if err != nil {
			return err
		}
		for i, f := range fresh {
			if !f {
				return fmt.Errorf("event %s is already in the log: generate into an empty database", g.events[i].ID)
			}
		}
		vs := make([]schema.Vehicle, 0, len(g.vehicles))
		for _, v := range g.vehicles {
			vs = append(vs, v)
		}
		if err := tx.SaveVehicles(ctx, vs); err != nil {
			return err
		}
		if err := tx.SaveVisits(ctx, g.visits); err != nil {
			return err
		}
		var holds []schema.Hold
		for _, op := range g.ops {
			switch {
			case op.hold != nil:
				holds = append(holds, *op.hold)
				continue
			case len(holds) > 0:
				if err := tx.OpenHolds(ctx, holds); err != nil {
					return err
				}
				holds = holds[:0]
			}
			if op.close {
				if _, err := tx.CloseHolds(ctx, op.vin, []string{schema.HoldNOK}, op.eventID, op.at); err != nil {
					return err
				}
			}
			if op.decide {
				if _, err := tx.DecideGate(ctx, op.vin, op.station, op.eventID, op.at); err != nil {
					return err
				}
			}
		}
		return tx.OpenHolds(ctx, holds)
	})
	if err != nil {
		return fmt.Errorf("generate history: batch from event %s: %w", g.events[0].ID, err)
	}
	for _, car := range g.gone {
		delete(g.vehicles, g.cars[car].VIN)
		delete(g.cars, car)
	}
	g.shipped += len(g.gone)
	g.events, g.visits, g.ops, g.gone = g.events[:0], g.visits[:0], g.ops[:0], g.gone[:0]
	if g.o.Progress != nil {
		g.o.Progress(g.shipped)
	}
	return nil
}
