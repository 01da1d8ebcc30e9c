package rules_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/rules"
	"github.com/keiline/keiline/schema"
)

// The rules as a table of events → rows, without a database: each case
// gives what the record knew (a view), the batch's events, and checks what
// Apply derives.

var t0 = time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func mkVIN(t testing.TB, serial int) string {
	t.Helper()
	v, err := vin.Make("7KL", "KW1NA", 2027, 'U', serial)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var line = rules.Line{Route: rules.Route{Plant: "US1", Line: "L1", Gate: "Q05", Stations: []rules.RouteStation{
	{ID: "W01"}, {ID: "W02"}, {ID: "T01"}, {ID: "C01"}, {ID: "R01", Optional: true}, {ID: "Q05"}, {ID: "S01"},
}}, Broadcast: &rules.Broadcast{Station: "T01", Suppliers: []rules.Supplier{
	{Name: "SEATCO", Part: "SEAT", Install: "C01", Variant: func(model, variant, colour string) (string, bool) { return "SEAT-" + variant, true }},
	{Name: "ROOFCO", Part: "ROOF", Install: "C01", Variant: func(model, variant, colour string) (string, bool) { return "ROOF-4WD", variant == "4WD" }},
}}}

var (
	okJoint  = event.Joint{Joint: "J1", Tool: "T1", TorqueNm: new(55.1), AngleDeg: new(40.0), OK: new(true)}
	nokJoint = event.Joint{Joint: "J2", Tool: "T1", TorqueNm: new(70.3), AngleDeg: new(41.0), OK: new(false)}
	fixedJ2  = event.Joint{Joint: "J2", Tool: "R01-T1", TorqueNm: new(54.9), AngleDeg: new(42.0), OK: new(true)}
)

// cy is a cycle to make an event of.
type cy struct {
	station, vin, body, result string
	counter                    uint32
	min                        int
	joints                     []event.Joint
	tests                      []event.Test
	parts                      []event.Part
	bad                        []event.BadValue
}

func (c cy) event(t testing.TB) *event.Event {
	t.Helper()
	d := &event.Cycle{Counter: c.counter, Result: c.result, Model: "KW", Variant: "2WD", Colour: "mint", StartedAt: at(c.min).Add(-40 * time.Second),
		Parts: c.parts, Joints: c.joints, Tests: c.tests, Bad: c.bad}
	if d.Parts == nil {
		d.Parts = []event.Part{}
	}
	if d.Joints == nil {
		d.Joints = []event.Joint{}
	}
	if d.Tests == nil {
		d.Tests = []event.Test{}
	}
	if c.counter == 0 {
		d.Counter = uint32(c.min + 1)
	}
	ev, err := event.NewEvent("US1", "L1", c.station, event.KindCycle, c.vin, 0, uint64(d.Counter), at(c.min), at(c.min), d)
	if err != nil {
		t.Fatal(err)
	}
	ev.Body = c.body
	return ev
}

func inputs(t testing.TB, evs ...*event.Event) []rules.Input {
	t.Helper()
	out := make([]rules.Input, len(evs))
	for i, ev := range evs {
		x, err := rules.Decode(ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = x
	}
	return out
}

// hold is a hold as the tests compare it.
type hold struct {
	vin, kind, station string
	open               bool
	reason             string
}

func holdsOf(r *rules.Result) []hold {
	var out []hold
	for _, h := range r.Holds {
		out = append(out, hold{h.VIN, h.Kind, h.Station, h.ClosedEventID == "", h.Reason})
	}
	return out
}

func apply(t testing.TB, l *rules.Line, view *schema.View, evs ...*event.Event) *rules.Result {
	t.Helper()
	return rules.Apply(l, view, inputs(t, evs...))
}

func vehicle(r *rules.Result, key string) schema.Vehicle {
	for _, v := range r.Vehicles {
		if v.VIN == key {
			return v
		}
	}
	return schema.Vehicle{}
}

func TestRoute(t *testing.T) {
	skip, back, late, reordered := mkVIN(t, 11), mkVIN(t, 12), mkVIN(t, 13), mkVIN(t, 14)
	r := apply(t, &line, nil,
		// Skips W02.
		cy{station: "W01", vin: skip, result: "OK", min: 0}.event(t),
		cy{station: "T01", vin: skip, result: "OK", min: 2}.event(t),
		// Arrives at W02 after T01: out of order, and must not move back.
		cy{station: "W01", vin: back, result: "OK", min: 1}.event(t),
		cy{station: "W02", vin: back, result: "OK", min: 2}.event(t),
		cy{station: "T01", vin: back, result: "OK", min: 3}.event(t),
		cy{station: "W02", vin: back, result: "OK", min: 4, counter: 99}.event(t),
		// First seen at T01.
		cy{station: "T01", vin: late, result: "OK", min: 5}.event(t),
		// W02's event arrives after T01's (a spooled agent): the skip
		// hold opens, then closes when W02 turns up.
		cy{station: "W01", vin: reordered, result: "OK", min: 6}.event(t),
		cy{station: "T01", vin: reordered, result: "OK", min: 8}.event(t),
		cy{station: "W02", vin: reordered, result: "OK", min: 7}.event(t),
	)
	want := []hold{
		{skip, schema.HoldRoute, "W02", true, "skipped W02: seen at T01 after W01"},
		{back, schema.HoldRoute, "W02", true, "out of order: cycle at W02 after T01"},
		{late, schema.HoldRoute, "W01", true, "skipped W01: first seen at T01"},
		{late, schema.HoldRoute, "W02", true, "skipped W02: first seen at T01"},
		{reordered, schema.HoldRoute, "W02", false, "skipped W02: seen at T01 after W01"},
	}
	if got := holdsOf(r); !reflect.DeepEqual(got, want) {
		t.Errorf("holds\n got %+v\nwant %+v", got, want)
	}
	if v := vehicle(r, back); v.LastStation != "T01" || v.LastPos != 2 {
		t.Errorf("out-of-order car at %s (%d), want it to stay at T01", v.LastStation, v.LastPos)
	}
	if v := vehicle(r, reordered); !v.FirstSeenAt.Equal(at(6)) || !v.LastSeenAt.Equal(at(8)) || v.LastStation != "T01" {
		t.Errorf("reordered car %+v, want seen from W01 to T01", v)
	}
	if len(r.Visits) != 10 || len(r.Vehicles) != 4 {
		t.Errorf("%d visits of %d cars, want 10 of 4", len(r.Visits), len(r.Vehicles))
	}
}

func TestReworkAndGate(t *testing.T) {
	held, reworked, clean, lateRework := mkVIN(t, 20), mkVIN(t, 21), mkVIN(t, 22), mkVIN(t, 23)
	flow := func(v string, base int) []*event.Event {
		return []*event.Event{
			cy{station: "W01", vin: v, result: "OK", min: base}.event(t),
			cy{station: "W02", vin: v, result: "OK", min: base + 1}.event(t),
			cy{station: "T01", vin: v, result: "OK", min: base + 2}.event(t),
		}
	}
	var evs []*event.Event
	evs = append(evs, flow(held, 0)...)
	nokHeld := cy{station: "C01", vin: held, result: "NOK", min: 3, joints: []event.Joint{okJoint, nokJoint}}.event(t)
	evs = append(evs, nokHeld, cy{station: "Q05", vin: held, result: "OK", min: 4}.event(t)) // rework skipped: blocked
	evs = append(evs, flow(reworked, 10)...)
	evs = append(evs,
		cy{station: "C01", vin: reworked, result: "NOK", min: 13, joints: []event.Joint{okJoint, nokJoint}}.event(t),
		cy{station: "R01", vin: reworked, result: "OK", min: 14, joints: []event.Joint{fixedJ2}}.event(t),
		cy{station: "Q05", vin: reworked, result: "OK", min: 15}.event(t))
	evs = append(evs, flow(clean, 20)...)
	evs = append(evs, cy{station: "C01", vin: clean, result: "OK", min: 23, joints: []event.Joint{okJoint}}.event(t),
		cy{station: "Q05", vin: clean, result: "OK", min: 24}.event(t))
	evs = append(evs, flow(lateRework, 30)...)
	gateLate := cy{station: "Q05", vin: lateRework, result: "OK", min: 35}.event(t)
	reworkLate := cy{station: "R01", vin: lateRework, result: "OK", min: 34, joints: []event.Joint{fixedJ2}}.event(t)
	evs = append(evs, cy{station: "C01", vin: lateRework, result: "NOK", min: 33, joints: []event.Joint{nokJoint}}.event(t),
		gateLate,   // consumed first
		reworkLate) // happened first
	r := apply(t, &line, nil, evs...)

	gate := map[string][]schema.GateDecision{}
	for _, g := range r.Gate {
		gate[g.VIN] = append(gate[g.VIN], g)
	}
	if g := gate[held]; len(g) != 1 || g[0].Released || g[0].OpenHolds != 1 ||
		g[0].Reason != "nok hold from C01 ("+nokHeld.ID+"): NOK at C01: joint J2 70.30 Nm 41.0°" {
		t.Errorf("held car: gate %+v, want blocked by the C01 hold", g)
	}
	for _, v := range []string{reworked, clean} {
		if g := gate[v]; len(g) != 1 || !g[0].Released || g[0].Kind != schema.GateKindGate {
			t.Errorf("%s: gate %+v, want released", v, g)
		}
	}
	if g := gate[lateRework]; len(g) != 2 || g[0].Released || !g[1].Released || g[1].Kind != schema.GateKindRelease ||
		g[1].EventID != reworkLate.ID || g[1].Station != "Q05" || !g[1].DecidedAt.Equal(gateLate.OccurredAt) ||
		g[1].Reason != "holds closed by "+reworkLate.ID+" after the gate blocked the car ("+gateLate.ID+")" {
		t.Errorf("late rework: gate %+v, want the block and a release by the rework dated at the block", g)
	}
	want := []hold{
		{held, schema.HoldNOK, "C01", true, "NOK at C01: joint J2 70.30 Nm 41.0°"},
		{reworked, schema.HoldNOK, "C01", false, "NOK at C01: joint J2 70.30 Nm 41.0°"},
		{lateRework, schema.HoldNOK, "C01", false, "NOK at C01: joint J2 70.30 Nm 41.0°"},
	}
	if got := holdsOf(r); !reflect.DeepEqual(got, want) {
		t.Errorf("holds\n got %+v\nwant %+v", got, want)
	}
	if len(r.Closes) != 0 {
		t.Errorf("closes of earlier holds %+v, want none", r.Closes)
	}
}

// TestHoldsOfTheRecord: holds and gate decisions the record already has
// are closed by id, and a release follows a block of an earlier batch.
func TestHoldsOfTheRecord(t *testing.T) {
	car := mkVIN(t, 30)
	block := &schema.GateDecision{EventID: "US1.L1.Q05.cycle.7", VIN: car, Station: "Q05", OpenHolds: 1, DecidedAt: at(5), Kind: schema.GateKindGate}
	view := &schema.View{Cars: map[string]*schema.CarView{car: {
		Vehicle: schema.Vehicle{VIN: car, FirstSeenAt: at(0), LastSeenAt: at(5), LastStation: "Q05", LastPos: 5, Model: "KW"},
		Holds: []schema.HoldRecord{{ID: 41, Hold: schema.Hold{VIN: car, Station: "C01", Kind: schema.HoldNOK, Reason: "NOK at C01", EventID: "US1.L1.C01.cycle.6", At: at(3)}},
			{ID: 42, Hold: schema.Hold{VIN: car, Station: "W02", Kind: schema.HoldRoute, Reason: "skipped W02", EventID: "US1.L1.T01.cycle.6", At: at(2)}}},
		Gate: block,
	}}}
	rework := cy{station: "R01", vin: car, result: "OK", min: 6, joints: []event.Joint{fixedJ2}}.event(t)
	w02 := cy{station: "W02", vin: car, result: "OK", min: 1}.event(t)
	r := apply(t, &line, view, rework, w02)
	if want := []schema.HoldClose{{ID: 41, VIN: car, EventID: rework.ID, At: rework.OccurredAt}, {ID: 42, VIN: car, EventID: w02.ID, At: w02.OccurredAt}}; !reflect.DeepEqual(r.Closes, want) {
		t.Errorf("closes %+v, want %+v", r.Closes, want)
	}
	// The release comes with the event that closed the last hold.
	if len(r.Gate) != 1 || r.Gate[0].EventID != w02.ID || !r.Gate[0].Released || r.Gate[0].Kind != schema.GateKindRelease ||
		!r.Gate[0].DecidedAt.Equal(block.DecidedAt) {
		t.Errorf("gate %+v, want one release by %s dated at the block", r.Gate, w02.ID)
	}
	if len(r.Holds) != 0 {
		t.Errorf("new holds %+v, want none (the late W02 is an arrival the skip hold waited for)", r.Holds)
	}
	if v := vehicle(r, car); v.LastStation != "Q05" || !v.FirstSeenAt.Equal(at(0)) || !v.LastSeenAt.Equal(at(6)) || v.Model != "KW" {
		t.Errorf("vehicle %+v, want it to stay at Q05, seen from the record's first time to the rework", v)
	}
	if view.Cars[car].Holds[0].ClosedEventID != "" || len(view.Cars[car].Holds) != 2 {
		t.Error("Apply changed the view")
	}
}

func TestJIS(t *testing.T) {
	a, b4, again := mkVIN(t, 40), mkVIN(t, 41), mkVIN(t, 42)
	view := &schema.View{LastSeq: map[string]int64{"SEATCO": 17, "ROOFCO": 3}, Cars: map[string]*schema.CarView{
		again: {Vehicle: schema.Vehicle{VIN: again, LastPos: 1, LastStation: "W02"}, Broadcasts: map[string]bool{"SEATCO": true}},
	}}
	ev4 := cy{station: "T01", vin: b4, result: "OK", min: 2}.event(t)
	// A 4WD car needs a roof.
	var c4 event.Cycle
	_ = json.Unmarshal(ev4.Data, &c4)
	c4.Variant = "4WD"
	ev4.Data, _ = json.Marshal(c4)
	r := apply(t, &line, view,
		cy{station: "W01", vin: a, result: "OK", min: 0}.event(t),
		cy{station: "W02", vin: a, result: "OK", min: 1}.event(t),
		cy{station: "T01", vin: a, result: "OK", min: 2}.event(t),
		ev4,
		cy{station: "T01", vin: again, result: "OK", min: 3}.event(t),
	)
	var got []string
	for _, x := range r.Broadcasts {
		got = append(got, fmt.Sprintf("%s %d %s %s", x.Supplier, x.Seq, x.VIN, x.PartVariant))
	}
	want := []string{"SEATCO 18 " + a + " SEAT-2WD", "SEATCO 19 " + b4 + " SEAT-4WD", "ROOFCO 4 " + b4 + " ROOF-4WD"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("broadcasts %v, want %v (numbered on from the record's, none again for a car that has one)", got, want)
	}
}

// TestUnknownValues: a joint, test or part value keiline could not read
// is never a pass: it is recorded unknown, holds the car (one hold per
// item, naming the station, item, tag, node and PLC status), blocks the
// gate, and only a later cycle that reports the same item with a known
// value closes the hold.
func TestUnknownValues(t *testing.T) {
	car := mkVIN(t, 50)
	badTorque := event.BadValue{Tag: "Joint2.TorqueNm", NodeID: "ns=2;s=C01.Joint2.TorqueNm", Reason: "bad quality: StatusBadSensorFailure (0x808B0000)"}
	badSerial := event.BadValue{Tag: "Part1.Serial", NodeID: "ns=2;s=C01.Part1.Serial", Reason: "wrong type: Int32, want String"}
	badName := event.BadValue{Tag: "Test1.Name", NodeID: "ns=2;s=C01.Test1.Name", Reason: "bad quality: StatusBadNotConnected (0x808A0000)"}
	badFar := event.BadValue{Tag: "Joint5.OK", NodeID: "ns=2;s=C01.Joint5.OK", Reason: "no value returned"}
	unread := event.Joint{Joint: "J2", Tool: "T1", AngleDeg: new(41.0)} // torque and verdict unknown
	c01 := cy{station: "C01", vin: car, result: "OK", min: 3,
		joints: []event.Joint{okJoint, unread},
		tests:  []event.Test{{Name: "", Unit: "mm", Value: new(3.1), Low: new(2.5), High: new(3.5), OK: new(true)}, {Name: "leak", Unit: "ccm"}},
		parts:  []event.Part{{PartNumber: "SEAT-2WD", Lot: "L1", Supplier: "SEATCO"}},
		bad:    []event.BadValue{badTorque, badSerial, badName, badFar, {Tag: "Result.Model", NodeID: "ns=2;s=C01.Model", Reason: "no value returned"}},
	}.event(t)
	gate := cy{station: "Q05", vin: car, result: "OK", min: 4}.event(t)
	r := apply(t, &line, nil,
		cy{station: "W01", vin: car, result: "OK", min: 0}.event(t),
		cy{station: "W02", vin: car, result: "OK", min: 1}.event(t),
		cy{station: "T01", vin: car, result: "OK", min: 2}.event(t),
		c01, gate)
	want := []hold{
		{car, schema.HoldUnknown, "C01", true, "unknown at C01: joint J2 (slot 2): torque, verdict unknown; tag Joint2.TorqueNm (node ns=2;s=C01.Joint2.TorqueNm): bad quality: StatusBadSensorFailure (0x808B0000)"},
		{car, schema.HoldUnknown, "C01", true, "unknown at C01: test in slot 1: tag Test1.Name (node ns=2;s=C01.Test1.Name): bad quality: StatusBadNotConnected (0x808A0000)"},
		{car, schema.HoldUnknown, "C01", true, "unknown at C01: test leak (slot 2): value, verdict unknown; the station gave no value"},
		{car, schema.HoldUnknown, "C01", true, "unknown at C01: part SEAT-2WD (slot 1): tag Part1.Serial (node ns=2;s=C01.Part1.Serial): wrong type: Int32, want String"},
		{car, schema.HoldUnknown, "C01", true, "unknown at C01: joint in slot 5: tag Joint5.OK (node ns=2;s=C01.Joint5.OK): no value returned"},
	}
	if got := holdsOf(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("holds\n got %+v\nwant %+v", got, want)
	}
	items := []schema.Item{{Kind: "joint", Name: "J2", Slot: 2}, {Kind: "test", Slot: 1}, {Kind: "test", Name: "leak", Slot: 2}, {Kind: "part", Name: "SEAT-2WD", Slot: 1}, {Kind: "joint", Slot: 5}}
	for i, h := range r.Holds {
		if h.Item != items[i] {
			t.Errorf("hold %d waits for %+v, want %+v", i, h.Item, items[i])
		}
	}
	// Recorded as unknown: never 0, never OK.
	v := r.Visits[3]
	if j := v.Joints[1]; j.TorqueNm != nil || j.OK != nil || event.Verdict(j.OK) != "unknown" {
		t.Errorf("unknown joint recorded as %+v", j)
	}
	if g := r.Gate; len(g) != 1 || g[0].Released || g[0].OpenHolds != 5 {
		t.Errorf("gate %+v, want blocked by the 5 unknown holds", g)
	}

	// A second batch: what the record now knows, then cycles that report
	// the items again.
	view := &schema.View{Cars: map[string]*schema.CarView{car: {Vehicle: vehicle(r, car), Gate: &r.Gate[0]}}}
	for i, h := range r.Holds {
		view.Cars[car].Holds = append(view.Cars[car].Holds, schema.HoldRecord{ID: int64(100 + i), Hold: h.Hold})
	}
	// A re-test at C01 after the gate (the car goes back) reports test
	// slot 1, leak and joint slot 5 known, J2 still unknown.
	retest := cy{station: "C01", vin: car, result: "OK", min: 5, counter: 78,
		joints: []event.Joint{okJoint, {Joint: "J2", Tool: "T1", AngleDeg: new(41.5), OK: new(true)}, okJoint, okJoint, {Joint: "J5", Tool: "T1", TorqueNm: new(9.0), AngleDeg: new(10.0), OK: new(true)}},
		tests: []event.Test{{Name: "gap", Unit: "mm", Value: new(3.2), Low: new(2.5), High: new(3.5), OK: new(true)},
			{Name: "leak", Unit: "ccm", Value: new(0.4), Low: new(0.0), High: new(1.0), OK: new(true)}}}.event(t)
	// The same joint at the rework bay, still unknown: closes nothing.
	stillUnknown := cy{station: "R01", vin: car, result: "OK", min: 6, joints: []event.Joint{{Joint: "J2", Tool: "R01-T1", TorqueNm: new(54.9), AngleDeg: new(42.0)}}}.event(t)
	// The rework reports J2 and the part SEAT-2WD known, and a test in
	// slot 1, which does not close the nameless test hold: that waits
	// for a re-test at its own station.
	rework := cy{station: "R01", vin: car, result: "OK", min: 7, counter: 77, joints: []event.Joint{fixedJ2},
		parts: []event.Part{{PartNumber: "SEAT-2WD", Serial: "S-1", Lot: "L1", Supplier: "SEATCO"}},
		tests: []event.Test{{Name: "gap", Unit: "mm", Value: new(3.0), Low: new(2.5), High: new(3.5), OK: new(true)}}}.event(t)
	r2 := apply(t, &line, view, retest, stillUnknown, rework)
	closes := map[int64]string{}
	for _, c := range r2.Closes {
		closes[c.ID] = c.EventID
	}
	wantCloses := map[int64]string{101: retest.ID, 102: retest.ID, 104: retest.ID, 100: rework.ID, 103: rework.ID}
	if !reflect.DeepEqual(closes, wantCloses) {
		t.Errorf("closes %v, want %v", closes, wantCloses)
	}
	// The re-test and the rework bay's first cycle opened their own
	// holds for J2, which the rework closed.
	got := holdsOf(r2)
	if len(got) != 2 || got[0].open || got[1].open || got[0].reason != "unknown at C01: joint J2 (slot 2): torque unknown; the station gave no value" ||
		got[1].reason != "unknown at R01: joint J2 (slot 1): verdict unknown; the station gave no value" {
		t.Errorf("second batch holds %+v, want C01's and R01's own unknown J2, closed by the rework", got)
	}
	if g := r2.Gate; len(g) != 1 || !g[0].Released || g[0].Kind != schema.GateKindRelease || g[0].EventID != rework.ID {
		t.Errorf("gate %+v, want the release by the rework that closed the last hold", g)
	}
	if v := vehicle(r2, car); v.LastStation != "Q05" {
		t.Errorf("car moved back to %s", v.LastStation)
	}
}

func TestResultUnknown(t *testing.T) {
	car := mkVIN(t, 55)
	ev := cy{station: "W01", vin: car, result: "", min: 0, bad: []event.BadValue{{Tag: "Result.Status", NodeID: "ns=2;s=W01.Status", Reason: "bad quality"}}}.event(t)
	r := apply(t, &line, nil, ev)
	if got, want := holdsOf(r), []hold{{car, schema.HoldBadData, "W01", true, "result unknown: bad PLC value"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("holds %+v, want %+v", got, want)
	}
}

func TestBodyNumbers(t *testing.T) {
	car := mkVIN(t, 60)
	p1 := cy{station: "W01", body: "B-0060", result: "OK", min: 0}.event(t)
	p2 := cy{station: "W02", body: "B-0060", result: "OK", min: 1}.event(t)
	pair := cy{station: "T01", vin: car, body: "B-0060", result: "OK", min: 2}.event(t)
	after := cy{station: "C01", body: "B-0060", result: "OK", min: 3}.event(t)
	lone := cy{station: "W01", body: "B-0099", result: "OK", min: 4, counter: 50}.event(t)

	t.Run("vin policy: pending until paired, in the same batch", func(t *testing.T) {
		r := apply(t, &line, nil, p1, p2, pair, after, lone)
		if want := []schema.CarID{{Body: "B-0060", VIN: car, EventID: pair.ID, At: pair.OccurredAt}}; !reflect.DeepEqual(r.CarIDs, want) {
			t.Errorf("car ids %+v, want %+v", r.CarIDs, want)
		}
		var got []string
		for _, p := range r.Pending {
			got = append(got, p.EventID+" "+p.VIN+" "+p.ResolvedEventID)
		}
		want := []string{p1.ID + " " + car + " " + pair.ID, p2.ID + " " + car + " " + pair.ID, after.ID + " " + car + " " + after.ID, lone.ID + "  "}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("pending %v, want %v", got, want)
		}
		var order []string
		for _, v := range r.Visits {
			order = append(order, v.Station+" "+v.VIN)
		}
		if want := []string{"W01 " + car, "W02 " + car, "T01 " + car, "C01 " + car}; !reflect.DeepEqual(order, want) {
			t.Errorf("visits %v, want %v (pending ones derived before their pair, in order)", order, want)
		}
		if len(r.Holds) != 0 {
			t.Errorf("holds %+v, want none: the route is whole", r.Holds)
		}
		if r.Keys[lone.ID] != "" || r.Keys[p1.ID] != car {
			t.Errorf("keys %v", r.Keys)
		}
	})
	t.Run("vin policy: pending cycles of the record derived from the stored event", func(t *testing.T) {
		b1, _ := json.Marshal(p1)
		b2, _ := json.Marshal(p2)
		view := &schema.View{Pending: []schema.PendingCycle{{EventID: p1.ID, Body: "B-0060", Station: "W01", At: p1.OccurredAt, Payload: b1},
			{EventID: p2.ID, Body: "B-0060", Station: "W02", At: p2.OccurredAt, Payload: b2}}}
		r := apply(t, &line, view, pair)
		if len(r.Resolved) != 2 || r.Resolved[0].VIN != car || r.Resolved[1].ResolvedEventID != pair.ID || len(r.Pending) != 0 {
			t.Errorf("resolved %+v pending %+v", r.Resolved, r.Pending)
		}
		if len(r.Visits) != 3 || r.Visits[0].EventID != p1.ID || r.Visits[0].VIN != car || vehicle(r, car).LastStation != "T01" {
			t.Errorf("visits %+v", r.Visits)
		}
	})
	t.Run("vin policy: a known pair files a body-only cycle at once", func(t *testing.T) {
		view := &schema.View{Pairs: map[string][]string{"B-0060": {car}}}
		r := apply(t, &line, view, after)
		if len(r.CarIDs) != 0 || len(r.Visits) != 1 || r.Visits[0].VIN != car || len(r.Pending) != 1 || r.Pending[0].ResolvedEventID != after.ID {
			t.Errorf("car ids %+v visits %+v pending %+v", r.CarIDs, r.Visits, r.Pending)
		}
	})
	t.Run("body-number policy: filed under the body number", func(t *testing.T) {
		l := line
		l.Identity = event.IdentityBodyNumber
		r := apply(t, &l, nil, p1, p2, pair)
		if len(r.Pending) != 0 || len(r.Visits) != 3 || r.Visits[2].VIN != "B-0060" || len(r.CarIDs) != 1 {
			t.Errorf("pending %+v visits %+v car ids %+v", r.Pending, r.Visits, r.CarIDs)
		}
	})
}

func TestStatesAndAlarms(t *testing.T) {
	st, _ := event.NewEvent("US1", "L1", "C01", event.KindState, "", 0, 7, at(1), at(1), &event.State{Counter: 7, State: "fault", FaultCode: 12, FaultText: "tool fault"})
	raised, _ := event.NewEvent("US1", "L1", "C01", event.KindAlarm, "", 0, 900, at(2), at(2), &event.Alarm{Counter: 900, Active: true, Code: event.AlarmRefused,
		Text: "refused cycle 17: invalid VIN: check digit", Cycle: 17})
	cleared, _ := event.NewEvent("US1", "L1", "C01", event.KindAlarm, "", 0, 950, at(3), at(3), &event.Alarm{Counter: 950, Code: event.AlarmRefused})
	r := apply(t, &line, nil, st, raised, cleared)
	if len(r.States) != 1 || r.States[0].FaultText != "tool fault" || r.States[0].Counter != 7 {
		t.Errorf("states %+v", r.States)
	}
	want := []schema.Alarm{{EventID: raised.ID, Station: "C01", Counter: 900, Active: true, Code: "refused", Text: "refused cycle 17: invalid VIN: check digit", Cycle: 17, At: at(2)},
		{EventID: cleared.ID, Station: "C01", Counter: 950, Code: "refused", At: at(3)}}
	if !reflect.DeepEqual(r.Alarms, want) {
		t.Errorf("alarms %+v, want %+v", r.Alarms, want)
	}
	if len(r.Notes) != 1 || !r.Notes[0].Warn || !strings.Contains(r.Notes[0].Text, "refused cycle 17") {
		t.Errorf("notes %+v, want the raised alarm", r.Notes)
	}
	if len(r.Vehicles)+len(r.Visits)+len(r.Holds) != 0 {
		t.Error("a state or alarm event derived car rows")
	}
}

func TestNeeds(t *testing.T) {
	car := mkVIN(t, 70)
	in := inputs(t, cy{station: "W01", body: "B-1", result: "OK", min: 0}.event(t), cy{station: "T01", vin: car, body: "B-1", result: "OK", min: 1}.event(t),
		cy{station: "C01", vin: car, result: "OK", min: 2}.event(t))
	q := line.Needs(in)
	if !reflect.DeepEqual(q, schema.ViewQuery{Cars: []string{car}, Bodies: []string{"B-1"}, Suppliers: []string{"SEATCO", "ROOFCO"}}) {
		t.Errorf("needs %+v", q)
	}
	if q := line.Needs(nil); len(q.Cars)+len(q.Bodies)+len(q.Suppliers) != 0 {
		t.Errorf("needs of nothing %+v", q)
	}
}

// TestAngleNotMeasured: a joint without an angle (the station's tag map has
// AngleDeg absent, so the agent names no bad tag) is no unknown item; the
// same joint whose angle tag read bad is.
func TestAngleNotMeasured(t *testing.T) {
	car := mkVIN(t, 61)
	noAngle := event.Joint{Joint: "J1", Tool: "T1", TorqueNm: new(55.0), OK: new(true)}
	c := cy{station: "W01", vin: car, result: "OK", min: 1, counter: 1, joints: []event.Joint{noAngle}}.event(t)
	if hs := holdsOf(apply(t, &line, &schema.View{}, c)); len(hs) != 0 {
		t.Fatalf("a joint with no angle measured put holds %+v", hs)
	}
	bad := cy{station: "W01", vin: mkVIN(t, 62), result: "OK", min: 2, counter: 2, joints: []event.Joint{noAngle},
		bad: []event.BadValue{{Tag: "Joint1.AngleDeg", NodeID: "ns=1;s=W01.Joint1.AngleDeg", Reason: "bad quality"}}}.event(t)
	hs := holdsOf(apply(t, &line, &schema.View{}, bad))
	if len(hs) != 1 || hs[0].kind != schema.HoldUnknown || !strings.Contains(hs[0].reason, "angle unknown") {
		t.Fatalf("a joint whose angle tag read bad: holds %+v, want one unknown hold naming the angle", hs)
	}
}
