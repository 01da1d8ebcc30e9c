package line

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Shifts is the line's shift calendar (the shifts: section, issue 17):
// what honest OEE needs besides the record. Breaks and planned stops are
// not planned production time, so they are never downtime; a shift's
// planned time starts at its planned start, or when the line is first
// seen in the shift; performance is measured against each station's
// ideal cycle time, not the takt.
//
// Times of day are in the plant's clock ("09:00"); planned stops are
// instants (RFC 3339). On a simulated line running faster than real time
// the dashboard maps them onto its compressed clock.
type Shifts struct {
	// Length is each shift's length. Defaults to ShiftLengthDefault (8 h).
	Length time.Duration `yaml:"length,omitempty"`
	// Calendar names the shifts of a day by their start ("06:00"). The
	// first one's start is where the dashboard's shifts begin, unless
	// its --shift-start says otherwise. Optional.
	Calendar []Shift `yaml:"calendar,omitempty"`
	// Breaks recur every day at the same time (lunch at 11:30 for 45 m).
	Breaks []Break `yaml:"breaks,omitempty"`
	// PlannedStops are one-off planned stops (preventive maintenance).
	PlannedStops []PlannedStop `yaml:"planned_stops,omitempty"`
	// IdealCycle is every station's ideal cycle time: the fastest a
	// station can make one car. Defaults to the takt (a station at the
	// takt is then 100 % performant).
	IdealCycle time.Duration `yaml:"ideal_cycle,omitempty"`
	// IdealCycles override IdealCycle per station id.
	IdealCycles map[string]time.Duration `yaml:"ideal_cycles,omitempty"`
}

// ShiftLengthDefault is a shift's length when the calendar gives none.
const ShiftLengthDefault = 8 * time.Hour

// Shift is one shift of the day.
type Shift struct {
	// Name for people (day, late, night).
	Name string `yaml:"name,omitempty"`
	// Start is the time of day the shift starts, HH:MM. Required.
	Start string `yaml:"start"`
	// PlannedStart is when production is planned to begin, HH:MM within
	// the shift; from then on time without output is a loss. Without
	// it, planned time starts when the line is first seen in the shift.
	PlannedStart string `yaml:"planned_start,omitempty"`
}

// Break is a daily break: no production is planned in it.
type Break struct {
	Name string `yaml:"name,omitempty"`
	// At is the time of day it starts, HH:MM. Required.
	At string `yaml:"at"`
	// Length is how long it lasts, above 0 and under 24 h. Required.
	Length time.Duration `yaml:"length"`
}

// PlannedStop is a one-off stop planned ahead.
type PlannedStop struct {
	Reason string    `yaml:"reason,omitempty"`
	From   time.Time `yaml:"from"`
	To     time.Time `yaml:"to"`
}

// Span is a stretch of time [From, To).
type Span struct {
	From, To time.Time
	// Why names the break or planned stop.
	Why string
}

// clock reads a time of day HH:MM as the offset from midnight.
func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q: want a time of day HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// ShiftLength is the calendar's shift length, or ShiftLengthDefault.
func (s *Shifts) ShiftLength() time.Duration {
	if s == nil || s.Length == 0 {
		return ShiftLengthDefault
	}
	return s.Length
}

// FirstStart returns the time of day ("06:00") the calendar's first shift
// starts, or "" without a calendar.
func (s *Shifts) FirstStart() string {
	if s == nil || len(s.Calendar) == 0 {
		return ""
	}
	return s.Calendar[0].Start
}

// IdealCycleOf returns the ideal cycle time of station: its own, the
// line's, or takt.
func (s *Shifts) IdealCycleOf(station string, takt time.Duration) time.Duration {
	if s == nil {
		return takt
	}
	if d, ok := s.IdealCycles[station]; ok && d > 0 {
		return d
	}
	if s.IdealCycle > 0 {
		return s.IdealCycle
	}
	return takt
}

// PlannedStart returns the planned start of the shift that begins at
// shiftStart (plant clock): the calendar shift starting at that time of
// day, when it gives a planned start. ok is false otherwise.
func (s *Shifts) PlannedStart(shiftStart time.Time) (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	midnight := time.Date(shiftStart.Year(), shiftStart.Month(), shiftStart.Day(), 0, 0, 0, 0, shiftStart.Location())
	of := shiftStart.Sub(midnight)
	for _, sh := range s.Calendar {
		start, err1 := clock(sh.Start)
		planned, err2 := clock(sh.PlannedStart)
		if err1 != nil || err2 != nil || start != of {
			continue
		}
		d := planned - start
		if d < 0 {
			d += 24 * time.Hour // a night shift planned to start after midnight
		}
		return shiftStart.Add(d), true
	}
	return time.Time{}, false
}

// Unplanned returns the breaks and planned stops within [from, to) (plant
// clock, in from's location), clipped to it, in time order and merged
// where they overlap.
func (s *Shifts) Unplanned(from, to time.Time) []Span {
	if s == nil || !from.Before(to) {
		return nil
	}
	var out []Span
	clip := func(a, b time.Time, why string) {
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if a.Before(b) {
			out = append(out, Span{From: a, To: b, Why: why})
		}
	}
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, from.Location()).AddDate(0, 0, -1)
	for ; day.Before(to); day = day.AddDate(0, 0, 1) {
		for _, b := range s.Breaks {
			at, err := clock(b.At)
			if err != nil {
				continue
			}
			start := day.Add(at)
			clip(start, start.Add(b.Length), cmpOr(b.Name, "break"))
		}
	}
	for _, p := range s.PlannedStops {
		clip(p.From, p.To, cmpOr(p.Reason, "planned stop"))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].From.Before(out[b].From) })
	merged := out[:0]
	for _, sp := range out {
		if n := len(merged); n > 0 && !sp.From.After(merged[n-1].To) {
			if sp.To.After(merged[n-1].To) {
				merged[n-1].To = sp.To
			}
			merged[n-1].Why += ", " + sp.Why
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// validateShifts adds the problems of the shifts section.
func (c *Config) validateShifts(add func(path, format string, a ...any)) {
	s := &c.Shifts
	if s.Length < 0 || s.Length > 24*time.Hour {
		add("shifts.length", "%s outside 0 (for %s) to 24h", s.Length, ShiftLengthDefault)
	}
	length := s.ShiftLength()
	for i, sh := range s.Calendar {
		at := func(f string) string { return fmt.Sprintf("shifts.calendar.%d.%s", i, f) }
		start, err := clock(sh.Start)
		if err != nil {
			add(at("start"), "%v", err)
			continue
		}
		if sh.PlannedStart == "" {
			continue
		}
		planned, err := clock(sh.PlannedStart)
		if err != nil {
			add(at("planned_start"), "%v", err)
			continue
		}
		if d := (planned - start + 24*time.Hour) % (24 * time.Hour); d >= length {
			add(at("planned_start"), "%s is not within the shift (%s for %s)", sh.PlannedStart, sh.Start, length)
		}
	}
	for i, b := range s.Breaks {
		at := func(f string) string { return fmt.Sprintf("shifts.breaks.%d.%s", i, f) }
		if _, err := clock(b.At); err != nil {
			add(at("at"), "%v", err)
		}
		if b.Length <= 0 || b.Length >= 24*time.Hour {
			add(at("length"), "%s: want above 0 and under 24h (10m, 45m)", b.Length)
		}
	}
	for i, p := range s.PlannedStops {
		if p.From.IsZero() || !p.From.Before(p.To) {
			add(fmt.Sprintf("shifts.planned_stops.%d.to", i), "want from and to (RFC 3339), to after from")
		}
	}
	if s.IdealCycle < 0 {
		add("shifts.ideal_cycle", "%s: want above 0 (or none, for the takt)", s.IdealCycle)
	}
	ids := make([]string, 0, len(s.IdealCycles))
	for id := range s.IdealCycles {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, ok := c.Station(id); !ok {
			add("shifts.ideal_cycles."+id, "%q is not a station of the line", id)
		} else if s.IdealCycles[id] <= 0 {
			add("shifts.ideal_cycles."+id, "%s: want above 0", s.IdealCycles[id])
		}
	}
}
