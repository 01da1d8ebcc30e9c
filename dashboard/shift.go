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
	// PlannedFrom is when planned production time began: the shift
	// calendar's planned start, or the line's first data in the shift
	// (AsOf while the line has not been seen). UnplannedS is the plant
	// time of breaks and planned stops so far, which is not planned time.
	PlannedFrom time.Time `json:"planned_from"`
	UnplannedS  float64   `json:"unplanned_s"`

	// CarsOut counts cars that finished the last station in the shift.
	CarsOut int64 `json:"cars_out"`
	// PlanToDate is the cars the takt plans in the planned time so far;
	// Plan those of the whole shift less its breaks and planned stops.
	PlanToDate int64 `json:"plan_to_date"`
	Plan       int64 `json:"plan"`
	// JPH is cars out per planned plant hour so far; TargetJPH is
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
	// PlannedS, DownS and RunS are plant seconds: planned = from
	// ShiftView.PlannedFrom to now less breaks and planned stops, down =
	// fault and maintenance within planned time, run = planned − down.
	PlannedS float64 `json:"planned_s"`
	DownS    float64 `json:"down_s"`
	RunS     float64 `json:"run_s"`
	// A = run / planned. P = count × ideal cycle / run (a station's ideal
	// cycle from the shift calendar, the takt without one; the line's is
	// its slowest station's).
	// Q = good / count. OEE = A × P × Q.
	A   float64  `json:"a"`
	P   float64  `json:"p"`
	Q   *float64 `json:"q"`
	OEE *float64 `json:"oee"`
	// Count and Good are the cycles (cars out, for the line) that P and Q
	// count.
	Count int64 `json:"count"`
	Good  int64 `json:"good"`
	// IdealCycleS is the ideal cycle P is measured against, plant seconds.
	IdealCycleS float64 `json:"ideal_cycle_s"`
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
	// plannedStart is when the calendar plans production to begin (wall
	// time); zero: when the line is first seen in the shift.
	plannedStart time.Time
	// unplanned are the breaks and planned stops in [from, to), wall time.
	unplanned []span
	// idealCycle is each station's ideal cycle time in plant time; a
	// station without one is measured against the takt.
	idealCycle map[string]time.Duration
}

// idealOf returns station's ideal cycle in plant time.
func (p shiftParams) idealOf(station string) time.Duration {
	if d, ok := p.idealCycle[station]; ok && d > 0 {
		return d
	}
	return p.takt
}

// shiftNumbers computes the shift's numbers from the record of [from,
// asOf). Planned time runs from the planned start (or the line's first
// event in the shift) to asOf, less breaks and planned stops; down time
// counts only within it; performance is against each station's ideal
// cycle (the line's: its slowest station's).
func shiftNumbers(p shiftParams, r *schema.ShiftRecord) ShiftView {
	plantS := func(d time.Duration) float64 { return d.Seconds() * p.speed }
	wall := func(d time.Duration) time.Duration { return time.Duration(float64(d) / p.speed) }
	start := p.asOf // a line not seen in the shift has no planned time yet
	switch {
	case !p.plannedStart.IsZero():
		start = p.plannedStart
	case !r.FirstSeen.IsZero():
		start = r.FirstSeen
	}
	start = clampTime(start, p.from, p.asOf)
	planned := subtract(span{start, p.asOf}, p.unplanned)
	plannedD := totalLength(planned)
	breaks := totalLength(intersect(p.unplanned, []span{{p.from, p.asOf}}))
	shiftBreaks := totalLength(intersect(p.unplanned, []span{{p.from, p.to}}))
	v := ShiftView{
		From: p.from, To: p.to, AsOf: p.asOf, TaktS: p.takt.Seconds(), Speed: p.speed,
		PlannedFrom: start, UnplannedS: plantS(breaks),
		CarsOut: r.CarsOut, FirstPass: r.FirstPass,
		PlanToDate: int64(plantS(plannedD) / p.takt.Seconds()),
		Plan:       int64(max(p.shiftLength-time.Duration(float64(shiftBreaks)*p.speed), 0) / p.takt),
		TargetJPH:  3600 / p.takt.Seconds(),
		Stations:   []StationOEE{}, Downtime: []DowntimeItem{}, Holds: []HoldView{}, Andon: []AndonCall{},
		OpenHolds: r.OpenHolds,
	}
	if h := plantS(plannedD) / 3600; h > 0 {
		v.JPH = float64(r.CarsOut) / h
	}
	if r.CarsOut > 0 {
		v.FPY = ratio(r.FirstPass, r.CarsOut)
	}

	optional := map[string]bool{}
	var lineIdeal time.Duration
	for _, s := range p.stations {
		optional[s.ID] = s.Optional
		if !s.Optional {
			lineIdeal = max(lineIdeal, p.idealOf(s.ID))
		}
	}
	// Down periods count only within planned time: a fault in a break is
	// no loss.
	var inPlan []schema.DownPeriod
	for _, d := range r.Down {
		for _, x := range intersect([]span{{d.From, d.To}}, planned) {
			c := d
			c.From, c.To = x.from, x.to
			inPlan = append(inPlan, c)
		}
	}
	down := map[string]time.Duration{}
	var spans []span
	for _, d := range inPlan {
		down[d.Station] += d.To.Sub(d.From)
		if !optional[d.Station] {
			spans = append(spans, span{d.From, d.To})
		}
	}
	lineDown := unionLength(spans)
	v.DowntimeS = plantS(lineDown)
	v.Line = oee(plannedD, lineDown, r.CarsOut, r.FirstPass, wall(lineIdeal), p.speed)
	for _, s := range p.stations {
		if s.Optional {
			continue
		}
		c := r.Cycles[s.ID]
		v.Stations = append(v.Stations, StationOEE{Station: s.ID, OEE: oee(plannedD, down[s.ID], c.Cycles, c.Good, wall(p.idealOf(s.ID)), p.speed)})
	}
	v.Downtime = pareto(inPlan, p.speed)

	for _, h := range r.Holds {
		v.Holds = append(v.Holds, HoldView{VIN: h.VIN, Model: h.Model, Colour: h.Colour, Station: h.Station, Kind: h.Kind,
			Reason: h.Reason, OpenedAt: h.OpenedAt, LastStation: h.LastStation})
	}
	names := map[string]string{}
	for _, s := range p.stations {
		names[s.ID] = s.Name
	}
	state := map[string]string{}
	for _, s := range r.Stations {
		state[s.Station] = s.State
		if name, ok := names[s.Station]; ok && s.Andon {
			v.Andon = append(v.Andon, AndonCall{Station: s.Station, Name: name, State: s.State, Since: s.AndonSince})
		}
	}
	for _, a := range r.TerminalAndons { // pulled at the station's terminal
		if name, ok := names[a.Station]; ok {
			v.Andon = append(v.Andon, AndonCall{Station: a.Station, Name: name, State: state[a.Station], Since: a.At, By: a.User, Reason: a.Reason})
		}
	}
	sort.SliceStable(v.Andon, func(a, b int) bool { return v.Andon[a].Since.Before(v.Andon[b].Since) })
	return v
}

// oee computes A, P and Q over planned wall time with down wall time, count
// cycles of which good were good, against the ideal cycle (wall time).
func oee(planned, down time.Duration, count, good int64, ideal time.Duration, speed float64) OEE {
	run := planned - down
	o := OEE{PlannedS: planned.Seconds() * speed, DownS: down.Seconds() * speed, RunS: run.Seconds() * speed, Count: count, Good: good,
		IdealCycleS: ideal.Seconds() * speed}
	if planned > 0 {
		o.A = run.Seconds() / planned.Seconds()
	}
	if run > 0 {
		o.P = float64(count) * ideal.Seconds() / run.Seconds()
	}
	if count > 0 {
		o.Q = ratio(good, count)
		x := o.A * o.P * *o.Q
		o.OEE = &x
	}
	return o
}

func clampTime(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		return lo
	}
	if t.After(hi) {
		return hi
	}
	return t
}

// subtract returns s less the spans cut, in time order.
func subtract(s span, cut []span) []span {
	cs := append([]span(nil), cut...)
	sort.Slice(cs, func(a, b int) bool { return cs[a].from.Before(cs[b].from) })
	var out []span
	cur := s.from
	for _, c := range cs {
		if !c.to.After(cur) {
			continue
		}
		if !c.from.Before(s.to) {
			break
		}
		if c.from.After(cur) {
			out = append(out, span{cur, c.from})
		}
		cur = c.to
	}
	if cur.Before(s.to) {
		out = append(out, span{cur, s.to})
	}
	return out
}

// intersect returns the parts of a that lie within b (b's spans
// disjoint).
func intersect(a, b []span) []span {
	var out []span
	for _, x := range a {
		for _, y := range b {
			from, to := x.from, x.to
			if y.from.After(from) {
				from = y.from
			}
			if y.to.Before(to) {
				to = y.to
			}
			if from.Before(to) {
				out = append(out, span{from, to})
			}
		}
	}
	return out
}

// totalLength is the time covered by spans (see unionLength).
func totalLength(spans []span) time.Duration { return unionLength(spans) }

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

// plantTime maps a wall-clock time onto the plant clock of a line running
// Speed times faster than real time: the two agree at ShiftStart.
func (c *Config) plantTime(t time.Time) time.Time {
	return c.ShiftStart.Add(time.Duration(float64(t.Sub(c.ShiftStart)) * c.Speed))
}

// wallTime is plantTime's inverse.
func (c *Config) wallTime(t time.Time) time.Time {
	return c.ShiftStart.Add(time.Duration(float64(t.Sub(c.ShiftStart)) / c.Speed))
}

// shiftParams are the numbers' parameters for the shift [from, to) (wall
// time) as of asOf, with the calendar's breaks, planned start and ideal
// cycles mapped onto the wall clock.
func (c *Config) shiftParams(from, to, asOf time.Time) shiftParams {
	p := shiftParams{from: from, to: to, asOf: asOf, takt: c.Takt, speed: c.Speed, shiftLength: c.ShiftLength, stations: c.Stations}
	if c.Calendar == nil {
		return p
	}
	for _, u := range c.Calendar.Unplanned(c.plantTime(from), c.plantTime(to)) {
		p.unplanned = append(p.unplanned, span{c.wallTime(u.From), c.wallTime(u.To)})
	}
	if ps, ok := c.Calendar.PlannedStart(c.plantTime(from)); ok {
		p.plannedStart = c.wallTime(ps)
	}
	p.idealCycle = map[string]time.Duration{}
	for _, s := range c.Stations {
		p.idealCycle[s.ID] = c.Calendar.IdealCycleOf(s.ID, c.Takt)
	}
	return p
}
