// Package rules is the record's rules, written once: how a batch of build
// events becomes the record's rows — a car's vehicle row and route, its
// visits with parts, joints and tests, the holds opened and closed, the
// quality gate's decisions, the JIS broadcasts, the stations' states and
// alarms, and the pairing of body numbers with VINs.
//
// Apply is a pure function: from the events and what the record already
// knows of their cars (a schema.View, read in one round trip at the start
// of a batch) to the changes (schema.Changes) the record then writes in
// one round. The tracker, the history generator (keiline history gen) and
// the trace tests' fixture (schema/tracetest) all record through Record,
// which runs the three steps in a transaction.
//
// A new event kind's rule goes into Apply's switch on the kind, in a file
// of its own, next to cycle.go, state.go and identity.go: it reads and
// changes the batch's cars (b.car) and adds its rows to b.res.
package rules

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// Route is the line the rules follow: its stations in order.
type Route struct {
	Plant, Line string
	Stations    []RouteStation
	// Gate is the quality gate station: a car's cycle there records a
	// gate decision, released only when the car has no open hold, else
	// blocked. Empty means the line has no gate.
	Gate string
}

// RouteStation is one station of a Route. An optional station (an off-line
// rework bay) may be skipped, and an OK cycle there closes the car's NOK
// holds.
type RouteStation struct {
	ID       string
	Optional bool
}

// Pos returns the station's place in the route, -1 when it is not on it.
func (r *Route) Pos(station string) int {
	for i, s := range r.Stations {
		if s.ID == station {
			return i
		}
	}
	return -1
}

// Validate checks the route: a plant, a line, stations, and a gate that is
// one of them.
func (r *Route) Validate() error {
	if len(r.Stations) == 0 || r.Plant == "" || r.Line == "" {
		return errors.New("route needs a plant, a line and stations")
	}
	if r.Gate != "" && r.Pos(r.Gate) < 0 {
		return fmt.Errorf("route: gate %q is not a station of the route", r.Gate)
	}
	return nil
}

// Broadcast is the line's JIS broadcast: a car passing its station gets a
// broadcast per supplier that delivers to it, numbered per supplier.
type Broadcast struct {
	// Station is the broadcast point.
	Station   string
	Suppliers []Supplier
}

// Supplier is one just-in-sequence supplier.
type Supplier struct {
	Name, Part, Install string
	// Variant returns the part variant a car of model, variant and colour
	// needs, and whether the supplier delivers to such a car.
	Variant func(model, variant, colour string) (string, bool)
}

// Line is what the rules know of the line.
type Line struct {
	Route Route
	// Identity is how the line identifies its cars. Defaults to
	// event.IdentityVIN.
	Identity event.IdentityPolicy
	// Broadcast is the line's JIS broadcast; nil when it has none.
	Broadcast *Broadcast
	// Torque is the line's tightening controllers; nil when it has none
	// (a tightening is still recorded, but no class A joint is required).
	Torque *Torque
	// Now is the tracker's clock, for the conflicts Record finds.
	// Defaults to time.Now.
	Now func() time.Time
	// SPC, when set, checks each value Record records against its
	// characteristic's frozen limits and records the rule breaks (spc.go).
	SPC *SPC
}

func (l *Line) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

// Input is one event of a batch with its data decoded.
type Input struct {
	Event *event.Event
	Cycle *event.Cycle
	State *event.State
	Alarm *event.Alarm
	// Tightening is a tightening controller's result.
	Tightening *event.Tightening
	// Human is a person's decision (event.KindHuman).
	Human *event.Human
	// Conflict is a conflict the tracker found (Record), never an event
	// from a station.
	Conflict *event.Conflict
	// SPC is an SPC rule break the tracker found (Record), never an
	// event from a station.
	SPC *event.SPCBreak
}

// Decode returns ev as an Input, its data decoded by its kind. The error
// wraps event.ErrMalformed.
func Decode(ev *event.Event) (Input, error) {
	in := Input{Event: ev}
	var err error
	switch ev.Kind {
	case event.KindCycle:
		in.Cycle, err = ev.Cycle()
	case event.KindState:
		in.State, err = ev.State()
	case event.KindAlarm:
		in.Alarm, err = ev.Alarm()
	case event.KindTightening:
		in.Tightening, err = ev.Tightening()
	case event.KindConflict:
		in.Conflict, err = ev.Conflict()
	case event.KindHuman:
		in.Human, err = ev.Human()
	case event.KindSPC:
		in.SPC, err = ev.SPCBreak()
	}
	return in, err
}

// Note is something the rules want an operator to know about an event:
// a car blocked at the gate or released, a cycle waiting for its body
// number.
type Note struct {
	// Warn marks a note that needs an operator; the others are
	// information.
	Warn    bool
	Text    string
	EventID string
	Station string
	// VIN is the key of the car concerned ("" when none).
	VIN string
}

// Result is what a batch derives: the changes to write, and notes to log.
type Result struct {
	schema.Changes
	Notes []Note
	// Keys is the car each cycle was filed under, by event id; a cycle
	// left pending has none.
	Keys map[string]string
	// Conflicts counts the conflicts found: events whose id the log held
	// with a different content (Record).
	Conflicts int
	// SPCPoints counts the values Line.SPC checked against frozen limits;
	// SPCBreaks the rule breaks it recorded (Record).
	SPCPoints, SPCBreaks int
	// spc is what the batch changed in Line.SPC, kept by SPC.Commit.
	spc *spcStage
}

// Needs returns what the rules must know of the record to apply in: the
// cars the cycles and tightenings name, their body numbers, and the JIS suppliers when the
// line broadcasts.
func (l *Line) Needs(in []Input) schema.ViewQuery {
	var q schema.ViewQuery
	cars, bodies := map[string]bool{}, map[string]bool{}
	cycles := false
	for _, x := range in {
		if x.Tightening != nil {
			if k := l.Identity.Key(x.Event.VIN, ""); k != "" && !cars[k] {
				cars[k] = true
				q.Cars = append(q.Cars, k)
			}
			continue
		}
		if x.Human != nil && x.Event.VIN != "" && !cars[x.Event.VIN] {
			cars[x.Event.VIN] = true
			q.Cars = append(q.Cars, x.Event.VIN)
		}
		if x.Cycle == nil {
			continue
		}
		cycles = true
		ev := x.Event
		if k := l.Identity.Key(ev.VIN, ev.Body); k != "" && !cars[k] {
			cars[k] = true
			q.Cars = append(q.Cars, k)
		}
		if ev.Body != "" && !bodies[ev.Body] {
			bodies[ev.Body] = true
			q.Bodies = append(q.Bodies, ev.Body)
		}
	}
	// A pending cycle resolved by this batch may pass the broadcast
	// point, so any batch with a cycle reads the suppliers' numbers.
	if l.Broadcast != nil && cycles {
		for _, s := range l.Broadcast.Suppliers {
			q.Suppliers = append(q.Suppliers, s.Name)
		}
	}
	return q
}

// car is one car of the batch as the rules see it.
type car struct {
	v     schema.Vehicle
	known bool
	// open are its open holds, in the order they were opened.
	open  []openHold
	gate  *schema.GateDecision
	bcast map[string]bool
	// tight are the joints it has a tightening of (schema.TightKey),
	// true once one is OK.
	tight map[string]bool
}

// openHold is an open hold of a car: one the record has (id) or one this
// batch opened (idx in the result's Holds).
type openHold struct {
	schema.Hold
	id  int64
	idx int
}

// batch is the state of one Apply.
type batch struct {
	line *Line
	res  *Result
	cars map[string]*car
	// order is the cars' keys in the order the batch touched them.
	order   []string
	touched map[string]bool
	// pairs are the VINs of each body number, the record's and the
	// batch's.
	pairs map[string][]string
	// stored are the record's pending cycles by body number; waiting the
	// batch's own, by body number, as indexes into res.Pending with their
	// inputs.
	stored  map[string][]schema.PendingCycle
	waiting map[string][]waitingCycle
	lastSeq map[string]int64
}

type waitingCycle struct {
	idx int
	in  Input
}

// Apply applies the rules to the new events of a batch, in order, given
// what the record knows of their cars (see Line.Needs), and returns what
// they derive. It does not change view.
func Apply(line *Line, view *schema.View, in []Input) *Result {
	b := &batch{line: line, res: &Result{Keys: map[string]string{}}, cars: map[string]*car{}, touched: map[string]bool{},
		pairs: map[string][]string{}, stored: map[string][]schema.PendingCycle{}, waiting: map[string][]waitingCycle{},
		lastSeq: map[string]int64{}}
	b.load(view)
	for _, x := range in {
		switch x.Event.Kind {
		case event.KindCycle:
			b.cycle(x)
		case event.KindState:
			b.state(x)
		case event.KindAlarm:
			b.alarm(x)
		case event.KindTightening:
			b.tightening(x)
		case event.KindConflict:
			b.conflict(x)
		case event.KindHuman:
			b.human(x)
		case event.KindSPC:
			b.spcBreak(x)
		default:
			b.note(true, x.Event, "", "no rule for events of kind "+x.Event.Kind+": kept in the event log only")
		}
	}
	for _, k := range b.order {
		b.res.Vehicles = append(b.res.Vehicles, b.cars[k].v)
	}
	return b.res
}

// load copies what the batch needs from the view.
func (b *batch) load(view *schema.View) {
	if view == nil {
		return
	}
	for k, c := range view.Cars {
		x := &car{v: c.Vehicle, known: true, gate: c.Gate, bcast: map[string]bool{}, tight: map[string]bool{}}
		for j, ok := range c.Tightened {
			x.tight[j] = ok
		}
		for _, h := range c.Holds {
			x.open = append(x.open, openHold{Hold: h.Hold, id: h.ID})
		}
		for s := range c.Broadcasts {
			x.bcast[s] = true
		}
		b.cars[k] = x
	}
	for body, vins := range view.Pairs {
		b.pairs[body] = slices.Clone(vins)
	}
	for _, p := range view.Pending {
		b.stored[p.Body] = append(b.stored[p.Body], p)
	}
	for s, n := range view.LastSeq {
		b.lastSeq[s] = n
	}
}

// car returns the batch's car of key, new (not known) when the record has
// none, and marks it touched.
func (b *batch) car(key string) *car {
	c := b.cars[key]
	if c == nil {
		c = &car{bcast: map[string]bool{}, tight: map[string]bool{}}
		b.cars[key] = c
	}
	if !b.touched[key] {
		b.touched[key] = true
		b.order = append(b.order, key)
	}
	return c
}

func (b *batch) note(warn bool, ev *event.Event, vin, text string) {
	b.res.Notes = append(b.res.Notes, Note{Warn: warn, Text: text, EventID: ev.ID, Station: ev.Station, VIN: vin})
}

// open opens a hold on car c.
func (b *batch) open(c *car, h schema.Hold) {
	b.res.Holds = append(b.res.Holds, schema.HoldRecord{Hold: h})
	c.open = append(c.open, openHold{Hold: h, idx: len(b.res.Holds) - 1})
}

// close closes the open holds of c that match, naming ev, and returns how
// many it closed.
func (b *batch) close(c *car, ev *event.Event, match func(h schema.Hold) bool) int {
	n := 0
	kept := c.open[:0]
	for _, h := range c.open {
		if !match(h.Hold) {
			kept = append(kept, h)
			continue
		}
		n++
		if h.id != 0 {
			b.res.Closes = append(b.res.Closes, schema.HoldClose{ID: h.id, VIN: h.VIN, EventID: ev.ID, At: ev.OccurredAt})
		} else {
			b.res.Holds[h.idx].ClosedEventID, b.res.Holds[h.idx].ClosedAt = ev.ID, ev.OccurredAt
		}
	}
	clear(c.open[len(kept):])
	c.open = kept
	return n
}
