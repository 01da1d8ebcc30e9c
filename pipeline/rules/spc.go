package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
)

// Rules that act (issue 17, scope 4): every new value of a characteristic
// with frozen control limits (schema spc_limits) is checked against the
// limits' run rules as it is recorded. A rule that trips at the new point,
// and did not trip at the point before, is a break: Record appends the
// tracker's spc event (event.KindSPC) in the batch's transaction, and the
// rule below derives from it the station's alarm (code event.AlarmSPC)
// and, when the line config says on_break: hold for the characteristic,
// an spc hold on each car made since the last good point — the cars of
// the values that make the rule's pattern. A rule still tripped at the
// next point raises nothing more until it has cleared.

// spcWindow is how many plotted points' values the monitor keeps per
// characteristic, for the cars of a break's pattern: more than the
// longest rule's window (Nelson 7, 15 points). The rules themselves run
// on the characteristic's whole series since the tracker loaded it
// (spc.Stream), exactly as a chart of it would flag them.
const spcWindow = 17

// SPC is the tracker's SPC monitor: the newest frozen limits of every
// characteristic, the line config's spc section (what a break does), and
// the last points of each characteristic, loaded from the record by
// LoadSPC and kept in memory. It is owned by one goroutine (the tracker's
// committer): Record stages what a batch changes, and Commit keeps it once
// the batch's transaction has committed, so a failed transaction leaves
// the monitor as it was.
type SPC struct {
	onBreak SPCOnBreak
	chars   map[schema.CharKey]*spcChar
	// stations are the stations with any frozen limits.
	stations map[string]bool
	loaded   time.Time
}

// spcChar is one characteristic the monitor checks.
type spcChar struct {
	key     schema.CharKey
	limits  schema.FrozenLimits
	onBreak string
	// stream charts its values one at a time (spc.Stream); tail are its
	// last values, for the cars of a break's pattern.
	stream *spc.Stream
	tail   []spcValue
	// broken are the rules that tripped at the last point; tripped is a
	// buffer.
	broken  map[spcRulePart]bool
	tripped []spcRulePart
}

// spcRulePart is a rule on one chart of the pair.
type spcRulePart struct {
	rule spc.Rule
	part spc.Part
}

type spcValue struct {
	v            float64
	vin, eventID string
	at           time.Time
}

// spcStage is what one batch changes in the monitor: its own copies of
// the characteristics it touched.
type spcStage struct {
	chars  map[schema.CharKey]*spcChar
	breaks int
}

// SPCOnBreak says what a break of a characteristic does: the line
// config's on_break for it (line.SPC.For), SPCOnBreakHold among others.
// The rules take it as a function so that the record's rules do not
// depend on the line definition's PLC side.
type SPCOnBreak func(kind, station, name, model, variant string) string

// SPCOnBreakHold is the on_break that holds the cars since the last good
// point (SPCOnBreakHold; a test in pipeline keeps them equal).
const SPCOnBreakHold = "hold"

// LoadSPC reads the newest frozen limits of every characteristic and the
// last points of each from the record, for a line whose spc section
// onBreak reads (nil: on_break alarm for every one). Errors are the
// record's.
func LoadSPC(ctx context.Context, store *schema.Store, onBreak SPCOnBreak) (*SPC, error) {
	if onBreak == nil {
		onBreak = func(string, string, string, string, string) string { return "alarm" }
	}
	s := &SPC{onBreak: onBreak, chars: map[schema.CharKey]*spcChar{}, stations: map[string]bool{}}
	return s, s.Refresh(ctx, store)
}

// Refresh reads the limits again: a characteristic frozen (or frozen
// anew) since the last load gets its last points from the record and is
// checked from its next value on. It is the monitor's owner's to call,
// between batches.
func (s *SPC) Refresh(ctx context.Context, store *schema.Store) error {
	all, err := store.AllLatestLimits(ctx)
	if err != nil {
		return fmt.Errorf("spc monitor: %w", err)
	}
	chars := make(map[schema.CharKey]*spcChar, len(all))
	stations := map[string]bool{}
	for k, f := range all {
		if f.Limits.Validate() != nil || spc.ValidateRules(f.Rules) != nil {
			continue // the record refuses such limits; never trust them here
		}
		stations[k.Station] = true
		if c := s.chars[k]; c != nil && c.limits.Version == f.Version {
			chars[k] = c
			continue
		}
		c, err := loadChar(ctx, store, f, s.onBreak(k.Kind, k.Station, k.Name, k.Model, k.Variant))
		if err != nil {
			return err
		}
		chars[k] = c
	}
	s.chars, s.stations, s.loaded = chars, stations, time.Now()
	return nil
}

// Loaded is when the limits were last read (Refresh).
func (s *SPC) Loaded() time.Time { return s.loaded }

// loadChar reads the last points of the characteristic of f and replays
// them, so that a rule already broken at the last recorded point is not
// raised again.
func loadChar(ctx context.Context, store *schema.Store, f schema.FrozenLimits, onBreak string) (*spcChar, error) {
	n := f.Limits.Chart.N
	st, err := spc.NewStream(f.Limits, f.Rules)
	if err != nil {
		return nil, fmt.Errorf("spc monitor: limits %d of %s: %w", f.ID, f.Key, err)
	}
	c := &spcChar{key: f.Key, limits: f, onBreak: onBreak, broken: map[spcRulePart]bool{}, stream: st}
	ser, err := store.Series(ctx, schema.SeriesQuery{Key: f.Key, From: time.Unix(0, 0), To: time.Now().Add(100 * 365 * 24 * time.Hour), Last: spcWindow * n})
	if err != nil {
		return nil, fmt.Errorf("spc monitor: %w", err)
	}
	// The newest values in whole subgroups: the next value starts one.
	pts := ser.Points[len(ser.Points)%n:]
	ids := ser.EventIDs[len(ser.Points)%n:]
	for i, p := range pts {
		c.add(spcValue{v: p.Value, vin: p.ID, eventID: ids[i], at: p.Time})
	}
	return c, nil
}

// spcBreak is a break found in a batch, with the car of each value of its
// pattern.
type spcBreak struct {
	c   *spcChar
	b   event.SPCBreak
	at  time.Time
	vin []string
}

// add adds a value to c and returns the rules that broke at it: tripped
// at the point the value completes, and not at the point before.
func (c *spcChar) add(x spcValue) []spcBreak {
	pt, vs, ok, err := c.stream.Add(spc.Point{Value: x.v, Time: x.at, ID: x.vin})
	if err != nil {
		return nil // a value beyond what spc takes: not a point of the chart
	}
	c.tail = append(c.tail, x)
	if keep := spcWindow * c.limits.Limits.Chart.N; len(c.tail) > keep {
		c.tail = c.tail[:copy(c.tail, c.tail[len(c.tail)-keep:])]
	}
	if !ok {
		return nil
	}
	var out []spcBreak
	tripped := c.tripped[:0]
	for _, v := range vs {
		id := spcRulePart{v.Rule, v.Part}
		if slices.Contains(tripped, id) {
			continue
		}
		tripped = append(tripped, id)
		if !c.broken[id] { // else still broken: raised when it broke
			out = append(out, c.breakAt(pt, v))
		}
	}
	if len(c.broken) > 0 || len(tripped) > 0 { // what did not trip here has cleared
		clear(c.broken)
		for _, id := range tripped {
			c.broken[id] = true
		}
	}
	c.tripped = tripped
	return out
}

// breakAt describes violation v, which tripped at plotted point pt, the
// newest: its pattern's values are the tail's last ones.
func (c *spcChar) breakAt(pt spc.Plotted, v spc.Violation) spcBreak {
	n := c.limits.Limits.Chart.N
	value := pt.Location
	if v.Part == spc.PartDispersion {
		value = pt.Dispersion
	}
	last := len(c.tail) - 1
	first := max(0, last-((v.Index-v.From)+1)*n+1)
	x := c.tail[last]
	var vins []string
	for _, y := range c.tail[first:] {
		if y.vin != "" && !slices.Contains(vins, y.vin) {
			vins = append(vins, y.vin)
		}
	}
	k := c.key
	return spcBreak{c: c, at: x.at, vin: vins, b: event.SPCBreak{Kind: k.Kind, Name: k.Name, Model: k.Model, Variant: k.Variant,
		Rule: string(v.Rule), Part: string(v.Part), PointEventID: x.eventID, PointVIN: x.vin, Value: value,
		Points: v.To - v.From + 1, FirstVIN: c.tail[first].vin, LimitsVersion: c.limits.Version, OnBreak: c.onBreak}}
}

// stage returns a stage for one batch.
func (s *SPC) stage() *spcStage { return &spcStage{chars: map[schema.CharKey]*spcChar{}} }

// char returns the stage's copy of the characteristic of key, nil when it
// has no limits.
func (s *SPC) char(st *spcStage, key schema.CharKey) *spcChar {
	if c := st.chars[key]; c != nil {
		return c
	}
	c := s.chars[key]
	if c == nil {
		return nil
	}
	cp := *c
	cp.tail, cp.broken, cp.stream = slices.Clone(c.tail), maps.Clone(c.broken), c.stream.Clone()
	cp.tripped = nil
	if cp.broken == nil {
		cp.broken = map[spcRulePart]bool{}
	}
	st.chars[key] = &cp
	return &cp
}

// Commit keeps what the committed batch of res checked (see Record). A
// result of a batch whose transaction failed must not be committed.
func (s *SPC) Commit(res *Result) {
	if s == nil || res == nil || res.spc == nil {
		return
	}
	for k, c := range res.spc.chars {
		if s.chars[k] != nil { // limits refreshed meanwhile keep theirs
			s.chars[k] = c
		}
	}
}

// check checks the values of the batch's visits, in order, and returns
// the breaks they raise.
func (s *SPC) check(st *spcStage, res *Result) []spcBreak {
	var cars map[string]schema.Vehicle
	var out []spcBreak
	for _, v := range res.Visits {
		if !s.stations[v.Station] {
			continue
		}
		if cars == nil {
			cars = make(map[string]schema.Vehicle, len(res.Vehicles))
			for _, c := range res.Vehicles {
				cars[c.VIN] = c
			}
		}
		car := cars[v.VIN]
		val := func(kind, name string, x *float64) {
			if x == nil {
				return // unknown: never a point
			}
			keys := []schema.CharKey{{Kind: kind, Station: v.Station, Name: name}} // every car's, the model's, the variant's
			if car.Model != "" {
				keys = append(keys, schema.CharKey{Kind: kind, Station: v.Station, Name: name, Model: car.Model})
				if car.Variant != "" {
					keys = append(keys, schema.CharKey{Kind: kind, Station: v.Station, Name: name, Model: car.Model, Variant: car.Variant})
				}
			}
			for _, k := range keys {
				if c := s.char(st, k); c != nil {
					res.SPCPoints++
					out = append(out, c.add(spcValue{v: *x, vin: v.VIN, eventID: v.EventID, at: v.FinishedAt})...)
				}
			}
		}
		for _, j := range v.Joints {
			val(schema.KindTorque, j.Joint, j.TorqueNm)
			val(schema.KindAngle, j.Joint, j.AngleDeg)
		}
		for _, t := range v.Tests {
			val(schema.KindTest, t.Name, t.Value)
		}
	}
	return out
}

// record checks the values a batch recorded (res, already written in tx)
// and records the breaks: the spc events in the log and what the rules
// derive from them, added to res. The stage goes into res for Commit.
func (s *SPC) record(ctx context.Context, tx *schema.Tx, l *Line, res *Result) error {
	if s == nil {
		return nil
	}
	st := s.stage()
	res.spc = st
	breaks := s.check(st, res)
	if len(breaks) == 0 {
		return nil
	}
	var q schema.ViewQuery
	for _, b := range breaks {
		if b.c.onBreak == SPCOnBreakHold {
			q.Cars = append(q.Cars, b.vin...)
		}
	}
	slices.Sort(q.Cars)
	q.Cars = slices.Compact(q.Cars)
	_, view, err := tx.AppendAndView(ctx, nil, q)
	if err != nil {
		return fmt.Errorf("spc breaks: %w", err)
	}
	rows := make([]schema.EventRow, 0, len(breaks))
	in := make([]Input, 0, len(breaks))
	for _, b := range breaks {
		if b.c.onBreak == SPCOnBreakHold {
			for _, vin := range b.vin {
				if view.Cars[vin] != nil {
					b.b.Hold = append(b.b.Hold, vin)
				}
			}
		}
		ev, err := event.NewSPCBreak(l.Route.Plant, l.Route.Line, b.c.key.Station, b.c.key.String(), b.b, b.at, l.now())
		if err != nil {
			return err
		}
		data, err := ev.SPCBreak()
		if err != nil {
			return err
		}
		body, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("spc break %s: %w", ev.ID, err)
		}
		rows = append(rows, Row(ev, body))
		in = append(in, Input{Event: ev, SPC: data})
	}
	fresh, _, err := tx.AppendAndView(ctx, rows, schema.ViewQuery{})
	if err != nil {
		return fmt.Errorf("spc breaks: %w", err)
	}
	news := in[:0]
	for i, x := range in {
		if fresh[i] {
			news = append(news, x)
		}
	}
	more := Apply(l, view, news)
	if err := tx.Apply(ctx, &more.Changes); err != nil {
		return fmt.Errorf("spc breaks: %w", err)
	}
	res.Alarms = append(res.Alarms, more.Alarms...)
	res.Holds = append(res.Holds, more.Holds...)
	res.Notes = append(res.Notes, more.Notes...)
	res.SPCBreaks += more.SPCBreaks
	st.breaks += more.SPCBreaks
	return nil
}

// spcBreak derives what an SPC rule break does: the station's alarm, and
// an spc hold on each car it names (its on_break hold).
func (b *batch) spcBreak(x Input) {
	ev, s := x.Event, x.SPC
	b.res.Alarms = append(b.res.Alarms, schema.Alarm{EventID: ev.ID, Station: ev.Station, Counter: int64(s.Counter), Active: true,
		Code: event.AlarmSPC, Text: s.Text, At: ev.OccurredAt})
	for _, vin := range s.Hold {
		c := b.cars[vin]
		if c == nil || !c.known {
			b.note(true, ev, vin, "SPC hold of a car the record does not know: not held")
			continue
		}
		b.open(c, schema.Hold{VIN: vin, Station: ev.Station, Kind: schema.HoldSPC, EventID: ev.ID, At: ev.OccurredAt,
			Reason: fmt.Sprintf("SPC %s %s %s: %s broken at %s", s.Kind, ev.Station, s.Name, s.Rule, s.PointVIN)})
	}
	b.res.SPCBreaks++
	b.note(true, ev, ev.VIN, s.Text)
}
