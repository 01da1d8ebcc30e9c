// Package tracetest records a small line into a test database through the
// record's rules, as the tracker records it (each event appended to the
// hash-chained log with its derived rows, holds and gate decisions in the
// same transaction), for the tests of the trace questions, the audit and
// the trace web pages.
package tracetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/rules"
	"github.com/keiline/keiline/schema"
)

// The fixture's cars:
//
//	car 1  W01 C04 Q05 S01            all OK: released, shipped
//	car 2  W01 C04(NOK) R01 Q05 S01   a loose lug nut, re-tightened at R01: released, shipped
//	car 3  W01 C04(NOK) Q05           skipped rework: blocked at the gate, on hold
//	       and one station state change at C04.
var (
	// Start is the time of the first cycle: two hours before the first
	// instant of last month (UTC), derived from the clock, so that the
	// history spans two months (the month before last and last month),
	// both before now, whatever the day the tests run.
	Start = schema.MonthStart(time.Now()).AddDate(0, -1, 0).Add(-2 * time.Hour)
	// VINs are the cars 1, 2 and 3.
	VINs = []string{mustVIN(1), mustVIN(2), mustVIN(3)}
	// Unknown is a valid VIN of no car in the fixture.
	Unknown = mustVIN(999999)
	// Step is the time between two cycles of the fixture.
	Step = 17 * time.Minute
)

// At is the time of the fixture's i-th cycle, Cycles[i]: Start plus i
// steps and 123456 µs (a fraction the database keeps to the microsecond).
func At(i int) time.Time {
	return Start.Add(time.Duration(i)*Step + 123456*time.Microsecond)
}

// MonthSuffix names t's month (UTC) as the monthly partitions do: the
// joints of October 2026 are in joints_2026_10.
func MonthSuffix(t time.Time) string { return t.UTC().Format("2006_01") }

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

// Line is the fixture's line: W01 C04 R01 (the optional rework bay) Q05
// (the quality gate) S01.
var Line = rules.Line{Route: rules.Route{Plant: "US1", Line: "L1", Gate: "Q05", Stations: []rules.RouteStation{
	{ID: "W01"}, {ID: "C04"}, {ID: "R01", Optional: true}, {ID: "Q05"}, {ID: "S01"},
}}}

// Record records the fixture into s, each event in a transaction of its
// own through the record's rules (as the tracker records a batch), and
// returns the event ids of each car's cycles by station:
// Record(t, s)[2]["R01"].
func Record(t testing.TB, s *schema.Store) map[int]map[string]string {
	t.Helper()
	ids := map[int]map[string]string{1: {}, 2: {}, 3: {}}
	counters := map[string]uint32{}
	for i, fc := range Cycles {
		at := At(i)
		vin := VINs[fc.Car-1]
		counters[fc.Station]++
		c := fixtureCycleData(fc.Car, fc.Station, fc.NOK, counters[fc.Station], at)
		ev, err := event.NewEvent("US1", "L1", fc.Station, event.KindCycle, vin, 0, uint64(counters[fc.Station]), at, at.Add(time.Second), c)
		if err != nil {
			t.Fatal(err)
		}
		ids[fc.Car][fc.Station] = ev.ID
		RecordEvents(t, s, &Line, ev)
	}
	// One station state change.
	at := Start.Add(5 * time.Minute).Add(987654321)
	st := &event.State{Counter: 7, State: "fault", FaultCode: 12, FaultText: "tool fault", VinPresent: VINs[1]}
	ev, err := event.NewEvent("US1", "L1", "C04", event.KindState, "", 0, uint64(7), at, at, st)
	if err != nil {
		t.Fatal(err)
	}
	RecordEvents(t, s, &Line, ev)
	return ids
}

// RecordEvents records evs into s in one transaction through the record's
// rules for line, as the tracker records a batch, and returns what the
// rules derived.
func RecordEvents(t testing.TB, s *schema.Store, line *rules.Line, evs ...*event.Event) *rules.Result {
	t.Helper()
	rows := make([]schema.EventRow, len(evs))
	in := make([]rules.Input, len(evs))
	for i, ev := range evs {
		payload, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if in[i], err = rules.Decode(ev); err != nil {
			t.Fatal(err)
		}
		rows[i] = rules.Row(ev, payload)
	}
	var res *rules.Result
	err := s.WithTx(t.Context(), func(tx *schema.Tx) error {
		var err error
		_, res, err = rules.Record(t.Context(), tx, line, rows, in)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TorqueLine is Line with a tightening controller at C04, C04-NR1, that
// makes the class A joints lug_fl_1 to lug_fl_4 of every car.
var TorqueLine = rules.Line{Route: Line.Route, Torque: &rules.Torque{ClassA: func(station, key, model, variant string) []string {
	if station == "C04" {
		return []string{"lug_fl_1", "lug_fl_2", "lug_fl_3", "lug_fl_4"}
	}
	return nil
}}}

// ToolSerial is the serial number of C04-NR1's tool.
const ToolSerial = "NR1-0001"

// Tightening returns the event of C04-NR1's tightening id on car (1, 2 or
// 3; 0 for a VIN that is none of the line's) of joint (lug_fl_n, its
// place n in the batch), OK or NOK, made at at.
func Tightening(t testing.TB, car int, id uint32, joint, result string, at time.Time) *event.Event {
	t.Helper()
	v := Unknown
	if car > 0 {
		v = VINs[car-1]
	}
	var n int
	fmt.Sscanf(joint, "lug_fl_%d", &n)
	td := &event.Tightening{Controller: "C04-NR1", Channel: 1, TighteningID: id, VIN: v, Pset: 2, PsetName: "M12 wheel nut", BatchSize: 4,
		BatchCounter: n, BatchStatus: event.BatchRunning, Result: result, TorqueStatus: event.StatusOK, AngleStatus: event.StatusOK,
		TorqueNm: new(108.5 + float64(id)/100), TorqueMinNm: new(95.0), TorqueMaxNm: new(120.0), TorqueTargetNm: new(108.0),
		AngleDeg: new(44.5), AngleMinDeg: new(30.0), AngleMaxDeg: new(60.0), AngleTargetDeg: new(45.0),
		TorqueUnit: "Nm", ControllerTime: at.Truncate(time.Second), Joint: joint, Class: "A", ToolSerial: ToolSerial, MID: 61}
	if result == event.StatusNOK {
		td.TorqueNm, td.TorqueStatus = new(91.25), event.StatusLow
	}
	if n == 4 {
		td.BatchStatus = event.StatusOK
	}
	ev, err := event.NewTighteningEvent("US1", "L1", "C04", v, td, at.Truncate(time.Second), at)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// RecordTightenings records, after Record, C04-NR1's tightenings at C04
// through TorqueLine, one transaction each, and returns their events in
// order: car 1's four joints OK; car 2's lug_fl_2 NOK, then OK; car 3's
// lug_fl_1 made while the tool was disabled. They were made during each
// car's C04 cycle (the events reach the record after the fixture's
// cycles, as results fetched late would).
func RecordTightenings(t testing.TB, s *schema.Store) []*event.Event {
	t.Helper()
	c04 := map[int]time.Time{}
	for i, fc := range Cycles {
		if fc.Station == "C04" {
			c04[fc.Car] = Start.Add(time.Duration(i) * Step)
		}
	}
	var evs []*event.Event
	id := uint32(100)
	add := func(car int, joint, result string, disabled bool) {
		id++
		ev := Tightening(t, car, id, joint, result, c04[car].Add(-time.Duration(40-int(id%10)*5)*time.Second))
		if disabled {
			td, err := ev.Tightening()
			if err != nil {
				t.Fatal(err)
			}
			td.WhileDisabled = true
			if ev, err = event.NewTighteningEvent(ev.Plant, ev.Line, ev.Station, ev.VIN, td, ev.OccurredAt, ev.RecordedAt); err != nil {
				t.Fatal(err)
			}
		}
		evs = append(evs, ev)
	}
	for k := 1; k <= 4; k++ {
		add(1, fmt.Sprintf("lug_fl_%d", k), event.StatusOK, false)
	}
	add(2, "lug_fl_2", event.StatusNOK, false)
	add(2, "lug_fl_2", event.StatusOK, false)
	add(3, "lug_fl_1", event.StatusOK, true)
	for _, ev := range evs {
		RecordEvents(t, s, &TorqueLine, ev)
	}
	return evs
}
