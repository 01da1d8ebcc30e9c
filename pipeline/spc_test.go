package pipeline_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/rules"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
)

// TestTrackerSPCBreaksOnceAcrossRestartsAndRedeliveries: with limits
// frozen for the torque of W01's joint J1 (nelson2, on_break hold), nine
// cars above the centre line raise one break, at the ninth, holding the
// nine, though the tracker restarted after the fifth (it reads the points
// back from the record); restarted again, it does not raise the break
// anew while the run goes on, nor for a redelivered cycle; after a point
// below the centre line, the next nine above raise a second break.
func TestTrackerSPCBreaksOnceAcrossRestartsAndRedeliveries(t *testing.T) {
	e := newEnv(t)
	key := schema.CharKey{Kind: schema.KindTorque, Station: "W01", Name: "J1"}
	lim := spc.Limits{Chart: spc.ChartConfig{Method: spc.MethodIMR, N: 1}, Location: spc.Lines{Centre: 100, UCL: 103, LCL: 97},
		Dispersion: spc.Lines{Centre: 1.128, UCL: 3.686, LCL: 0}, Sigma: 1}
	now := time.Now()
	if _, err := e.store.FreezeLimits(t.Context(), schema.FrozenLimits{Key: key, Limits: lim, Rules: []spc.Rule{spc.Nelson2},
		BaselineFrom: now.Add(-2 * time.Hour), BaselineTo: now.Add(-time.Hour), FrozenBy: "qe", FrozenAt: now}, 0); err != nil {
		t.Fatal(err)
	}
	settings := &line.SPC{Characteristics: []line.SPCCharacteristic{{Kind: schema.KindTorque, Station: "W01", Name: "J1", OnBreak: line.OnBreakHold}}}
	cars := map[int]*event.Event{}
	car := func(i int, torque float64) *event.Event {
		ev := cycleEvent(t, "W01", mkVIN(t, i), uint32(i), t0.Add(time.Duration(i)*time.Minute), "OK",
			event.Joint{Joint: "J1", Tool: "W01-NR1", TorqueNm: new(torque), AngleDeg: new(45.0), OK: new(true)})
		cars[i] = ev
		return ev
	}
	breaks := func() []string {
		rows, err := e.store.Pool().Query(t.Context(), `SELECT vin FROM event_log WHERE kind = 'spc' ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	run := func(evs ...*event.Event) pipeline.TrackerStats {
		tr, stop := e.runWith(pipeline.TrackerConfig{Route: route, SPC: settings})
		for _, ev := range evs {
			if ev == cars[5] { // again, past JetStream's duplicate window: the tracker's to skip
				body, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				e.publishRaw(event.Subject(ev.Plant, ev.Line, ev.Station, ev.Kind), body)
				continue
			}
			e.publish(ev)
		}
		drain(t, tr)
		stop()
		return tr.Stats()
	}

	// Five cars above, a restart, seven more: the ninth trips, counted
	// with the five the restarted tracker read back from the record.
	var first, second []*event.Event
	for i := 1; i <= 5; i++ {
		first = append(first, car(i, 100.5))
	}
	for i := 6; i <= 12; i++ {
		second = append(second, car(i, 100.5))
	}
	if st := run(first...); st.SPCPoints != 5 || st.SPCBreaks != 0 {
		t.Fatalf("first run: %d points, %d breaks, want 5 and 0", st.SPCPoints, st.SPCBreaks)
	}
	if st := run(second...); st.SPCPoints != 7 || st.SPCBreaks != 1 {
		t.Fatalf("second run: %d points, %d breaks, want 7 and 1", st.SPCPoints, st.SPCBreaks)
	}
	if b := breaks(); len(b) != 1 || b[0] != mkVIN(t, 9) {
		t.Fatalf("breaks at %v, want one at car 9", b)
	}
	if n := count(t, e.store, `SELECT count(*) FROM holds WHERE kind = 'spc' AND closed_at IS NULL`); n != 9 {
		t.Fatalf("%d spc holds, want 9 (cars 1 to 9)", n)
	}

	// A restart: the run goes on at car 13, and car 5 is delivered again.
	if st := run(car(13, 100.5), cars[5]); st.SPCPoints != 1 || st.SPCBreaks != 0 || st.Duplicates != 1 {
		t.Fatalf("after the restart: %d points, %d breaks, %d duplicates, want 1, 0 and 1", st.SPCPoints, st.SPCBreaks, st.Duplicates)
	}
	// Below the centre line, then nine above: a second break, at car 23.
	next := []*event.Event{car(14, 99.5)}
	for i := 15; i <= 23; i++ {
		next = append(next, car(i, 100.5))
	}
	if st := run(next...); st.SPCBreaks != 1 {
		t.Fatalf("second run of nine: %d breaks, want 1", st.SPCBreaks)
	}
	if b := breaks(); len(b) != 2 || b[1] != mkVIN(t, 23) {
		t.Fatalf("breaks at %v, want cars 9 and 23", b)
	}
	rep, err := e.store.Audit(t.Context(), schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("audit: %+v", rep.Problems)
	}
}

// TestSPCOnBreakHoldIsTheLineConfigs: the rules name the hold action
// without importing the line definition; the two spellings stay one.
func TestSPCOnBreakHoldIsTheLineConfigs(t *testing.T) {
	if rules.SPCOnBreakHold != line.OnBreakHold {
		t.Fatalf("rules.SPCOnBreakHold %q, line.OnBreakHold %q", rules.SPCOnBreakHold, line.OnBreakHold)
	}
}
