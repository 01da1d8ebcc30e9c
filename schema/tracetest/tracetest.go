// Package tracetest records a small line into a test database the way the
// tracker records it (each event appended to the hash-chained log with its
// derived rows, holds and gate decisions in the same transaction), for the
// tests of the trace questions, the audit and the trace web pages.
package tracetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// The fixture's cars:
//
//	car 1  W01 C04 Q05 S01            all OK: released, shipped
//	car 2  W01 C04(NOK) R01 Q05 S01   a loose lug nut, re-tightened at R01: released, shipped
//	car 3  W01 C04(NOK) Q05           skipped rework: blocked at the gate, on hold
//	       and one station state change at C04.
var (
	// Start is the time of the first cycle; the history spans two months.
	Start = time.Date(2026, 10, 31, 22, 0, 0, 0, time.UTC)
	// VINs are the cars 1, 2 and 3.
	VINs = []string{mustVIN(1), mustVIN(2), mustVIN(3)}
	// Unknown is a valid VIN of no car in the fixture.
	Unknown = mustVIN(999999)
	// Step is the time between two cycles of the fixture.
	Step = 17 * time.Minute
)

func mustVIN(serial int) string {
	v, err := vin.Make("7KL", "KW1NA", 2027, 'U', serial)
	if err != nil {
		panic(err)
	}
	return v
}

// Cycle is one station cycle of the fixture.
type Cycle struct {
	Car     int // 1, 2 or 3
	Station string
	NOK     bool
}

// Cycles are the fixture's cycles in order.
var Cycles = []Cycle{
	{Car: 1, Station: "W01"}, {Car: 2, Station: "W01"}, {Car: 1, Station: "C04"}, {Car: 3, Station: "W01"}, {Car: 2, Station: "C04", NOK: true},
	{Car: 1, Station: "Q05"}, {Car: 3, Station: "C04", NOK: true}, {Car: 2, Station: "R01"}, {Car: 1, Station: "S01"}, {Car: 3, Station: "Q05"}, {Car: 2, Station: "Q05"}, {Car: 2, Station: "S01"},
}

var fixturePos = map[string]int{"W01": 0, "C04": 1, "R01": 2, "Q05": 3, "S01": 4}

// fixtureCycleData is what station built into car.
func fixtureCycleData(car int, station string, nok bool, counter uint32, at time.Time) *event.Cycle {
	c := &event.Cycle{Counter: counter, Result: "OK", Model: "KW", Variant: "NA", Colour: "mint", StartedAt: at.Add(-40 * time.Second),
		Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}}
	switch station {
	case "W01":
		c.Parts = append(c.Parts, event.Part{PartNumber: "BIW-KW", Serial: fmt.Sprintf("BIW-KW-%06d", car), Lot: "BIW-LOT-00100", Supplier: "SUP-KLN-BODY"})
	case "C04":
		c.Parts = append(c.Parts, event.Part{PartNumber: "TYR-145-80R13", Lot: fmt.Sprintf("TYR-LOT-%05d", 200+car/2), Supplier: "SUP-ISHIDAI-TYRE"})
		for k := 1; k <= 4; k++ {
			j := event.Joint{Joint: fmt.Sprintf("lug_fl_%d", k), Tool: "C04-NR1", TorqueNm: new(108 + float64(car)/10 + float64(k)/100), AngleDeg: new(44.5), OK: new(true)}
			if nok && k == 2 {
				j.TorqueNm, j.OK = new(91.25), new(false)
				c.Result = "NOK"
			}
			c.Joints = append(c.Joints, j)
		}
		c.Tests = append(c.Tests, event.Test{Name: "torque_audit", Value: new(1.0), Unit: "pass/fail", Low: new(1.0), High: new(1.0), OK: new(true)})
	case "R01":
		c.Joints = append(c.Joints, event.Joint{Joint: "lug_fl_2", Tool: "R01-T1", TorqueNm: new(107.8), AngleDeg: new(40.1), OK: new(true)})
	}
	return c
}

// Record records the fixture into s and returns the event ids of each
// car's cycles by station: Record(t, s)[2]["R01"].
func Record(t testing.TB, s *schema.Store) map[int]map[string]string {
	t.Helper()
	ids := map[int]map[string]string{1: {}, 2: {}, 3: {}}
	counters := map[string]uint32{}
	vehicles := map[string]schema.Vehicle{}
	for i, fc := range Cycles {
		at := Start.Add(time.Duration(i) * Step).Add(123456789 * time.Nanosecond / 1000 * 1000)
		vin := VINs[fc.Car-1]
		counters[fc.Station]++
		c := fixtureCycleData(fc.Car, fc.Station, fc.NOK, counters[fc.Station], at)
		ev, err := event.NewEvent("US1", "L1", fc.Station, event.KindCycle, vin, 0, uint64(counters[fc.Station]), at, at.Add(time.Second), c)
		if err != nil {
			t.Fatal(err)
		}
		ids[fc.Car][fc.Station] = ev.ID
		payload, _ := json.Marshal(ev)
		v := vehicles[vin]
		if v.VIN == "" {
			v = schema.Vehicle{VIN: vin, Model: c.Model, Variant: c.Variant, Colour: c.Colour, FirstSeenAt: at}
		}
		v.LastSeenAt, v.LastStation, v.LastPos = at, fc.Station, fixturePos[fc.Station]
		if fc.Station == "S01" {
			v.ShippedAt = at
		}
		vehicles[vin] = v
		visit := schema.Visit{EventID: ev.ID, VIN: vin, Station: fc.Station, Pos: fixturePos[fc.Station], Counter: int64(c.Counter), Result: c.Result,
			StartedAt: c.StartedAt, FinishedAt: ev.OccurredAt}
		visit.Parts, visit.Joints, visit.Tests, visit.Bad = c.Parts, c.Joints, c.Tests, c.Bad
		err = s.WithTx(t.Context(), func(tx *schema.Tx) error {
			if _, err := tx.AppendEvents(t.Context(), []schema.EventRow{{ID: ev.ID, Kind: ev.Kind, Plant: ev.Plant, Line: ev.Line, Station: ev.Station,
				VIN: vin, OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt, Payload: payload}}); err != nil {
				return err
			}
			if err := tx.SaveVehicles(t.Context(), []schema.Vehicle{v}); err != nil {
				return err
			}
			if err := tx.SaveVisits(t.Context(), []schema.Visit{visit}); err != nil {
				return err
			}
			switch {
			case c.Result == "NOK":
				if err := tx.OpenHolds(t.Context(), []schema.Hold{{VIN: vin, Station: fc.Station, Kind: schema.HoldNOK, Reason: "NOK at " + fc.Station, EventID: ev.ID, At: ev.OccurredAt}}); err != nil {
					return err
				}
			case fc.Station == "R01":
				if _, err := tx.CloseHolds(t.Context(), vin, []string{schema.HoldNOK}, ev.ID, ev.OccurredAt); err != nil {
					return err
				}
			case fc.Station == "Q05":
				if _, err := tx.DecideGate(t.Context(), vin, fc.Station, ev.ID, ev.OccurredAt); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// One station state change.
	at := Start.Add(5 * time.Minute).Add(987654321)
	st := &event.State{Counter: 7, State: "fault", FaultCode: 12, FaultText: "tool fault", VinPresent: VINs[1]}
	ev, err := event.NewEvent("US1", "L1", "C04", event.KindState, "", 0, uint64(7), at, at, st)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(ev)
	err = s.WithTx(t.Context(), func(tx *schema.Tx) error {
		if _, err := tx.AppendEvents(t.Context(), []schema.EventRow{{ID: ev.ID, Kind: ev.Kind, Plant: ev.Plant, Line: ev.Line, Station: ev.Station,
			OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt, Payload: payload}}); err != nil {
			return err
		}
		return tx.SaveStationStates(t.Context(), []schema.StationState{{EventID: ev.ID, Station: "C04", Counter: 7, State: st.State,
			FaultCode: st.FaultCode, FaultText: st.FaultText, VinPresent: st.VinPresent, ChangedAt: ev.OccurredAt}})
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
