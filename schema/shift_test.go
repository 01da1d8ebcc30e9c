package schema_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
)

// sec is t0 plus s seconds.
func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// commit runs fn in one transaction of s.
func commit(t *testing.T, s *schema.Store, fn func(tx *schema.Tx) error) {
	t.Helper()
	if err := s.WithTx(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}

// shiftLog builds a record: each call appends one event and the rows the
// tracker would derive from it.
type shiftLog struct {
	t *testing.T
	s *schema.Store
	n int
}

func (l *shiftLog) state(plant, station, state string, code int32, text string, andon bool, vin string, at time.Time) {
	l.t.Helper()
	l.n++
	id := fmt.Sprintf("%s.L1.%s.state.%d", plant, station, l.n)
	commit(l.t, l.s, func(tx *schema.Tx) error {
		ev := schema.EventRow{ID: id, Kind: "state", Plant: plant, Line: "L1", Station: station, OccurredAt: at, RecordedAt: at, Payload: []byte(`{}`)}
		if _, err := tx.AppendEvents(l.t.Context(), []schema.EventRow{ev}); err != nil {
			return err
		}
		return tx.Apply(l.t.Context(), &schema.Changes{States: []schema.StationState{{EventID: id, Station: station, Counter: int64(l.n), State: state,
			FaultCode: code, FaultText: text, Andon: andon, VinPresent: vin, ChangedAt: at}}})
	})
}

func (l *shiftLog) cycle(station, vin, result string, at time.Time, holds ...string) {
	l.t.Helper()
	l.n++
	id := fmt.Sprintf("US1.L1.%s.cycle.%d", station, l.n)
	commit(l.t, l.s, func(tx *schema.Tx) error {
		ev := schema.EventRow{ID: id, Kind: "cycle", Plant: "US1", Line: "L1", Station: station, VIN: vin, OccurredAt: at, RecordedAt: at, Payload: []byte(`{}`)}
		if _, err := tx.AppendEvents(l.t.Context(), []schema.EventRow{ev}); err != nil {
			return err
		}
		v := schema.Vehicle{VIN: vin, Model: "KW", Variant: "Turbo", Colour: "mint", FirstSeenAt: at, LastSeenAt: at, LastStation: station}
		if station == "S01" {
			v.ShippedAt = at
		}
		ch := &schema.Changes{Vehicles: []schema.Vehicle{v}, Visits: []schema.Visit{{EventID: id, VIN: vin, Station: station, Counter: int64(l.n), Result: result,
			StartedAt: at.Add(-time.Second), FinishedAt: at}}}
		for _, kind := range holds {
			ch.Holds = append(ch.Holds, schema.HoldRecord{Hold: schema.Hold{VIN: vin, Station: station, Kind: kind, Reason: kind + " at " + station, EventID: id, At: at}})
		}
		return tx.Apply(l.t.Context(), ch)
	})
}

func TestLiveEventsFollowTheLog(t *testing.T) {
	s := open(t)
	l := &shiftLog{t: t, s: s}
	l.state("US1", "W01", "running", 0, "", false, "7KLKW1TB5VU000001", sec(1))
	l.state("JP2", "W01", "fault", 101, "emergency stop pressed", false, "", sec(2)) // another plant's line
	l.cycle("W01", "7KLKW1TB5VU000001", "NOK", sec(3))

	evs, err := s.LiveEvents(t.Context(), "US1", "L1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("got %d events, want this line's 2: %+v", len(evs), evs)
	}
	st, cy := evs[0], evs[1]
	if st.Kind != "state" || st.State != "running" || st.VinPresent != "7KLKW1TB5VU000001" || st.Visit || !st.OccurredAt.Equal(sec(1)) {
		t.Errorf("state event = %+v", st)
	}
	if cy.Kind != "cycle" || !cy.Visit || cy.Result != "NOK" || cy.Model != "KW" || cy.Variant != "Turbo" || cy.Colour != "mint" ||
		!cy.StartedAt.Equal(sec(2)) || cy.VIN != "7KLKW1TB5VU000001" || cy.Seq != 3 {
		t.Errorf("cycle event = %+v", cy)
	}
	head, err := s.LastSeq(t.Context())
	if err != nil || head != 3 {
		t.Fatalf("LastSeq = %d, %v; want 3", head, err)
	}

	t.Run("after a seq", func(t *testing.T) {
		evs, err := s.LiveEvents(t.Context(), "US1", "L1", 1, 10)
		if err != nil || len(evs) != 1 || evs[0].Seq != 3 {
			t.Fatalf("LiveEvents after 1 = %+v, %v; want the cycle only", evs, err)
		}
	})
	t.Run("limit", func(t *testing.T) {
		evs, err := s.LiveEvents(t.Context(), "US1", "L1", 0, 1)
		if err != nil || len(evs) != 1 || evs[0].Seq != 1 {
			t.Fatalf("LiveEvents limit 1 = %+v, %v; want the first event", evs, err)
		}
	})
}

func TestStationStatusesTellWhenAnAndonCallBegan(t *testing.T) {
	s := open(t)
	l := &shiftLog{t: t, s: s}
	l.state("US1", "Q01", "running", 0, "", false, "", sec(1))
	l.state("US1", "Q01", "running", 0, "", true, "", sec(2)) // the call
	l.state("US1", "Q01", "blocked", 0, "", true, "", sec(3)) // still the same call
	l.state("US1", "Q02", "running", 0, "", true, "", sec(4))
	l.state("US1", "Q02", "running", 0, "", false, "", sec(5)) // answered
	ss, err := s.StationStatuses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 {
		t.Fatalf("got %d stations, want 2", len(ss))
	}
	if q := ss[0]; q.Station != "Q01" || !q.Andon || q.State != "blocked" || !q.AndonSince.Equal(sec(2)) {
		t.Errorf("Q01 = %+v, want an andon call since 2 s", q)
	}
	if q := ss[1]; q.Station != "Q02" || q.Andon || !q.AndonSince.IsZero() {
		t.Errorf("Q02 = %+v, want no andon call", q)
	}
}

func TestShiftRecord(t *testing.T) {
	s := open(t)
	l := &shiftLog{t: t, s: s}
	from, to := sec(100), sec(200)
	// C01 is in fault from before the window into it, then maintenance to
	// past its end; C02 faults twice inside it, once with an andon change.
	l.state("US1", "C01", "fault", 501, "conveyor drive fault", false, "", sec(50))
	l.state("US1", "C01", "running", 0, "", false, "", sec(110))
	l.state("US1", "C01", "maintenance", 0, "", false, "", sec(190))
	l.state("US1", "C02", "fault", 201, "tool fault", false, "", sec(120))
	l.state("US1", "C02", "fault", 201, "tool fault", true, "", sec(125))
	l.state("US1", "C02", "running", 0, "", true, "", sec(130))
	l.state("US1", "C02", "fault", 301, "part shortage", false, "", sec(140))
	l.state("US1", "C02", "starved", 0, "", false, "", sec(145))
	l.state("US1", "C03", "fault", 101, "emergency stop pressed", false, "", sec(250)) // after the window

	l.cycle("C01", "7KLKW1TB5VU000001", "OK", sec(99)) // before the window
	l.cycle("C01", "7KLKW1TB5VU000002", "OK", sec(150))
	l.cycle("C01", "7KLKW1TB5VU000003", "NOK", sec(160), schema.HoldNOK)
	l.cycle("S01", "7KLKW1TB5VU000002", "OK", sec(170))
	l.cycle("S01", "7KLKW1TB5VU000003", "OK", sec(180))
	l.cycle("S01", "7KLKW1TB5VU000004", "OK", sec(185), schema.HoldRoute) // a route hold is not a quality problem
	l.cycle("S01", "7KLKW1TB5VU000005", "OK", sec(200))                   // at the window's end: outside

	r, err := s.ShiftRecord(t.Context(), schema.ShiftQuery{From: from, To: to, Stations: []string{"C01", "C02", "C03", "S01"}, Out: "S01"})
	if err != nil {
		t.Fatal(err)
	}
	if r.CarsOut != 3 || r.FirstPass != 2 {
		t.Errorf("cars out %d, first pass %d; want 3 and 2", r.CarsOut, r.FirstPass)
	}
	if c := r.Cycles["C01"]; c.Cycles != 2 || c.Good != 1 {
		t.Errorf("C01 cycles %+v, want 2 with 1 good", c)
	}
	var got []string
	for _, d := range r.Down {
		got = append(got, fmt.Sprintf("%s %s %d %v-%v", d.Station, d.State, d.FaultCode, d.From.Sub(t0).Seconds(), d.To.Sub(t0).Seconds()))
	}
	want := []string{"C01 fault 501 100-110", "C01 maintenance 0 190-200", "C02 fault 201 120-125", "C02 fault 201 125-130", "C02 fault 301 140-145"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("down periods\n got %v\nwant %v", got, want)
	}
	if r.OpenHolds != 2 || len(r.Holds) != 2 || r.Holds[0].VIN != "7KLKW1TB5VU000004" || r.Holds[0].Model != "KW" {
		t.Errorf("open holds %d %+v, want 2, newest first", r.OpenHolds, r.Holds)
	}
	if len(r.Stations) != 3 {
		t.Errorf("stations %+v, want the latest state of the 3 that reported", r.Stations)
	}

	t.Run("bad window", func(t *testing.T) {
		if _, err := s.ShiftRecord(t.Context(), schema.ShiftQuery{From: to, To: from, Stations: []string{"C01"}, Out: "S01"}); err == nil {
			t.Error("a window that ends before it starts gave no error")
		}
	})
}

func TestFindCars(t *testing.T) {
	s := open(t)
	l := &shiftLog{t: t, s: s}
	l.cycle("W01", "7KLKW1TB5VU000001", "OK", sec(1))
	l.cycle("W01", "7KLKE4SR2VU000001", "OK", sec(2))
	l.cycle("W01", "7KLKV22W9VU000004", "OK", sec(3))
	tests := []struct {
		name string
		q    string
		want string
	}{
		{"a whole VIN", "7KLKV22W9VU000004", "[7KLKV22W9VU000004]"},
		{"the last 6", "000004", "[7KLKV22W9VU000004]"},
		{"lower case and blanks", "  vu000004 ", "[7KLKV22W9VU000004]"},
		{"two cars with one serial, newest first", "000001", "[7KLKE4SR2VU000001 7KLKW1TB5VU000001]"},
		{"no such car", "999999", "[]"},
		{"nothing asked", " ", "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := s.FindCars(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vs {
				got = append(got, v.VIN)
			}
			if fmt.Sprint(got) != tt.want && !(len(got) == 0 && tt.want == "[]") {
				t.Errorf("FindCars(%q) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}
