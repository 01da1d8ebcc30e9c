package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// derive applies a cycle's rules to the car filed under key: the car's
// route and span, its visit, the holds the cycle opens and closes, the
// gate's decision and the JIS broadcasts.
func (b *batch) derive(key string, x Input) {
	ev, c := x.Event, x.Cycle
	route := &b.line.Route
	pos := route.Pos(ev.Station)
	if pos < 0 {
		b.note(true, ev, key, "station "+ev.Station+" is not on the line's route: the cycle is kept in the event log only")
		return
	}
	b.res.Keys[ev.ID] = key
	k := b.car(key)
	at := ev.OccurredAt
	known := k.known
	if !known {
		k.v = schema.Vehicle{VIN: key, FirstSeenAt: at, LastSeenAt: at, LastPos: -1}
		k.known = true
	}
	v := &k.v
	if at.Before(v.FirstSeenAt) { // a late event: the car's span widens
		v.FirstSeenAt = at
	}
	closed := b.route(k, known, pos, ev)
	if pos > v.LastPos {
		v.LastPos, v.LastStation = pos, ev.Station
	}
	if at.After(v.LastSeenAt) {
		v.LastSeenAt = at
	}
	if v.Model == "" {
		v.Model, v.Variant, v.Colour = c.Model, c.Variant, c.Colour
	}
	if pos == len(route.Stations)-1 && v.ShippedAt.IsZero() {
		v.ShippedAt = at
	}
	b.res.Visits = append(b.res.Visits, schema.Visit{EventID: ev.ID, VIN: key, Station: ev.Station, Pos: pos, Counter: int64(c.Counter),
		Result: c.Result, StartedAt: c.StartedAt, FinishedAt: at, Parts: c.Parts, Joints: c.Joints, Tests: c.Tests, Bad: c.Bad})
	b.broadcast(k, key, ev, c)

	unknowns := Unknowns(c)
	switch {
	case c.Result == "NOK":
		b.open(k, schema.Hold{VIN: key, Station: ev.Station, Kind: schema.HoldNOK, Reason: event.NOKReason(ev.Station, c), EventID: ev.ID, At: at})
	case c.Result == "":
		b.open(k, schema.Hold{VIN: key, Station: ev.Station, Kind: schema.HoldBadData, Reason: "result unknown: bad PLC value", EventID: ev.ID, At: at})
	case route.Stations[pos].Optional:
		// The rework bay repaired the car: its NOK and SPC holds close,
		// and the tightening holds it repaired.
		closed += b.close(k, ev, func(h schema.Hold) bool { return h.Kind == schema.HoldNOK || h.Kind == schema.HoldSPC })
		closed += b.reworked(k, ev, c)
	}
	b.missing(k, key, ev)
	// A known value of an item closes the holds that wait for it; the
	// cycle's own unknown items then open theirs.
	closed += b.close(k, ev, func(h schema.Hold) bool {
		return h.Kind == schema.HoldUnknown && Reports(c, unknowns, ev.Station, h)
	})
	for _, u := range unknowns {
		b.open(k, schema.Hold{VIN: key, Station: ev.Station, Kind: schema.HoldUnknown, Reason: u.Reason(ev.Station), EventID: ev.ID, At: at, Item: u.Item})
	}
	switch {
	case route.Gate == "":
	case ev.Station == route.Gate:
		b.decide(k, key, ev)
	case closed > 0:
		b.release(k, key, ev)
	}
}

// route follows a car arriving at pos and returns how many of its holds
// the arrival closed. A car seen at a station after skipping mandatory
// ones gets a route hold per skipped station; when the skipped station's
// own cycle arrives later (cycles of different stations can be reordered,
// say by an agent's spool) it closes that hold. A cycle at a station the
// car had already passed, that is not such a late arrival, is out of order
// and holds the car, unless it is at an optional (rework) station, which a
// car may visit at any time, or a re-test: at the station the car is at,
// or at one where a value it waits for (an unknown hold) was not read. The
// car never moves back.
func (b *batch) route(k *car, known bool, pos int, ev *event.Event) int {
	st := b.line.Route.Stations
	v := &k.v
	if known && pos <= v.LastPos {
		if n := b.close(k, ev, func(h schema.Hold) bool { return h.Kind == schema.HoldRoute && h.Station == ev.Station }); n > 0 {
			return n
		}
		if st[pos].Optional {
			return 0 // rework, before or after the gate, or reported late
		}
		if pos == v.LastPos || slices.ContainsFunc(k.open, func(h openHold) bool { return h.Kind == schema.HoldUnknown && h.Station == ev.Station }) {
			return 0 // a re-test at the car's station, or at one whose value it waits for
		}
		b.open(k, schema.Hold{VIN: v.VIN, Station: ev.Station, Kind: schema.HoldRoute, EventID: ev.ID, At: ev.OccurredAt,
			Reason: fmt.Sprintf("out of order: cycle at %s after %s", ev.Station, v.LastStation)})
		return 0
	}
	for p := v.LastPos + 1; p < pos; p++ {
		if st[p].Optional {
			continue
		}
		reason := fmt.Sprintf("skipped %s: seen at %s after %s", st[p].ID, ev.Station, v.LastStation)
		if !known {
			reason = fmt.Sprintf("skipped %s: first seen at %s", st[p].ID, ev.Station)
		}
		b.open(k, schema.Hold{VIN: v.VIN, Station: st[p].ID, Kind: schema.HoldRoute, Reason: reason, EventID: ev.ID, At: ev.OccurredAt})
	}
	return 0
}

// decide records the quality gate's decision on a car at the gate: released
// only with no open hold (the cycle's own included), else blocked, naming
// each open hold.
func (b *batch) decide(k *car, key string, ev *event.Event) {
	why := make([]string, len(k.open))
	for i, h := range k.open {
		why[i] = h.Kind + " hold from " + h.Station + " (" + h.EventID + "): " + h.Reason
	}
	d := schema.GateDecision{EventID: ev.ID, VIN: key, Station: ev.Station, Released: len(k.open) == 0, OpenHolds: len(k.open),
		Reason: strings.Join(why, "; "), DecidedAt: ev.OccurredAt, Kind: schema.GateKindGate}
	b.res.Gate = append(b.res.Gate, d)
	k.gate = &d
	if !d.Released {
		b.note(true, ev, key, "car blocked at the quality gate: "+strconv.Itoa(d.OpenHolds)+" open holds")
	}
}

// release records the release of a car the gate had blocked, by the event
// that closed its last open hold. The release is dated at the event, or at
// the block if that is later (the closing event reached the tracker after
// the gate's, though it happened before).
func (b *batch) release(k *car, key string, ev *event.Event) {
	last := k.gate
	if last == nil || last.Released || len(k.open) > 0 {
		return
	}
	d := schema.GateDecision{EventID: ev.ID, VIN: key, Station: last.Station, Released: true,
		Reason:    "holds closed by " + ev.ID + " after the gate blocked the car (" + last.EventID + ")",
		DecidedAt: ev.OccurredAt, Kind: schema.GateKindRelease}
	if last.DecidedAt.After(d.DecidedAt) {
		d.DecidedAt = last.DecidedAt
	}
	b.res.Gate = append(b.res.Gate, d)
	k.gate = &d
	b.note(false, ev, key, "car released: the holds that blocked it at the quality gate are closed")
}

// broadcast numbers the JIS broadcasts of a car passing the broadcast
// point: one per supplier that delivers to it and has none for it yet.
func (b *batch) broadcast(k *car, key string, ev *event.Event, c *event.Cycle) {
	bc := b.line.Broadcast
	if bc == nil || ev.Station != bc.Station {
		return
	}
	for _, s := range bc.Suppliers {
		v, ok := s.Variant(c.Model, c.Variant, c.Colour)
		if !ok || k.bcast[s.Name] {
			continue
		}
		b.lastSeq[s.Name]++
		k.bcast[s.Name] = true
		b.res.Broadcasts = append(b.res.Broadcasts, event.Broadcast{Supplier: s.Name, Seq: b.lastSeq[s.Name], VIN: key, PartNumber: s.Part,
			PartVariant: v, Install: s.Install, EventID: ev.ID, PassedAt: ev.OccurredAt})
	}
}
