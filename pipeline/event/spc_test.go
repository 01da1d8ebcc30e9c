package event_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
)

// TestSPCBreak: the tracker's spc event has an id from the point and the
// rule (the same break found twice is one), reads as an alarm, names the
// characteristic, the rule and the point, and no station may publish it.
func TestSPCBreak(t *testing.T) {
	now := time.Now()
	at := now.Add(-time.Second)
	b := event.SPCBreak{Kind: "torque", Name: "lug_fl_1", Rule: "nelson2", Part: "location", PointEventID: "US1.L1.C04.cycle.39",
		PointVIN: "7KLKT34W5VU000039", Value: 114.2, Points: 9, FirstVIN: "7KLKE4LR6VU000031", LimitsVersion: 1, OnBreak: "hold",
		Hold: []string{"7KLKE4LR6VU000031", "7KLKT34W5VU000039"}}
	ev, err := event.NewSPCBreak("US1", "L1", "C04", "torque C04 lug_fl_1", b, at, now)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != event.SPCBreakID(b.PointEventID, "torque C04 lug_fl_1", "nelson2", "location") || !strings.HasPrefix(ev.ID, b.PointEventID+".spc.") {
		t.Errorf("spc id %s", ev.ID)
	}
	if event.SPCBreakID(b.PointEventID, "torque C04 lug_fl_1", "nelson1", "location") == ev.ID {
		t.Error("two rules broken at one point share an id")
	}
	d, err := ev.SPCBreak()
	if err != nil || !d.Active || d.Code != event.AlarmSPC || d.Counter != uint64(at.UnixMilli()) || ev.VIN != b.PointVIN || !ev.OccurredAt.Equal(at.UTC()) {
		t.Fatalf("spc data %+v, %v", d, err)
	}
	for _, s := range []string{"torque C04 lug_fl_1", "nelson2", b.PointVIN, b.PointEventID, "2 cars held"} {
		if !strings.Contains(d.Text, s) {
			t.Errorf("alarm text %q does not name %q", d.Text, s)
		}
	}
	if _, err := event.DecodeFor(body(t, ev), event.IdentityAny); err == nil || !strings.Contains(err.Error(), "tracker's own") {
		t.Errorf("a published spc event: %v, want refused", err)
	}
}
