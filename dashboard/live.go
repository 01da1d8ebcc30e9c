package dashboard

import (
	"sort"
	"time"

	"github.com/keiline/keiline/schema"
)

// Station states as the PLCs report them (docs/plc-tags.md).
const (
	stateRunning     = "running"
	stateFault       = "fault"
	stateMaintenance = "maintenance"
)

// Station is one station of the line as the page draws it.
type Station struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Zone string `json:"zone"`
	// Optional marks an off-line station (the rework bay) that only cars
	// with a NOK result visit.
	Optional bool `json:"optional"`
}

// LineView is the live line: the /api/v1/line document and the stream's
// "line" event.
type LineView struct {
	Plant string `json:"plant"`
	Line  string `json:"line"`
	// Seq is the newest recorded event the view includes.
	Seq int64 `json:"seq"`
	// Now is the server's clock when the view was made; the page measures
	// cycle progress and ages against it.
	Now time.Time `json:"now"`
	// TaktMs is the line's takt in milliseconds of wall time (the takt
	// divided by the simulator's speed).
	TaktMs int64 `json:"takt_ms"`
	// Speed is the time compression of a simulated line (1 for a plant).
	Speed      float64       `json:"speed"`
	CarsOnLine int           `json:"cars_on_line"`
	Stations   []StationView `json:"stations"`
	// Andon lists the open andon calls, oldest first.
	Andon []AndonCall `json:"andon"`
}

// StationView is one station's live state.
type StationView struct {
	Station
	// State is running, blocked, starved, fault or maintenance; "" until
	// the station has reported.
	State      string     `json:"state"`
	StateSince *time.Time `json:"state_since,omitempty"`
	FaultCode  int32      `json:"fault_code"`
	FaultText  string     `json:"fault_text"`
	Andon      bool       `json:"andon"`
	AndonSince *time.Time `json:"andon_since,omitempty"`
	// Alarm is the station's current alarm as the MES sees it (an agent
	// refused a cycle, say), nil when none: shown like a fault.
	Alarm *AlarmView `json:"alarm"`
	// Car is the car in the station, nil when it is empty.
	Car *CarView `json:"car"`
}

// CarView is a car in a station.
type CarView struct {
	// VIN is "" for a car the record has not identified yet.
	VIN     string `json:"vin"`
	Model   string `json:"model"`
	Variant string `json:"variant"`
	Colour  string `json:"colour"`
	// Since is when the car entered the station (as near as the record
	// tells); the cycle's progress is measured from it.
	Since time.Time `json:"since"`
	// Done is true when the station finished its cycle on the car and the
	// car waits to move on.
	Done bool `json:"done"`
	// Hold is true when the car has a NOK result not yet reworked.
	Hold bool `json:"hold"`
}

// AlarmView is a station's current alarm: an agent's diagnosis (event kind
// alarm) with its code (e.g. "refused") and text, what the line
// supervisor reads on the station.
type AlarmView struct {
	Code  string    `json:"code"`
	Text  string    `json:"text"`
	Cycle int64     `json:"cycle,omitempty"`
	Since time.Time `json:"since"`
}

// AndonCall is an open andon call.
type AndonCall struct {
	Station string    `json:"station"`
	Name    string    `json:"name"`
	State   string    `json:"state"`
	Since   time.Time `json:"since"`
	// By and Reason are who pulled an andon at the station terminal, and
	// why; empty for the PLC's andon.
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// stationLive is what the record last said about a station.
type stationLive struct {
	state      string
	stateSince time.Time
	faultCode  int32
	faultText  string
	andon      bool
	andonSince time.Time
	vin        string // the VinPresent of the latest state event
	vinSince   time.Time
	alarm      *AlarmView // nil when none
}

// carLive is what the record says about a car on the line.
type carLive struct {
	vin, model, variant, colour string
	finished                    map[int]time.Time // station index → cycle finished
	last                        int               // highest station index finished, -1 none
	nok                         bool              // a NOK result not yet reworked
	touched                     int64             // seq of the last event about the car
}

// lineModel follows the line from recorded events. It is not safe for
// concurrent use.
//
// A station's state event carries the VIN present, but a PLC reports a new
// state only when its state, fault or andon changes: a station that sends
// its finished car on and takes the next one in the same instant stays
// "running" and says nothing. The model therefore combines the two kinds of
// event: a station's reported car stands until the record shows the car
// finished there; a running station whose car finished holds, in line
// order, the next car that finished the station before it.
type lineModel struct {
	stations []Station
	index    map[string]int
	st       []stationLive
	cars     map[string]*carLive
	seq      int64
}

// carsKept bounds the cars the model remembers beyond the line's stations.
const carsKept = 64

func newLineModel(stations []Station) *lineModel {
	m := &lineModel{stations: stations, index: map[string]int{}, st: make([]stationLive, len(stations)), cars: map[string]*carLive{}}
	for i, s := range stations {
		m.index[s.ID] = i
	}
	return m
}

// seed sets each station's state from the record's latest state.
func (m *lineModel) seed(ss []schema.StationStatus) {
	for _, s := range ss {
		i, ok := m.index[s.Station]
		if !ok {
			continue
		}
		m.st[i] = stationLive{state: s.State, stateSince: s.ChangedAt, faultCode: s.FaultCode, faultText: s.FaultText,
			andon: s.Andon, andonSince: s.AndonSince, vin: s.VinPresent, vinSince: s.ChangedAt}
		if a := s.Alarm; a.Code != "" {
			m.st[i].alarm = &AlarmView{Code: a.Code, Text: a.Text, Cycle: a.Cycle, Since: a.Since}
		}
	}
}

// apply takes one recorded event into the model. It reports whether the
// event changed anything the view shows.
func (m *lineModel) apply(e schema.LiveEvent) bool {
	if e.Seq > m.seq {
		m.seq = e.Seq
	}
	i, ok := m.index[e.Station]
	if !ok {
		return false
	}
	switch e.Kind {
	case "state":
		s := &m.st[i]
		if e.State != s.state {
			s.stateSince = e.OccurredAt
		}
		if e.Andon && !s.andon {
			s.andonSince = e.OccurredAt
		}
		if e.VinPresent != s.vin {
			s.vinSince = e.OccurredAt
		}
		s.state, s.faultCode, s.faultText, s.andon, s.vin = e.State, e.FaultCode, e.FaultText, e.Andon, e.VinPresent
		if !s.andon {
			s.andonSince = time.Time{}
		}
		return true
	case "alarm", "spc": // an SPC rule break (event kind spc) raises the station's alarm too
		s := &m.st[i]
		s.alarm = nil
		if e.AlarmActive {
			s.alarm = &AlarmView{Code: e.AlarmCode, Text: e.AlarmText, Cycle: e.AlarmCycle, Since: e.OccurredAt}
		}
		return true
	case "cycle":
		if !e.Visit {
			return false
		}
		c := m.cars[e.VIN]
		if c == nil {
			c = &carLive{vin: e.VIN, finished: map[int]time.Time{}, last: -1}
			m.cars[e.VIN] = c
		}
		c.touched = e.Seq
		if e.Model != "" {
			c.model, c.variant, c.colour = e.Model, e.Variant, e.Colour
		}
		c.finished[i] = e.OccurredAt
		c.last = max(c.last, i)
		switch {
		case e.Result == "NOK":
			c.nok = true
		case m.stations[i].Optional && e.Result == "OK":
			c.nok = false // reworked
		}
		m.prune()
		return true
	}
	return false
}

// prune forgets the cars longest untouched once the model holds more than
// the line can, shipped cars first.
func (m *lineModel) prune() {
	keep := len(m.stations) + carsKept
	if len(m.cars) <= keep {
		return
	}
	all := make([]*carLive, 0, len(m.cars))
	for _, c := range m.cars {
		all = append(all, c)
	}
	last := len(m.stations) - 1
	sort.Slice(all, func(a, b int) bool {
		sa, sb := all[a].last == last, all[b].last == last
		if sa != sb {
			return sa
		}
		return all[a].touched < all[b].touched
	})
	for _, c := range all[:len(all)-keep] {
		delete(m.cars, c.vin)
	}
}

// next returns the index of the station a car goes to after its last
// finished one: the following station, skipping an optional one unless the
// car has a NOK result to rework.
func (m *lineModel) next(c *carLive) int {
	n := c.last + 1
	for n < len(m.stations) && m.stations[n].Optional && !c.nok {
		n++
	}
	return n
}

// placement is a car placed in a station.
type placement struct {
	vin   string
	since time.Time
	done  bool
}

// place works out the car in each station.
func (m *lineModel) place() []*placement {
	occ := make([]*placement, len(m.stations))
	where := map[string]int{}
	// 1. The car each station reported, unless the record shows it
	// finished there and the station runs on (it took the next car).
	for i, s := range m.st {
		if s.vin == "" {
			continue
		}
		c := m.cars[s.vin]
		done := false
		if c != nil {
			if c.last > i {
				continue // the car finished a station further on: the report is stale
			}
			_, done = c.finished[i]
		}
		if done && s.state == stateRunning {
			continue
		}
		if j, dup := where[s.vin]; dup {
			occ[j] = nil // cars only move forward: the later report is the newer
		}
		occ[i] = &placement{vin: s.vin, since: s.vinSince, done: done}
		where[s.vin] = i
	}
	// 2. A running station whose reported car finished took, in line
	// order, the next car that finished the station before it, also one
	// still shown waiting there: it left when this station freed, and its
	// station has not said so yet. Downstream stations choose first, as
	// cars move.
	for i := len(m.st) - 1; i >= 0; i-- {
		s := m.st[i]
		if occ[i] != nil || s.state != stateRunning {
			continue
		}
		var left time.Time // when the reported car left
		if c := m.cars[s.vin]; c != nil {
			left = c.finished[i]
		}
		var pick *carLive
		for _, c := range m.cars {
			if c.last < 0 || m.next(c) != i {
				continue
			}
			if j, placed := where[c.vin]; placed && (j != c.last || !occ[j].done) {
				continue
			}
			if pick == nil || c.finished[c.last].Before(pick.finished[pick.last]) ||
				c.finished[c.last].Equal(pick.finished[pick.last]) && c.vin < pick.vin {
				pick = c
			}
		}
		if pick == nil {
			occ[i] = &placement{since: maxTime(left, s.stateSince)}
			continue
		}
		if j, placed := where[pick.vin]; placed {
			occ[j] = nil
		}
		occ[i] = &placement{vin: pick.vin, since: maxTime(left, pick.finished[pick.last])}
		where[pick.vin] = i
	}
	return occ
}

// view returns the live line as of now.
func (m *lineModel) view(now time.Time) LineView {
	v := LineView{Seq: m.seq, Now: now, Stations: make([]StationView, len(m.stations)), Andon: []AndonCall{}}
	for i, p := range m.place() {
		s := m.st[i]
		sv := StationView{Station: m.stations[i], State: s.state, FaultCode: s.faultCode, FaultText: s.faultText, Andon: s.andon,
			StateSince: timePtr(s.stateSince), AndonSince: timePtr(s.andonSince), Alarm: s.alarm}
		if p != nil {
			cv := &CarView{VIN: p.vin, Since: p.since, Done: p.done}
			if c := m.cars[p.vin]; c != nil {
				cv.Model, cv.Variant, cv.Colour, cv.Hold = c.model, c.variant, c.colour, c.nok
			}
			sv.Car = cv
			v.CarsOnLine++
		}
		if s.andon {
			v.Andon = append(v.Andon, AndonCall{Station: sv.ID, Name: sv.Name, State: s.state, Since: s.andonSince})
		}
		v.Stations[i] = sv
	}
	sort.SliceStable(v.Andon, func(a, b int) bool { return v.Andon[a].Since.Before(v.Andon[b].Since) })
	return v
}

// position returns the station a car is in and whether its cycle there is
// done; ok is false when the car is not on the line.
func (m *lineModel) position(vin string) (station string, done, ok bool) {
	for i, p := range m.place() {
		if p != nil && p.vin == vin {
			return m.stations[i].ID, p.done, true
		}
	}
	return "", false, false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
