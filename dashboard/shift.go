package dashboard

import (
	"math"
	"sort"
	"time"

	"github.com/keiline/keiline/schema"
)

// ShiftView is the shift's numbers: the /api/v1/shift document and the
// stream's "shift" event. Times are wall-clock; durations in seconds are
// plant time (wall time × Speed), so a compressed simulated shift reads
// like a real one. A ratio the window cannot give yet (no cars out, no
// cycles) is null.
type ShiftView struct {
	// Next is what comes next from the build sequence (the next cars not
	// yet framed, cars sequenced, orders waiting); absent on a line that
	// builds no orders.
	Next *schema.NextCars `json:"next,omitempty"`

	// From and To bound the shift; AsOf is the moment the numbers are for
	// (To once the shift is over).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	AsOf time.Time `json:"as_of"`
	// TaktS is the takt in plant seconds; Speed the time compression.
	TaktS float64 `json:"takt_s"`
	Speed float64 `json:"speed"`

	// CarsOut counts cars that finished the last station in the shift.
	CarsOut int64 `json:"cars_out"`
	// PlanToDate is the cars the takt plans from the shift's start to
	// AsOf; Plan those of the whole shift.
	PlanToDate int64 `json:"plan_to_date"`
	Plan       int64 `json:"plan"`
	// JPH is cars out per plant hour of the shift so far; TargetJPH is
	// 3600 s / takt.
	JPH       float64 `json:"jph"`
	TargetJPH float64 `json:"target_jph"`
	// FirstPass counts the cars out whose every station cycle was OK the
	// first time (no NOK, no rework); FPY is FirstPass / CarsOut.
	FirstPass int64    `json:"first_pass"`
	FPY       *float64 `json:"fpy"`

	// Line is the line's OEE: A from the time no station was down, P from
	// cars out against the takt, Q the first-pass yield.
	Line OEE `json:"line"`
	// Stations is each on-line station's OEE, in line order.
	Stations []StationOEE `json:"stations"`

	// DowntimeS is the plant time in which at least one station was down
	// (fault or maintenance); Downtime is the Pareto of down time by
	// station and reason, largest first.
	DowntimeS float64        `json:"downtime_s"`
	Downtime  []DowntimeItem `json:"downtime"`

	// OpenHolds counts the cars' open holds; Holds lists the newest.
	OpenHolds int64      `json:"open_holds"`
	Holds     []HoldView `json:"holds"`
	// Andon lists the open andon calls the record holds, oldest first.
	Andon []AndonCall `json:"andon"`
}

// OEE is availability × performance × quality over a planned time.
type OEE struct {
	// PlannedS, DownS and RunS are plant seconds: planned = the shift so
	// far, run = planned − down.
	PlannedS float64 `json:"planned_s"`
	DownS    float64 `json:"down_s"`
	RunS     float64 `json:"run_s"`
	// A = run / planned. P = count × takt / run (ideal cycle = the takt).
	// Q = good / count. OEE = A × P × Q.
	A   float64  `json:"a"`
	P   float64  `json:"p"`
	Q   *float64 `json:"q"`
	OEE *float64 `json:"oee"`
	// Count and Good are the cycles (cars out, for the line) that P and Q
	// count.
	Count int64 `json:"count"`
	Good  int64 `json:"good"`
}

// StationOEE is one station's OEE.
type StationOEE struct {
	Station string `json:"station"`
	OEE
}

// DowntimeItem is one bar of the downtime Pareto.
type DowntimeItem struct {
	Station   string  `json:"station"`
	State     string  `json:"state"` // fault or maintenance
	FaultCode int32   `json:"fault_code"`
	FaultText string  `json:"fault_text"`
	Seconds   float64 `json:"seconds"`
	Stops     int     `json:"stops"`
	// Cumulative is the share of all station down time of this bar and
	// every larger one.
	Cumulative float64 `json:"cumulative"`
}

// HoldView is a car on hold.
type HoldView struct {
	VIN         string    `json:"vin"`
	Model       string    `json:"model"`
	Colour      string    `json:"colour"`
	Station     string    `json:"station"`
	Kind        string    `json:"kind"`
	Reason      string    `json:"reason"`
	OpenedAt    time.Time `json:"opened_at"`
	LastStation string    `json:"last_station"`
}

// shiftWindow returns the shift around now: shifts follow each other every
// length of wall time from start (before it too).
func shiftWindow(start time.Time, length time.Duration, now time.Time) (from, to time.Time) {
	k := int64(math.Floor(float64(now.Sub(start)) / float64(length)))
	from = start.Add(time.Duration(k) * length)
	return from, from.Add(length)
}

// shiftParams are what the numbers need besides the record.
type shiftParams struct {
	from, to, asOf time.Time
	takt           time.Duration // plant time
	speed          float64
	shiftLength    time.Duration // plant time
	stations       []Station
}

// shiftNumbers computes the shift's numbers from the record of [from, asOf).
func shiftNumbers(p shiftParams, r *schema.ShiftRecord) ShiftView {
	wallTakt := time.Duration(float64(p.takt) / p.speed)
	planned := p.asOf.Sub(p.from)
	plantS := func(d time.Duration) float64 { return d.Seconds() * p.speed }
	v := ShiftView{
		From: p.from, To: p.to, AsOf: p.asOf, TaktS: p.takt.Seconds(), Speed: p.speed,
		CarsOut: r.CarsOut, FirstPass: r.FirstPass,
		PlanToDate: int64(plantS(planned) / p.takt.Seconds()),
		Plan:       int64(p.shiftLength / p.takt),
		TargetJPH:  3600 / p.takt.Seconds(),
		Stations:   []StationOEE{}, Downtime: []DowntimeItem{}, Holds: []HoldView{}, Andon: []AndonCall{},
		OpenHolds: r.OpenHolds,
	}
	if h := plantS(planned) / 3600; h > 0 {
		v.JPH = float64(r.CarsOut) / h
	}
	if r.CarsOut > 0 {
		v.FPY = ratio(r.FirstPass, r.CarsOut)
	}

	optional := map[string]bool{}
	for _, s := range p.stations {
		optional[s.ID] = s.Optional
	}
	down := map[string]time.Duration{}
	var spans []span
	for _, d := range r.Down {
		down[d.Station] += d.To.Sub(d.From)
		if !optional[d.Station] {
			spans = append(spans, span{d.From, d.To})
		}
	}
	lineDown := unionLength(spans)
	v.DowntimeS = plantS(lineDown)
	v.Line = oee(planned, lineDown, r.CarsOut, r.FirstPass, wallTakt, p.speed)
	for _, s := range p.stations {
		if s.Optional {
			continue
		}
		c := r.Cycles[s.ID]
		v.Stations = append(v.Stations, StationOEE{Station: s.ID, OEE: oee(planned, down[s.ID], c.Cycles, c.Good, wallTakt, p.speed)})
	}
	v.Downtime = pareto(r.Down, p.speed)

	for _, h := range r.Holds {
		v.Holds = append(v.Holds, HoldView{VIN: h.VIN, Model: h.Model, Colour: h.Colour, Station: h.Station, Kind: h.Kind,
			Reason: h.Reason, OpenedAt: h.OpenedAt, LastStation: h.LastStation})
	}
	names := map[string]string{}
	for _, s := range p.stations {
		names[s.ID] = s.Name
	}
	for _, s := range r.Stations {
		if name, ok := names[s.Station]; ok && s.Andon {
			v.Andon = append(v.Andon, AndonCall{Station: s.Station, Name: name, State: s.State, Since: s.AndonSince})
		}
	}
	sort.SliceStable(v.Andon, func(a, b int) bool { return v.Andon[a].Since.Before(v.Andon[b].Since) })
	return v
}

// oee computes A, P and Q over planned wall time with down wall time, count
// cycles of which good were good, against the takt (wall time).
func oee(planned, down time.Duration, count, good int64, takt time.Duration, speed float64) OEE {
	run := planned - down
	o := OEE{PlannedS: planned.Seconds() * speed, DownS: down.Seconds() * speed, RunS: run.Seconds() * speed, Count: count, Good: good}
	if planned > 0 {
		o.A = run.Seconds() / planned.Seconds()
	}
	if run > 0 {
		o.P = float64(count) * takt.Seconds() / run.Seconds()
	}
	if count > 0 {
		o.Q = ratio(good, count)
		x := o.A * o.P * *o.Q
		o.OEE = &x
	}
	return o
}

func ratio(a, b int64) *float64 {
	x := float64(a) / float64(b)
	return &x
}

// span is a stretch of time.
type span struct{ from, to time.Time }

// unionLength returns the time covered by at least one span.
func unionLength(spans []span) time.Duration {
	sort.Slice(spans, func(a, b int) bool { return spans[a].from.Before(spans[b].from) })
	var total time.Duration
	var cur span
	for i, s := range spans {
		switch {
		case i == 0:
			cur = s
		case !s.from.After(cur.to):
			if s.to.After(cur.to) {
				cur.to = s.to
			}
		default:
			total += cur.to.Sub(cur.from)
			cur = s
		}
	}
	if len(spans) > 0 {
		total += cur.to.Sub(cur.from)
	}
	return total
}

// paretoMax is the most bars of the downtime Pareto.
const paretoMax = 12

// pareto sums down periods by station and reason, largest first. A period
// that continues the station's previous one for the same reason (the andon
// changed in between) is the same stop.
func pareto(down []schema.DownPeriod, speed float64) []DowntimeItem {
	type key struct {
		station, state string
		code           int32
		text           string
	}
	items := map[key]*DowntimeItem{}
	var order []key
	lastEnd := map[key]time.Time{}
	var total float64
	for _, d := range down { // ordered by station and time
		k := key{d.Station, d.State, d.FaultCode, d.FaultText}
		it := items[k]
		if it == nil {
			it = &DowntimeItem{Station: d.Station, State: d.State, FaultCode: d.FaultCode, FaultText: d.FaultText}
			items[k] = it
			order = append(order, k)
		}
		s := d.To.Sub(d.From).Seconds() * speed
		it.Seconds += s
		total += s
		if end, ok := lastEnd[k]; !ok || !end.Equal(d.From) {
			it.Stops++
		}
		lastEnd[k] = d.To
	}
	out := make([]DowntimeItem, 0, len(order))
	for _, k := range order {
		out = append(out, *items[k])
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Seconds > out[b].Seconds })
	if len(out) > paretoMax {
		out = out[:paretoMax]
	}
	var cum float64
	for i := range out {
		cum += out[i].Seconds
		if total > 0 {
			out[i].Cumulative = cum / total
		}
	}
	return out
}
