package dashboard

import (
	"fmt"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
)

var (
	// t0 is the tests' base time: yesterday's 08:00 UTC, derived from
	// the clock (no test uses a fixed calendar date).
	t0 = time.Now().UTC().Truncate(24 * time.Hour).Add(-16 * time.Hour)

	testLine = []Station{
		{ID: "W01", Zone: "body"}, {ID: "W02", Zone: "body"}, {ID: "Q04", Zone: "quality"},
		{ID: "R01", Zone: "rework", Optional: true}, {ID: "Q05", Zone: "quality"}, {ID: "S01", Zone: "ship"},
	}
)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func state(station, st, vin string, s float64) schema.LiveEvent {
	return schema.LiveEvent{Kind: "state", Station: station, State: st, VinPresent: vin, OccurredAt: at(s)}
}

func cycle(station, vin, result string, s float64) schema.LiveEvent {
	return schema.LiveEvent{Kind: "cycle", Station: station, VIN: vin, Visit: true, Result: result, Model: "KW", Variant: "NA", Colour: "mint", OccurredAt: at(s)}
}

// cars returns the VIN in each station ("-" empty, "?" unidentified), with
// "*" after a car whose cycle is done.
func cars(v LineView) string {
	out := ""
	for i, s := range v.Stations {
		if i > 0 {
			out += " "
		}
		switch {
		case s.Car == nil:
			out += "-"
		case s.Car.VIN == "":
			out += "?"
		default:
			out += s.Car.VIN
		}
		if s.Car != nil && s.Car.Done {
			out += "*"
		}
	}
	return out
}

func TestLineModelPlacesCars(t *testing.T) {
	tests := []struct {
		name   string
		events []schema.LiveEvent
		want   string // cars in W01 W02 Q04 R01 Q05 S01
	}{
		{
			name:   "a reported car is in its station",
			events: []schema.LiveEvent{state("W01", "running", "A", 1)},
			want:   "A - - - - -",
		},
		{
			name:   "a finished car waiting to move on is done",
			events: []schema.LiveEvent{state("W01", "running", "A", 1), state("W01", "blocked", "A", 2), cycle("W01", "A", "OK", 2)},
			want:   "A* - - - - -",
		},
		{
			name: "a running station whose car finished took the next car silently",
			events: []schema.LiveEvent{
				state("W02", "running", "A", 1), state("W01", "running", "B", 1),
				cycle("W01", "B", "OK", 2), state("W01", "blocked", "B", 2),
				// A finishes and leaves W02, B moves in: W02 stays running and says nothing.
				cycle("W02", "A", "OK", 3), state("Q04", "running", "A", 3), state("W01", "starved", "", 3),
			},
			want: "- B A - - -",
		},
		{
			name: "the unidentified car of a running station",
			events: []schema.LiveEvent{
				state("W01", "running", "A", 1), cycle("W01", "A", "OK", 2), state("W02", "running", "A", 2),
			},
			want: "? A - - - -",
		},
		{
			name: "a car with a NOK goes to the rework bay",
			events: []schema.LiveEvent{
				state("Q04", "running", "A", 1), cycle("W02", "B", "NOK", 0), state("W02", "blocked", "", 0),
				cycle("Q04", "A", "OK", 2), cycle("Q04", "B", "OK", 3),
				state("Q05", "running", "Z", 0), cycle("Q05", "Z", "OK", 4),
				state("R01", "running", "Y", 0), cycle("R01", "Y", "OK", 4),
			},
			want: "- - ? B A -", // Q04 took a car the record has not named yet
		},
		{
			name: "a stale report of a car further on is dropped",
			events: []schema.LiveEvent{
				state("W01", "blocked", "A", 1), state("W02", "running", "A", 2), cycle("W01", "A", "OK", 1),
			},
			want: "- A - - - -",
		},
		{
			name: "a car that finished a later station is not where an old report put it",
			events: []schema.LiveEvent{
				state("W01", "blocked", "A", 1), cycle("W01", "A", "OK", 1), cycle("W02", "A", "OK", 2),
			},
			want: "- - - - - -",
		},
		{
			name:   "a starved station is empty",
			events: []schema.LiveEvent{state("W01", "running", "A", 1), state("W01", "starved", "", 2)},
			want:   "- - - - - -",
		},
		{
			name: "a shipped car has left the line",
			events: []schema.LiveEvent{
				state("S01", "running", "A", 1), cycle("S01", "A", "OK", 2),
			},
			want: "- - - - - ?",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newLineModel(testLine)
			for i, e := range tt.events {
				e.Seq = int64(i + 1)
				m.apply(e)
			}
			v := m.view(at(10))
			if got := cars(v); got != tt.want {
				t.Errorf("cars = %q, want %q", got, tt.want)
			}
			if v.Seq != int64(len(tt.events)) {
				t.Errorf("seq = %d, want %d", v.Seq, len(tt.events))
			}
		})
	}
}

func TestLineModelSince(t *testing.T) {
	m := newLineModel(testLine)
	for i, e := range []schema.LiveEvent{
		state("W02", "running", "A", 1), state("W01", "running", "B", 1),
		cycle("W01", "B", "OK", 2), state("W01", "blocked", "B", 2),
		cycle("W02", "A", "OK", 5), // B entered W02 when A left, at 5
	} {
		e.Seq = int64(i + 1)
		m.apply(e)
	}
	v := m.view(at(6))
	if c := v.Stations[1].Car; c == nil || c.VIN != "B" || !c.Since.Equal(at(5)) {
		t.Fatalf("W02 car = %+v, want B since %v", c, at(5))
	}
	if c := v.Stations[1].Car; c.Model != "KW" || c.Colour != "mint" {
		t.Errorf("W02 car = %+v, want its model and colour", c)
	}
	st, done, ok := m.position("B")
	if !ok || st != "W02" || done {
		t.Errorf("position(B) = %s %v %v, want W02 not done", st, done, ok)
	}
	if _, _, ok := m.position("A"); ok {
		t.Error("A has left W02 and no station reported it; position(A) found it")
	}
}

func TestLineModelAndon(t *testing.T) {
	m := newLineModel(testLine)
	events := []schema.LiveEvent{
		{Kind: "state", Station: "Q04", State: "running", Andon: true, VinPresent: "A", OccurredAt: at(1)},
		{Kind: "state", Station: "W01", State: "fault", FaultCode: 501, FaultText: "conveyor drive fault", Andon: true, OccurredAt: at(3)},
		{Kind: "state", Station: "Q04", State: "blocked", Andon: true, VinPresent: "A", OccurredAt: at(4)}, // still the same call
		{Kind: "state", Station: "W02", State: "running", Andon: true, OccurredAt: at(2)},
		{Kind: "state", Station: "W02", State: "running", Andon: false, OccurredAt: at(5)}, // answered
	}
	for i, e := range events {
		e.Seq = int64(i + 1)
		m.apply(e)
	}
	v := m.view(at(6))
	var got []string
	for _, a := range v.Andon {
		got = append(got, fmt.Sprintf("%s@%v", a.Station, a.Since.Sub(t0).Seconds()))
	}
	if fmt.Sprint(got) != "[Q04@1 W01@3]" {
		t.Errorf("andon calls = %v, want [Q04@1 W01@3], oldest first", got)
	}
	w01 := v.Stations[0]
	if w01.State != "fault" || w01.FaultCode != 501 || w01.FaultText != "conveyor drive fault" || !w01.StateSince.Equal(at(3)) {
		t.Errorf("W01 = %+v, want the fault since 3 s", w01)
	}
	if v.Stations[1].AndonSince != nil {
		t.Errorf("W02's answered andon still has a start: %v", v.Stations[1].AndonSince)
	}
}

func TestLineModelAlarm(t *testing.T) {
	m := newLineModel(testLine)
	m.seed([]schema.StationStatus{{StationState: schema.StationState{Station: "W02", State: "running", ChangedAt: at(0)},
		Alarm: schema.StationAlarm{Code: "refused", Text: "refused cycle 3", Cycle: 3, Since: at(0)}}})
	if a := m.view(at(1)).Stations[1].Alarm; a == nil || a.Text != "refused cycle 3" {
		t.Fatalf("W02 alarm %+v, want the seeded one", a)
	}
	m.apply(schema.LiveEvent{Seq: 1, Kind: "alarm", Station: "W01", AlarmActive: true, AlarmCode: "refused", AlarmText: "refused cycle 9", AlarmCycle: 9, OccurredAt: at(2)})
	m.apply(schema.LiveEvent{Seq: 2, Kind: "alarm", Station: "W02", AlarmCode: "refused", OccurredAt: at(3)})
	v := m.view(at(4))
	if a := v.Stations[0].Alarm; a == nil || a.Code != "refused" || a.Cycle != 9 || !a.Since.Equal(at(2)) {
		t.Errorf("W01 alarm %+v, want refused cycle 9 since 2 s", a)
	}
	if a := v.Stations[1].Alarm; a != nil {
		t.Errorf("W02 alarm %+v, want it cleared", a)
	}
}

// TestLineModelSPCAlarm: an SPC rule break (event kind spc, with its
// alarm row) is the station's alarm on the live line.
func TestLineModelSPCAlarm(t *testing.T) {
	m := newLineModel(testLine)
	m.apply(schema.LiveEvent{Seq: 1, Kind: "spc", Station: "W02", AlarmActive: true, AlarmCode: "spc", AlarmText: "SPC torque W02 j1: nelson2 broken", OccurredAt: at(2)})
	if a := m.view(at(3)).Stations[1].Alarm; a == nil || a.Code != "spc" || a.Text != "SPC torque W02 j1: nelson2 broken" || !a.Since.Equal(at(2)) {
		t.Fatalf("W02 alarm %+v, want the spc break", a)
	}
}

func TestLineModelIgnoresOtherStationsAndCyclesWithoutVisit(t *testing.T) {
	m := newLineModel(testLine)
	if m.apply(schema.LiveEvent{Seq: 1, Kind: "state", Station: "X99", State: "fault"}) {
		t.Error("a state of a station not on the line changed the view")
	}
	if m.apply(schema.LiveEvent{Seq: 2, Kind: "cycle", Station: "W01", Visit: false}) {
		t.Error("a cycle the record could not attribute changed the view")
	}
	if m.seq != 2 {
		t.Errorf("seq = %d, want 2: every event read counts", m.seq)
	}
}

func TestLineModelForgetsOldCars(t *testing.T) {
	m := newLineModel(testLine)
	n := 3 * (len(testLine) + carsKept)
	for i := range n {
		m.apply(schema.LiveEvent{Seq: int64(i + 1), Kind: "cycle", Station: "S01", VIN: fmt.Sprintf("V%04d", i), Visit: true, Result: "OK", OccurredAt: at(float64(i))})
	}
	m.apply(schema.LiveEvent{Seq: int64(n + 1), Kind: "cycle", Station: "W01", VIN: "ONLINE", Visit: true, Result: "OK", OccurredAt: at(float64(n))})
	for i := range n {
		m.apply(schema.LiveEvent{Seq: int64(n + 2 + i), Kind: "cycle", Station: "S01", VIN: fmt.Sprintf("W%04d", i), Visit: true, Result: "OK", OccurredAt: at(float64(n + i))})
	}
	if len(m.cars) > len(testLine)+carsKept {
		t.Errorf("model keeps %d cars, want at most %d", len(m.cars), len(testLine)+carsKept)
	}
	if m.cars["ONLINE"] == nil {
		t.Error("the car still on the line was forgotten before shipped cars")
	}
}
