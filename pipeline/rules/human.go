package rules

import (
	"slices"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// A person's decision (event.KindHuman) derives its human_actions row,
// and on a car the holds it opens and closes:
//
//   - a defect opens a defect hold;
//   - a repair closes the defect hold its defect event opened (Cites) and
//     opens an inspection hold: the repaired car waits for a signature;
//   - a signed release closes the car's quality holds (NOK, defect,
//     inspection);
//   - a manual hold opens a manual hold; its release closes the manual
//     hold the hold event opened (Cites).
//
// A car the gate blocked and whose last hold the decision closed is
// released, as when a rework cycle closes it. A decision about a car the
// record does not know is kept in the event log and its row, and holds
// nothing (the web server checks the car before it publishes).

// human records a person's decision.
func (b *batch) human(x Input) {
	ev, h := x.Event, x.Human
	b.res.Humans = append(b.res.Humans, schema.HumanAction{EventID: ev.ID, Action: h.Action, Station: ev.Station, VIN: ev.VIN,
		UserID: h.UserID, User: h.User, Role: h.Role, Reason: h.Reason, Code: h.Code, Zone: h.Zone, Severity: h.Severity, Text: h.Text,
		Lot: h.Lot, Meaning: h.Meaning, Cites: h.Cites, At: ev.OccurredAt})
	if !event.NeedsCar(h.Action) {
		return
	}
	if c := b.cars[ev.VIN]; c == nil || !c.known {
		b.note(true, ev, ev.VIN, h.Action+" by "+h.User+" on a car the record does not know: kept in the event log only, no hold changes")
		return
	}
	k := b.car(ev.VIN)
	at := ev.OccurredAt
	hold := func(kind, reason string) {
		b.open(k, schema.Hold{VIN: ev.VIN, Station: ev.Station, Kind: kind, Reason: reason, EventID: ev.ID, At: at})
	}
	closed := 0
	switch h.Action {
	case event.ActionDefect:
		hold(schema.HoldDefect, "defect "+h.Code+" at "+h.Zone+" ("+h.Severity+"), seen by "+h.User+": "+h.Text)
	case event.ActionRepair:
		closed = b.close(k, ev, func(o schema.Hold) bool { return o.Kind == schema.HoldDefect && o.EventID == h.Cites })
		if closed == 0 {
			b.note(true, ev, ev.VIN, "repair by "+h.User+" cites "+h.Cites+", which is no open defect of the car")
			return
		}
		hold(schema.HoldInspection, "repaired by "+h.User+" ("+h.Text+"): waits for an inspector's signed release")
	case event.ActionRelease:
		closed = b.close(k, ev, func(o schema.Hold) bool { return slices.Contains(schema.QualityHoldKinds, o.Kind) })
	case event.ActionHold:
		reason := "manual hold by " + h.User + ": " + h.Reason
		if h.Lot != "" {
			reason = "manual hold of lot " + h.Lot + " by " + h.User + ": " + h.Reason
		}
		if h.Text != "" { // the station's output over a time window
			reason += " (" + h.Text + ")"
		}
		hold(schema.HoldManual, reason)
	case event.ActionUnhold:
		closed = b.close(k, ev, func(o schema.Hold) bool { return o.Kind == schema.HoldManual && o.EventID == h.Cites })
	}
	if closed > 0 && b.line.Route.Gate != "" {
		b.release(k, ev.VIN, ev)
	}
}
