package rules

import (
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// A station's state change and an agent's alarm derive a row each; the
// record moves the station's latest state and current alarm forward
// (schema.Tx.Apply).

// state records a station's state change.
func (b *batch) state(x Input) {
	ev, s := x.Event, x.State
	b.res.States = append(b.res.States, schema.StationState{EventID: ev.ID, Station: ev.Station, Counter: int64(s.Counter), State: s.State,
		FaultCode: s.FaultCode, FaultText: s.FaultText, Andon: s.Andon, VinPresent: s.VinPresent, ChangedAt: ev.OccurredAt})
}

// alarm records an agent's alarm on a station, raised or cleared.
func (b *batch) alarm(x Input) {
	ev, a := x.Event, x.Alarm
	b.res.Alarms = append(b.res.Alarms, schema.Alarm{EventID: ev.ID, Station: ev.Station, Counter: int64(a.Counter), Active: a.Active,
		Code: a.Code, Text: a.Text, Cycle: int64(a.Cycle), At: ev.OccurredAt})
	if a.Active {
		b.note(true, ev, "", "alarm "+a.Code+": "+a.Text)
	}
}

// conflict raises the station's alarm for a conflict the tracker found:
// an event id that arrived again with a different content.
func (b *batch) conflict(x Input) {
	ev, c := x.Event, x.Conflict
	b.res.Alarms = append(b.res.Alarms, schema.Alarm{EventID: ev.ID, Station: ev.Station, Counter: int64(c.Counter), Active: true,
		Code: event.AlarmConflict, Text: c.Text, At: ev.OccurredAt})
	b.res.Conflicts++
	b.note(true, ev, ev.VIN, "CONFLICT: "+c.Text)
}
