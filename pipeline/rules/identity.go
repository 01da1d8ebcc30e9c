package rules

import (
	"slices"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// Car identity: a cycle is filed under the key the line's identity policy
// gives (event.IdentityPolicy.Key). Every (body number, VIN) pair a cycle
// gives is recorded once. Under the default policy (vin) a cycle with only
// a body number is filed under the VIN its body number was last paired
// with; one whose body number has no pair yet is left pending (it is in
// the event log) and derived, by these same rules, when a cycle pairs its
// body number — in the same batch or a later one.

// cycle files a cycle under its car and derives it, or leaves it pending.
func (b *batch) cycle(x Input) {
	ev := x.Event
	pol := b.line.Identity
	if ev.VIN != "" && ev.Body != "" {
		b.pair(ev)
	}
	key := pol.Key(ev.VIN, ev.Body)
	if key != "" {
		b.derive(key, x)
		return
	}
	p := schema.PendingCycle{EventID: ev.ID, Body: ev.Body, Station: ev.Station, At: ev.OccurredAt}
	if vins := b.pairs[ev.Body]; len(vins) > 0 {
		// Paired already: filed at once, resolved by itself.
		p.VIN, p.ResolvedEventID, p.ResolvedAt = vins[len(vins)-1], ev.ID, ev.OccurredAt
		b.res.Pending = append(b.res.Pending, p)
		b.derive(p.VIN, x)
		return
	}
	b.res.Pending = append(b.res.Pending, p)
	b.waiting[ev.Body] = append(b.waiting[ev.Body], waitingCycle{idx: len(b.res.Pending) - 1, in: x})
	b.note(false, ev, "", "cycle pending: body number "+ev.Body+" has no VIN yet; it is derived when a station pairs them")
}

// pair records the pair of body number and VIN ev gives, and derives the
// cycles that were pending for the body number, in log order, under the
// VIN (before ev itself).
func (b *batch) pair(ev *event.Event) {
	if !slices.Contains(b.pairs[ev.Body], ev.VIN) {
		b.pairs[ev.Body] = append(b.pairs[ev.Body], ev.VIN)
		b.res.CarIDs = append(b.res.CarIDs, schema.CarID{Body: ev.Body, VIN: ev.VIN, EventID: ev.ID, At: ev.OccurredAt})
	}
	if b.line.Identity.Key("", ev.Body) != "" {
		return // the policy files body numbers as they are: nothing waits
	}
	for _, p := range b.stored[ev.Body] {
		stored, err := event.DecodeFor(p.Payload, b.line.Identity)
		var x Input
		if err == nil {
			x, err = Decode(stored)
		}
		if err != nil || x.Cycle == nil {
			b.note(true, ev, ev.VIN, "pending cycle "+p.EventID+" cannot be read again from the event log; it stays pending")
			continue
		}
		p.VIN, p.ResolvedEventID, p.ResolvedAt, p.Payload = ev.VIN, ev.ID, ev.OccurredAt, nil
		b.res.Resolved = append(b.res.Resolved, p)
		b.derive(ev.VIN, x)
	}
	delete(b.stored, ev.Body)
	for _, w := range b.waiting[ev.Body] {
		p := &b.res.Pending[w.idx]
		p.VIN, p.ResolvedEventID, p.ResolvedAt = ev.VIN, ev.ID, ev.OccurredAt
		b.derive(ev.VIN, w.in)
	}
	delete(b.waiting, ev.Body)
}
