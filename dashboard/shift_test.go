package dashboard

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
)

func TestShiftWindow(t *testing.T) {
	// The shift starts at the last 06:00 UTC before now, derived from the
	// clock; the windows are what they are from it.
	start := time.Now().UTC().Add(-6 * time.Hour).Truncate(24 * time.Hour).Add(6 * time.Hour)
	const h, m = time.Hour, time.Minute
	tests := []struct {
		name     string
		length   time.Duration
		now      time.Time
		from, to time.Duration // from start
	}{
		{"at the start", 8 * h, start, 0, 8 * h},
		{"within the first", 8 * h, start.Add(7*h + 59*m), 0, 8 * h},
		{"the next", 8 * h, start.Add(8 * h), 8 * h, 16 * h},
		{"before the start", 8 * h, start.Add(-h), -8 * h, 0},
		{"compressed 60 times", 8 * m, start.Add(61 * m), 56 * m, 64 * m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := shiftWindow(start, tt.length, tt.now)
			if f, e := from.Sub(start), to.Sub(start); f != tt.from || e != tt.to {
				t.Errorf("window from %v to %v after the start, want %v to %v", f, e, tt.from, tt.to)
			}
		})
	}
}

func TestUnionLength(t *testing.T) {
	s := func(a, b float64) span { return span{at(a), at(b)} }
	tests := []struct {
		name  string
		spans []span
		want  float64
	}{
		{"none", nil, 0},
		{"one", []span{s(1, 3)}, 2},
		{"disjoint", []span{s(5, 6), s(1, 3)}, 3},
		{"overlapping", []span{s(1, 4), s(2, 6), s(5, 7)}, 6},
		{"nested", []span{s(1, 10), s(2, 3)}, 9},
		{"touching", []span{s(1, 2), s(2, 3)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unionLength(tt.spans).Seconds(); got != tt.want {
				t.Errorf("union = %v s, want %v s", got, tt.want)
			}
		})
	}
}

func TestPareto(t *testing.T) {
	down := []schema.DownPeriod{
		{Station: "C01", State: "fault", FaultCode: 501, FaultText: "conveyor", From: at(0), To: at(10)},
		{Station: "C01", State: "fault", FaultCode: 501, FaultText: "conveyor", From: at(10), To: at(15)}, // same stop, andon changed
		{Station: "C01", State: "fault", FaultCode: 501, FaultText: "conveyor", From: at(40), To: at(45)}, // another stop
		{Station: "C02", State: "maintenance", From: at(0), To: at(30)},
		{Station: "T01", State: "fault", FaultCode: 101, FaultText: "e-stop", From: at(0), To: at(5)},
	}
	got := pareto(down, 2)
	var s []string
	for _, d := range got {
		s = append(s, fmt.Sprintf("%s/%s/%d %.0fs %d stops %.2f", d.Station, d.State, d.FaultCode, d.Seconds, d.Stops, d.Cumulative))
	}
	want := []string{"C02/maintenance/0 60s 1 stops 0.55", "C01/fault/501 40s 2 stops 0.91", "T01/fault/101 10s 1 stops 1.00"}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("pareto\n got %v\nwant %v", s, want)
	}
}

func TestOEE(t *testing.T) {
	takt := time.Second
	tests := []struct {
		name          string
		planned, down time.Duration
		count, good   int64
		a, p          float64
		q, oee        string
	}{
		{"every cycle at takt, all good", 100 * time.Second, 0, 100, 100, 1, 1, "1.000", "1.000"},
		{"down a tenth, a bad one", 100 * time.Second, 10 * time.Second, 81, 80, 0.9, 0.9, "0.988", "0.800"},
		{"no cycles yet", 100 * time.Second, 0, 0, 0, 1, 0, "<nil>", "<nil>"},
		{"down all the time", 100 * time.Second, 100 * time.Second, 0, 0, 0, 0, "<nil>", "<nil>"},
	}
	f := func(x *float64) string {
		if x == nil {
			return "<nil>"
		}
		return fmt.Sprintf("%.3f", *x)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := oee(tt.planned, tt.down, tt.count, tt.good, takt, 1)
			if math.Abs(o.A-tt.a) > 1e-9 || math.Abs(o.P-tt.p) > 1e-9 || f(o.Q) != tt.q || f(o.OEE) != tt.oee {
				t.Errorf("oee = A %v P %v Q %s OEE %s, want A %v P %v Q %s OEE %s", o.A, o.P, f(o.Q), f(o.OEE), tt.a, tt.p, tt.q, tt.oee)
			}
		})
	}
}

func TestShiftNumbers(t *testing.T) {
	// A line at speed 60: a takt of 60 s lasts 1 s; the shift so far is
	// 100 s of wall time, 6000 s (100 takts) of plant time.
	stations := []Station{{ID: "C01"}, {ID: "R01", Optional: true}, {ID: "S01"}}
	r := &schema.ShiftRecord{
		CarsOut: 80, FirstPass: 76, FirstSeen: at(0),
		Cycles: map[string]schema.StationCycles{"C01": {Cycles: 85, Good: 84}, "S01": {Cycles: 80, Good: 80}, "R01": {Cycles: 4, Good: 4}},
		Down: []schema.DownPeriod{
			{Station: "C01", State: "fault", FaultCode: 501, From: at(10), To: at(20)},
			{Station: "R01", State: "fault", FaultCode: 101, From: at(30), To: at(40)}, // off-line: does not stop the line
			{Station: "S01", State: "maintenance", From: at(15), To: at(25)},
		},
		OpenHolds: 1,
		Holds:     []schema.OpenHold{{VIN: "V1", Station: "C01", Kind: "nok", Reason: "NOK at C01", OpenedAt: at(50)}},
		Stations: []schema.StationStatus{
			{StationState: schema.StationState{Station: "S01", Andon: true}, AndonSince: at(90)},
			{StationState: schema.StationState{Station: "C01", Andon: true}, AndonSince: at(60)},
			{StationState: schema.StationState{Station: "X99", Andon: true}, AndonSince: at(1)}, // not this line's
		},
	}
	v := shiftNumbers(shiftParams{from: at(0), to: at(480), asOf: at(100), takt: time.Minute, speed: 60, shiftLength: 8 * time.Hour, stations: stations}, r)
	check := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("plan to date", float64(v.PlanToDate), 100)
	check("plan", float64(v.Plan), 480)
	check("JPH", v.JPH, 80/(6000.0/3600))
	check("target JPH", v.TargetJPH, 60)
	check("FPY", *v.FPY, 0.95)
	check("line down", v.DowntimeS, 15*60) // C01 10-20 and S01 15-25: 15 s of wall time
	check("line A", v.Line.A, 0.85)
	check("line P", v.Line.P, 80/85.0)
	check("line OEE", *v.Line.OEE, 0.85*80/85.0*0.95)
	if len(v.Stations) != 2 || v.Stations[0].Station != "C01" || v.Stations[1].Station != "S01" {
		t.Fatalf("stations = %+v, want C01 and S01 (not the off-line R01)", v.Stations)
	}
	check("C01 A", v.Stations[0].A, 0.9)
	check("C01 P", v.Stations[0].P, 85/90.0)
	check("C01 Q", *v.Stations[0].Q, 84/85.0)
	if len(v.Downtime) != 3 || v.Downtime[0].Seconds != 600 {
		t.Errorf("downtime = %+v, want 3 bars of 600 s", v.Downtime)
	}
	if len(v.Andon) != 2 || v.Andon[0].Station != "C01" || v.Andon[1].Station != "S01" {
		t.Errorf("andon = %+v, want C01 then S01", v.Andon)
	}
	if len(v.Holds) != 1 || v.Holds[0].VIN != "V1" || v.OpenHolds != 1 {
		t.Errorf("holds = %d %+v", v.OpenHolds, v.Holds)
	}

	t.Run("no cars out yet", func(t *testing.T) {
		v := shiftNumbers(shiftParams{from: at(0), to: at(480), asOf: at(1), takt: time.Minute, speed: 60, shiftLength: 8 * time.Hour, stations: stations},
			&schema.ShiftRecord{Cycles: map[string]schema.StationCycles{}})
		if v.FPY != nil || v.Line.OEE != nil || v.CarsOut != 0 || v.JPH != 0 {
			t.Errorf("numbers = %+v, want no FPY and no OEE", v)
		}
	})
}

func TestNegotiate(t *testing.T) {
	tests := []struct{ header, want string }{
		{"", "en"},
		{"ja", "ja"},
		{"ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7", "ja"},
		{"en-US,en;q=0.9,ja;q=0.8", "en"},
		{"fr-FR,fr;q=0.9,ja;q=0.5,en;q=0.3", "ja"},
		{"de, *;q=0.1", "en"},
		{"ja;q=0, en", "en"},
		{"ja;q=bogus, en;q=0.2", "en"},
	}
	for _, tt := range tests {
		if got := negotiate(tt.header); got != tt.want {
			t.Errorf("negotiate(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

func TestShiftNumbersAreHonest(t *testing.T) {
	// Speed 1, a takt of 60 s; the shift began at 0 and it is now 7200 s.
	stations := []Station{{ID: "C01"}, {ID: "S01"}}
	base := shiftParams{from: at(0), to: at(28800), asOf: at(7200), takt: time.Minute, speed: 1, shiftLength: 8 * time.Hour, stations: stations}
	rec := func(first time.Time, down ...schema.DownPeriod) *schema.ShiftRecord {
		return &schema.ShiftRecord{CarsOut: 50, FirstPass: 50, FirstSeen: first, Down: down,
			Cycles: map[string]schema.StationCycles{"C01": {Cycles: 50, Good: 50}, "S01": {Cycles: 50, Good: 50}}}
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	t.Run("a line started mid-shift counts from its first data", func(t *testing.T) {
		// First seen at 3600 s: one planned hour, 50 cars at a 60 s takt.
		v := shiftNumbers(base, rec(at(3600)))
		near("planned", v.Line.PlannedS, 3600)
		near("A", v.Line.A, 1)
		near("P", v.Line.P, 50*60/3600.0)
		near("JPH", v.JPH, 50)
		near("plan to date", float64(v.PlanToDate), 60)
		if !v.PlannedFrom.Equal(at(3600)) {
			t.Errorf("planned from %v, want the first data", v.PlannedFrom)
		}
		// From the shift's start P would be 50 × 60 / 7200: the old,
		// dishonest figure.
		if v.Line.P <= 50*60/7200.0 {
			t.Errorf("P %v counts the time before the line was seen", v.Line.P)
		}
	})
	t.Run("the calendar's planned start counts from then", func(t *testing.T) {
		p := base
		p.plannedStart = at(1800)
		v := shiftNumbers(p, rec(at(3600)))
		near("planned", v.Line.PlannedS, 5400)
	})
	t.Run("a line not seen yet has no planned time", func(t *testing.T) {
		v := shiftNumbers(base, &schema.ShiftRecord{Cycles: map[string]schema.StationCycles{}})
		near("planned", v.Line.PlannedS, 0)
		if v.Line.OEE != nil || v.Line.A != 0 {
			t.Errorf("line %+v", v.Line)
		}
	})
	t.Run("breaks are not planned time and faults in them are no downtime", func(t *testing.T) {
		p := base
		p.unplanned = []span{{at(4000), at(4600)}} // a 10-minute break
		// A fault from 4500 to 4700: only 100 s of it is in planned time.
		v := shiftNumbers(p, rec(at(3600), schema.DownPeriod{Station: "C01", State: "fault", FaultCode: 7, From: at(4500), To: at(4700)}))
		near("planned", v.Line.PlannedS, 3000)
		near("unplanned", v.UnplannedS, 600)
		near("down", v.Line.DownS, 100)
		near("A", v.Line.A, 2900/3000.0)
		near("C01 down", v.Stations[0].DownS, 100)
		if len(v.Downtime) != 1 || v.Downtime[0].Seconds != 100 {
			t.Errorf("pareto %+v, want the 100 s in planned time", v.Downtime)
		}
		near("plan", float64(v.Plan), 470) // 8 h less the break, at 60 s
	})
	t.Run("performance against the ideal cycle", func(t *testing.T) {
		p := base
		p.idealCycle = map[string]time.Duration{"C01": 50 * time.Second, "S01": 40 * time.Second}
		v := shiftNumbers(p, rec(at(3600)))
		near("C01 P", v.Stations[0].P, 50*50/3600.0)
		near("S01 P", v.Stations[1].P, 50*40/3600.0)
		near("line P (slowest station)", v.Line.P, 50*50/3600.0)
		near("ideal cycle", v.Line.IdealCycleS, 50)
	})
}
