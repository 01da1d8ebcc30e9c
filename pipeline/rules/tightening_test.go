package rules_test

import (
	"reflect"
	"testing"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/rules"
	"github.com/keiline/keiline/schema"
)

// torqueLine is the rules' test line with controllers at C01: class A
// joints nut_1 and nut_2 for every build.
var torqueLine = func() rules.Line {
	l := line
	l.Torque = &rules.Torque{ClassA: func(station, key, model, variant string) []string {
		if station == "C01" {
			return []string{"nut_1", "nut_2"}
		}
		return nil
	}}
	return l
}()

// ti is a tightening to make an event of.
type ti struct {
	vin, joint, result string
	id                 uint32
	min                int
	disabled           bool
}

func (x ti) event(t testing.TB) *event.Event {
	t.Helper()
	td := &event.Tightening{Controller: "C01-NR1", Channel: 1, TighteningID: x.id, VIN: x.vin, Pset: 1, BatchSize: 2, BatchCounter: 1,
		BatchStatus: event.BatchRunning, Result: x.result, TorqueStatus: event.StatusOK, AngleStatus: event.StatusOK,
		TorqueNm: new(55.2), TorqueMinNm: new(50.0), TorqueMaxNm: new(60.0), AngleDeg: new(40.0), Joint: x.joint, Class: "A", MID: 61,
		ControllerTime: at(x.min), WhileDisabled: x.disabled}
	if x.result == event.StatusNOK {
		td.TorqueNm, td.TorqueStatus = new(47.5), event.StatusLow
	}
	ev, err := event.NewTighteningEvent("US1", "L1", "C01", x.vin, td, at(x.min), at(x.min))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// toC01 is a car's cycles up to T01.
func toC01(t testing.TB, v string, base int) []*event.Event {
	return []*event.Event{
		cy{station: "W01", vin: v, result: "OK", min: base}.event(t),
		cy{station: "W02", vin: v, result: "OK", min: base + 1}.event(t),
		cy{station: "T01", vin: v, result: "OK", min: base + 2}.event(t),
	}
}

func TestTighteningsAreJointsOfTheCar(t *testing.T) {
	v := mkVIN(t, 40)
	evs := append(toC01(t, v, 0), ti{vin: v, joint: "nut_1", result: "OK", id: 7, min: 3}.event(t))
	r := apply(t, &torqueLine, nil, evs...)
	if len(r.Tightenings) != 1 {
		t.Fatalf("tightenings %+v, want the one", r.Tightenings)
	}
	got := r.Tightenings[0]
	if got.VIN != v || got.Station != "C01" || got.Controller != "C01-NR1" || got.TighteningID != 7 || got.Joint != "nut_1" || !got.MadeAt.Equal(at(3)) {
		t.Errorf("tightening %+v", got)
	}
	if len(r.Holds) != 0 {
		t.Errorf("an OK tightening held the car: %+v", holdsOf(r))
	}
	// A tightening without a car of the line is kept in the log only.
	none := ti{vin: "", joint: "nut_1", result: "OK", id: 8, min: 4}.event(t)
	r = apply(t, &torqueLine, nil, none)
	if len(r.Tightenings) != 0 || len(r.Notes) != 1 || !r.Notes[0].Warn {
		t.Errorf("tightening without a car: rows %+v notes %+v", r.Tightenings, r.Notes)
	}
}

func TestNOKTighteningHoldsUntilTheJointIsRedone(t *testing.T) {
	redone, reworked := mkVIN(t, 41), mkVIN(t, 42)
	var evs []*event.Event
	evs = append(evs, toC01(t, redone, 0)...)
	evs = append(evs, ti{vin: redone, joint: "nut_1", result: "NOK", id: 1, min: 3}.event(t),
		ti{vin: redone, joint: "nut_2", result: "OK", id: 2, min: 3}.event(t), // another joint closes nothing
		ti{vin: redone, joint: "nut_1", result: "OK", id: 3, min: 4}.event(t))
	evs = append(evs, toC01(t, reworked, 10)...)
	evs = append(evs, ti{vin: reworked, joint: "nut_2", result: "NOK", id: 4, min: 13}.event(t),
		ti{vin: reworked, joint: "nut_1", result: "OK", id: 5, min: 13}.event(t),
		cy{station: "C01", vin: reworked, result: "OK", min: 14}.event(t),
		cy{station: "R01", vin: reworked, result: "OK", min: 15, joints: []event.Joint{{Joint: "nut_2", Tool: "R01-T1", TorqueNm: new(55.0), AngleDeg: new(41.0), OK: new(true)}}}.event(t))
	r := apply(t, &torqueLine, nil, evs...)
	nokReason := func(id, joint string) string {
		return "NOK controller C01-NR1 tightening " + id + " (joint " + joint + "): torque 47.5 N·m (low, 50..60), angle 40 ° (OK)"
	}
	want := []hold{
		{redone, schema.HoldNOK, "C01", false, nokReason("1", "nut_1")},
		{reworked, schema.HoldNOK, "C01", false, nokReason("4", "nut_2")},
		{reworked, schema.HoldMissing, "C01", false, "class A joint nut_2 missing: no OK tightening of it when the car left C01"},
	}
	if got := holdsOf(r); !reflect.DeepEqual(got, want) {
		t.Errorf("holds\n got %+v\nwant %+v", got, want)
	}
	if h := r.Holds[0]; h.ClosedEventID != evs[5].ID {
		t.Errorf("NOK hold closed by %q, want the joint's OK tightening %s", h.ClosedEventID, evs[5].ID)
	}
}

func TestTighteningWhileDisabledHolds(t *testing.T) {
	v := mkVIN(t, 43)
	evs := append(toC01(t, v, 0), ti{vin: v, joint: "nut_1", result: "OK", id: 9, min: 3, disabled: true}.event(t))
	r := apply(t, &torqueLine, nil, evs...)
	want := []hold{{v, schema.HoldInterlock, "C01", true, "controller C01-NR1 tightening 9 (joint nut_1) made while the tool was disabled (the interlock): the controller ignored it"}}
	if got := holdsOf(r); !reflect.DeepEqual(got, want) {
		t.Errorf("holds\n got %+v\nwant %+v", got, want)
	}
}

// TestClassAJointMissing: the station's cycle and its tightenings come
// from independent paths, in either order.
func TestClassAJointMissing(t *testing.T) {
	before, after, never := mkVIN(t, 44), mkVIN(t, 45), mkVIN(t, 46)
	var evs []*event.Event
	evs = append(evs, toC01(t, before, 0)...)
	evs = append(evs, ti{vin: before, joint: "nut_1", result: "OK", id: 1, min: 3}.event(t), ti{vin: before, joint: "nut_2", result: "OK", id: 2, min: 3}.event(t),
		cy{station: "C01", vin: before, result: "OK", min: 4}.event(t))
	evs = append(evs, toC01(t, after, 10)...)
	c01After := cy{station: "C01", vin: after, result: "OK", min: 14}.event(t)
	gateAfter := cy{station: "Q05", vin: after, result: "OK", min: 15}.event(t)
	late := ti{vin: after, joint: "nut_2", result: "OK", id: 4, min: 13}.event(t)
	evs = append(evs, ti{vin: after, joint: "nut_1", result: "OK", id: 3, min: 13}.event(t), c01After, gateAfter, late)
	evs = append(evs, toC01(t, never, 20)...)
	evs = append(evs, cy{station: "C01", vin: never, result: "OK", min: 24}.event(t), cy{station: "C01", vin: never, result: "OK", min: 25, counter: 77}.event(t))
	r := apply(t, &torqueLine, nil, evs...)
	missing := func(j, s string) string {
		return "class A joint " + j + " missing: no OK tightening of it when the car left " + s
	}
	want := []hold{
		{after, schema.HoldMissing, "C01", false, missing("nut_2", "C01")},
		{never, schema.HoldMissing, "C01", true, missing("nut_1", "C01")}, // the re-test opens no second hold
		{never, schema.HoldMissing, "C01", true, missing("nut_2", "C01")},
	}
	if got := holdsOf(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("holds\n got %+v\nwant %+v", got, want)
	}
	if h := r.Holds[0]; h.ClosedEventID != late.ID || h.Item != (schema.Item{Kind: schema.ItemTightening, Name: "nut_2", Slot: 2}) {
		t.Errorf("missing hold %+v, want closed by the late tightening %s", h, late.ID)
	}
	var gate []schema.GateDecision
	for _, g := range r.Gate {
		if g.VIN == after {
			gate = append(gate, g)
		}
	}
	if len(gate) != 2 || gate[0].Released || !gate[1].Released || gate[1].EventID != late.ID {
		t.Errorf("gate of the car whose joint came late: %+v, want blocked, then released by %s", gate, late.ID)
	}
	// What the record knew: an OK tightening of an earlier batch.
	view := &schema.View{Cars: map[string]*schema.CarView{before: {
		Vehicle:   schema.Vehicle{VIN: before, Model: "KW", Variant: "2WD", FirstSeenAt: at(0), LastSeenAt: at(2), LastStation: "T01", LastPos: 2},
		Tightened: map[string]bool{schema.TightKey("C01", "nut_1"): true, schema.TightKey("C01", "nut_2"): false},
	}}}
	r = apply(t, &torqueLine, view, cy{station: "C01", vin: before, result: "OK", min: 30, counter: 30}.event(t))
	if got := holdsOf(r); len(got) != 1 || got[0].reason != missing("nut_2", "C01") {
		t.Errorf("with the record's tightenings: holds %+v, want nut_2 missing (only a NOK of it)", got)
	}
}

// TestNoMissingJointsByBodyNumber: a line filing cars by body number
// cannot file tightenings, so it holds no car for a missing joint.
func TestNoMissingJointsByBodyNumber(t *testing.T) {
	l := torqueLine
	l.Identity = event.IdentityBodyNumber
	r := apply(t, &l, nil, cy{station: "W01", body: "B-1", result: "OK", min: 0}.event(t), cy{station: "C01", body: "B-1", result: "OK", min: 1}.event(t))
	for _, h := range r.Holds {
		if h.Kind == schema.HoldMissing {
			t.Errorf("missing-joint hold on a body-number line: %+v", h)
		}
	}
	if len(r.Visits) != 2 {
		t.Fatalf("visits %+v, want the two cycles filed", r.Visits)
	}
}
