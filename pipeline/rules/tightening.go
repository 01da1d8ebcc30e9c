package rules

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// Torque is what the rules know of the line's tightening controllers.
type Torque struct {
	// ClassA returns the VDI/VDE 2862 class A joints a car (filed under
	// key, of model and variant) gets at station from the station's
	// controllers, in the line config's order: the joints of the
	// parameter set its build selects, up to the set's batch size. None
	// when the station has no controller or the build gets no tightening
	// there.
	ClassA func(station, key, model, variant string) []string
}

// A tightening event is a joint of the car whose VIN it carries: a row of
// its own (schema.Tightening). A NOK result holds the car (HoldNOK, its
// Item the joint), closed by a later OK tightening of the same joint or
// by the rework; a result the agent flags as made while the tool was
// disabled holds it too (HoldInterlock), closed by the rework. A car whose
// cycle at a station arrives while it has no OK tightening of one of the
// station's class A joints for its build is held per joint (HoldMissing);
// tightening events and the station's cycle come from independent paths,
// so a tightening that arrives after the cycle closes that hold (a close,
// never an edit), and one that arrived before it keeps the hold from
// opening.

// tightening files a tightening result under its car and opens and closes
// the holds it decides.
func (b *batch) tightening(x Input) {
	ev, t := x.Event, x.Tightening
	what := tighteningName(t)
	key := b.line.Identity.Key(ev.VIN, "")
	if key == "" {
		b.note(true, ev, "", what+": no car of the line (the controller's VIN "+strconv.Quote(t.VIN)+"): kept in the event log only")
		return
	}
	k := b.peek(key)
	if v := &k.v; k.known && (ev.OccurredAt.Before(v.FirstSeenAt) || ev.OccurredAt.After(v.LastSeenAt)) {
		// The car's span widens to cover it (trace queries read only the
		// partitions of the span); it does not move on the line.
		b.car(key)
		if ev.OccurredAt.Before(v.FirstSeenAt) {
			v.FirstSeenAt = ev.OccurredAt
		} else {
			v.LastSeenAt = ev.OccurredAt
		}
	}
	b.res.Tightenings = append(b.res.Tightenings, schema.Tightening{EventID: ev.ID, VIN: key, Station: ev.Station, Tightening: *t, MadeAt: ev.OccurredAt})
	item := schema.Item{Kind: schema.ItemTightening, Name: t.Joint, Slot: 1}
	closed := 0
	if t.Joint != "" {
		tk := schema.TightKey(ev.Station, t.Joint)
		if t.Result == event.StatusOK {
			k.tight[tk] = true
			closed = b.close(k, ev, func(h schema.Hold) bool {
				return (h.Kind == schema.HoldNOK || h.Kind == schema.HoldMissing) && h.Station == ev.Station &&
					h.Item.Kind == schema.ItemTightening && h.Item.Name == t.Joint
			})
		} else if _, seen := k.tight[tk]; !seen {
			k.tight[tk] = false
		}
	}
	if t.Result == event.StatusNOK {
		b.open(k, schema.Hold{VIN: key, Station: ev.Station, Kind: schema.HoldNOK, Reason: "NOK " + what + ": " + tighteningValues(t),
			EventID: ev.ID, At: ev.OccurredAt, Item: item})
	}
	if t.WhileDisabled {
		b.open(k, schema.Hold{VIN: key, Station: ev.Station, Kind: schema.HoldInterlock,
			Reason: what + " made while the tool was disabled (the interlock): the controller ignored it", EventID: ev.ID, At: ev.OccurredAt, Item: item})
		b.note(true, ev, key, what+" made while the tool was disabled: the car is on hold")
	}
	if closed > 0 && b.line.Route.Gate != "" {
		b.release(k, key, ev)
	}
}

// missing holds car k, filed under key, for each class A joint of its
// build at the station of cycle ev that it has no OK tightening of and
// no open hold for.
// A line that files its cars by body number cannot file tightenings (the
// controller knows the VIN only): it gets no such hold.
func (b *batch) missing(k *car, key string, ev *event.Event) {
	if b.line.Torque == nil || b.line.Torque.ClassA == nil || b.line.Identity == event.IdentityBodyNumber {
		return
	}
	for i, j := range b.line.Torque.ClassA(ev.Station, key, k.v.Model, k.v.Variant) {
		if k.tight[schema.TightKey(ev.Station, j)] {
			continue
		}
		item := schema.Item{Kind: schema.ItemTightening, Name: j, Slot: i + 1}
		if k.holds(schema.HoldMissing, ev.Station, item.Name) {
			continue
		}
		b.open(k, schema.Hold{VIN: key, Station: ev.Station, Kind: schema.HoldMissing, EventID: ev.ID, At: ev.OccurredAt, Item: item,
			Reason: "class A joint " + j + " missing: no OK tightening of it when the car left " + ev.Station})
	}
}

// reworked closes the tightening holds an OK cycle at the rework bay
// repairs: the interlock holds, and the missing joints it reports OK (its
// NOK holds close with the cycle's).
func (b *batch) reworked(k *car, ev *event.Event, c *event.Cycle) int {
	ok := map[string]bool{}
	for _, j := range c.Joints {
		if j.OK != nil && *j.OK && j.TorqueNm != nil {
			ok[j.Joint] = true
		}
	}
	return b.close(k, ev, func(h schema.Hold) bool {
		return h.Kind == schema.HoldInterlock || (h.Kind == schema.HoldMissing && ok[h.Item.Name])
	})
}

// holds reports whether c has an open hold of kind at station for the
// item named name.
func (c *car) holds(kind, station, name string) bool {
	for _, h := range c.open {
		if h.Kind == kind && h.Station == station && h.Item.Name == name {
			return true
		}
	}
	return false
}

// peek returns the batch's car of key, without marking it touched: a
// tightening does not move the car on the line (a car the record does not
// know yet gets its vehicle row from its cycles).
func (b *batch) peek(key string) *car {
	c := b.cars[key]
	if c == nil {
		c = &car{bcast: map[string]bool{}, tight: map[string]bool{}}
		b.cars[key] = c
	}
	return c
}

// tighteningName names a tightening for holds and notes: "controller
// C04-NR1 tightening 4711 (joint lug_fl_2)".
func tighteningName(t *event.Tightening) string {
	s := "controller " + t.Controller + " tightening " + strconv.FormatUint(uint64(t.TighteningID), 10)
	if t.Joint != "" {
		s += " (joint " + t.Joint + ")"
	}
	return s
}

// tighteningValues says a tightening's values against its limits.
func tighteningValues(t *event.Tightening) string {
	value := func(name string, v, lo, hi *float64, unit, status string) string {
		s := name + " "
		if v == nil {
			s += "unknown"
		} else {
			s += strconv.FormatFloat(*v, 'f', -1, 64) + " " + unit
		}
		s += " (" + status
		if lo != nil && hi != nil {
			s += fmt.Sprintf(", %s..%s", strconv.FormatFloat(*lo, 'f', -1, 64), strconv.FormatFloat(*hi, 'f', -1, 64))
		}
		return s + ")"
	}
	return strings.Join([]string{value("torque", t.TorqueNm, t.TorqueMinNm, t.TorqueMaxNm, "N·m", t.TorqueStatus),
		value("angle", t.AngleDeg, t.AngleMinDeg, t.AngleMaxDeg, "°", t.AngleStatus)}, ", ")
}
