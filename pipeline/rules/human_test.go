package rules_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// human is a person's decision to make an event of.
func human(t testing.TB, station, car string, min int, h event.Human) *event.Event {
	t.Helper()
	if h.UserID == 0 {
		h.UserID, h.User, h.Role = 7, "sato", "operator"
	}
	ev, err := event.NewHuman("US1", "L1", station, car, h, at(min))
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestHumanDefectRepairRelease: a defect seen at T01 holds the car and the
// gate blocks it; the repair closes the defect and holds the car for
// inspection; the inspector's signed release closes that and releases the
// car at the gate. Every decision has its row, with who and why.
func TestHumanDefectRepairRelease(t *testing.T) {
	car := mkVIN(t, 60)
	evs := []*event.Event{
		cy{station: "W01", vin: car, result: "OK", min: 0}.event(t),
		cy{station: "W02", vin: car, result: "OK", min: 1}.event(t),
		cy{station: "T01", vin: car, result: "OK", min: 2}.event(t),
	}
	defect := human(t, "T01", car, 3, event.Human{Action: event.ActionDefect, Code: "SCR-01", Zone: "door_fl", Severity: "major", Text: "scratch 3 cm"})
	evs = append(evs, defect,
		cy{station: "C01", vin: car, result: "OK", min: 4}.event(t),
		cy{station: "Q05", vin: car, result: "OK", min: 5}.event(t))
	repair := human(t, "R01", car, 6, event.Human{Action: event.ActionRepair, UserID: 8, User: "kato", Role: "operator", Cites: defect.ID, Text: "polished"})
	release := human(t, "Q05", car, 7, event.Human{Action: event.ActionRelease, UserID: 9, User: "ito", Role: "quality_inspector",
		Meaning: "released: repaired and re-inspected, conforms", Reason: "polish ok"})
	evs = append(evs, repair, release)
	r := apply(t, &line, nil, evs...)

	want := []hold{
		{car, schema.HoldDefect, "T01", false, "defect SCR-01 at door_fl (major), seen by sato: scratch 3 cm"},
		{car, schema.HoldInspection, "R01", false, "repaired by kato (polished): waits for an inspector's signed release"},
	}
	if got := holdsOf(r); !reflect.DeepEqual(got, want) {
		t.Errorf("holds\n got %+v\nwant %+v", got, want)
	}
	if r.Holds[0].ClosedEventID != repair.ID || r.Holds[1].ClosedEventID != release.ID {
		t.Errorf("closed by %q and %q, want the repair and the release", r.Holds[0].ClosedEventID, r.Holds[1].ClosedEventID)
	}
	if len(r.Gate) != 2 || r.Gate[0].Released || !r.Gate[1].Released || r.Gate[1].EventID != release.ID || r.Gate[1].Kind != schema.GateKindRelease {
		t.Errorf("gate %+v, want blocked by the defect, released by the signature", r.Gate)
	}
	if len(r.Humans) != 3 {
		t.Fatalf("human rows %+v, want 3", r.Humans)
	}
	if h := r.Humans[2]; h.EventID != release.ID || h.User != "ito" || h.Role != "quality_inspector" || h.VIN != car ||
		h.Meaning != "released: repaired and re-inspected, conforms" || h.Reason != "polish ok" || !h.At.Equal(at(7)) {
		t.Errorf("release row %+v", h)
	}
	if h := r.Humans[0]; h.Action != event.ActionDefect || h.Code != "SCR-01" || h.Zone != "door_fl" || h.Severity != "major" || h.Station != "T01" {
		t.Errorf("defect row %+v", h)
	}
}

// TestHumanHoldsOfTheRecord: decisions on holds an earlier batch opened
// close them by id; a repair that cites no open defect and a decision
// about an unknown car change no hold and say so.
func TestHumanHoldsOfTheRecord(t *testing.T) {
	car, stranger := mkVIN(t, 61), mkVIN(t, 62)
	view := &schema.View{Cars: map[string]*schema.CarView{car: {
		Vehicle: schema.Vehicle{VIN: car, FirstSeenAt: at(0), LastSeenAt: at(5), LastStation: "C01", LastPos: 3, Model: "KW"},
		Holds: []schema.HoldRecord{
			{ID: 51, Hold: schema.Hold{VIN: car, Station: "C01", Kind: schema.HoldNOK, Reason: "NOK at C01", EventID: "US1.L1.C01.cycle.6", At: at(3)}},
			{ID: 52, Hold: schema.Hold{VIN: car, Station: "T01", Kind: schema.HoldManual, Reason: "manual", EventID: "US1.L1.T01.human.5", At: at(4)}},
		},
	}}}
	sup := event.Human{UserID: 3, User: "abe", Role: "supervisor"}
	wrongRepair := human(t, "R01", car, 6, event.Human{Action: event.ActionRepair, Cites: "US1.L1.T01.human.1", Text: "nothing"})
	unhold := sup
	unhold.Action, unhold.Cites, unhold.Reason = event.ActionUnhold, "US1.L1.T01.human.5", "lot cleared by supplier"
	un := human(t, "T01", car, 7, unhold)
	place := sup
	place.Action, place.Reason, place.Lot = event.ActionHold, "supplier alert", "LOT-9"
	lotHold := human(t, "T01", car, 8, place)
	far := human(t, "T01", stranger, 9, event.Human{Action: event.ActionDefect, Code: "X", Zone: "roof", Severity: "minor"})
	andon := human(t, "T01", "", 10, event.Human{Action: event.ActionAndonPull, Reason: "missing clip"})
	r := apply(t, &line, view, wrongRepair, un, lotHold, far, andon)

	if want := []schema.HoldClose{{ID: 52, VIN: car, EventID: un.ID, At: un.OccurredAt}}; !reflect.DeepEqual(r.Closes, want) {
		t.Errorf("closes %+v, want only the manual hold by the unhold", r.Closes)
	}
	if want := []hold{{car, schema.HoldManual, "T01", true, "manual hold of lot LOT-9 by abe: supplier alert"}}; !reflect.DeepEqual(holdsOf(r), want) {
		t.Errorf("holds %+v, want %+v", holdsOf(r), want)
	}
	if len(r.Humans) != 5 {
		t.Errorf("human rows %d, want every decision's (5)", len(r.Humans))
	}
	var notes []string
	for _, n := range r.Notes {
		notes = append(notes, n.Text)
	}
	all := strings.Join(notes, "\n")
	for _, w := range []string{"cites US1.L1.T01.human.1, which is no open defect", "defect by sato on a car the record does not know"} {
		if !strings.Contains(all, w) {
			t.Errorf("notes %q, want %q", all, w)
		}
	}
	for _, v := range r.Vehicles {
		if v.VIN == stranger {
			t.Errorf("a vehicle row %+v for a car the record does not know", v)
		}
	}
}

// TestHumanNeeds: the rules read the cars people decide about.
func TestHumanNeeds(t *testing.T) {
	car := mkVIN(t, 63)
	ev := human(t, "T01", car, 1, event.Human{Action: event.ActionDefect, Code: "X", Zone: "roof", Severity: "minor"})
	if q := line.Needs(inputs(t, ev)); !reflect.DeepEqual(q.Cars, []string{car}) {
		t.Errorf("needs cars %v, want %v", q.Cars, []string{car})
	}
}
