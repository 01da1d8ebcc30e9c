package tracetest

import (
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// Decisions are the event ids of the people's decisions RecordDecisions
// records.
type Decisions struct {
	Defect, Repair, Release, Release3, Hold, Unhold, Andon string
}

// RecordDecisions records, after the fixture (Record), people's decisions
// on it: a defect seen on car 1 at C04 by sato (operator), repaired at R01
// by kato (operator) and released at Q05 by ito (quality inspector) with
// a signature; car 3, blocked at the gate by its NOK, released by ito's
// signature; a manual hold on car 2 by abe (supervisor) for a part lot and
// its release; an andon pulled at C04 by sato.
func RecordDecisions(t testing.TB, s *schema.Store) Decisions {
	t.Helper()
	base := Start.Add(time.Duration(len(Cycles)) * Step)
	n := 0
	mk := func(station string, car int, h event.Human) string {
		t.Helper()
		n++
		vin := ""
		if car > 0 {
			vin = VINs[car-1]
		}
		ev, err := event.NewHuman("US1", "L1", station, vin, h, base.Add(time.Duration(n)*time.Minute+123456*time.Microsecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.Validate(); err != nil {
			t.Fatal(err)
		}
		RecordEvents(t, s, &Line, ev)
		return ev.ID
	}
	var d Decisions
	d.Defect = mk("C04", 1, event.Human{Action: event.ActionDefect, UserID: 1, User: "sato", Role: "operator", Code: "PNT-02", Zone: "hood", Severity: "major", Text: "paint run"})
	d.Repair = mk("R01", 1, event.Human{Action: event.ActionRepair, UserID: 2, User: "kato", Role: "operator", Cites: d.Defect, Text: "sanded and polished"})
	d.Release = mk("Q05", 1, event.Human{Action: event.ActionRelease, UserID: 3, User: "ito", Role: "quality_inspector", Meaning: "released: conforms", Reason: "re-inspected"})
	d.Release3 = mk("Q05", 3, event.Human{Action: event.ActionRelease, UserID: 3, User: "ito", Role: "quality_inspector", Meaning: "released: conforms", Reason: "lug re-torqued by hand, checked"})
	d.Hold = mk("C04", 2, event.Human{Action: event.ActionHold, UserID: 4, User: "abe", Role: "supervisor", Reason: "supplier alert", Lot: "TYR-LOT-00201"})
	d.Unhold = mk("C04", 2, event.Human{Action: event.ActionUnhold, UserID: 4, User: "abe", Role: "supervisor", Reason: "lot cleared", Cites: d.Hold})
	d.Andon = mk("C04", 0, event.Human{Action: event.ActionAndonPull, UserID: 1, User: "sato", Role: "operator", Reason: "missing clip"})
	return d
}
