package pipeline_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// withData returns ev with its cycle changed by fn (and the same id).
func withData(t *testing.T, ev *event.Event, fn func(c *event.Cycle)) *event.Event {
	t.Helper()
	c, err := ev.Cycle()
	if err != nil {
		t.Fatal(err)
	}
	fn(c)
	if ev.Data, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	return ev
}

func auditProblems(t *testing.T, store *schema.Store) []string {
	t.Helper()
	r, err := store.Audit(t.Context(), schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.String())
	}
	return out
}

// TestTrackerUnknownValueHoldsTheCar: a torque and a test value the agent
// could not read are recorded unknown — no 0, no OK — and hold the car,
// one hold per item naming the station, the item, the tag, the node and
// the PLC's status; the gate blocks it; the rework that supplies the
// torque closes only the torque's hold. The audit agrees, and names a
// forged close of the other.
func TestTrackerUnknownValueHoldsTheCar(t *testing.T) {
	e := newEnv(t)
	gated := route
	gated.Gate = "Q05"
	car := mkVIN(t, 40)
	unread := event.Joint{Joint: "J2", Tool: "T1", AngleDeg: new(41.0)} // the agent leaves the verdict unknown too
	c01 := withData(t, cycleEvent(t, "C01", car, 1, t0.Add(2*time.Minute), "OK", unread), func(c *event.Cycle) {
		c.Tests = append(c.Tests, event.Test{Name: "leak", Unit: "ccm", Low: new(0.0), High: new(1.0)})
		c.Bad = []event.BadValue{
			{Tag: "Joint1.TorqueNm", NodeID: "ns=2;s=C01.Joint1.TorqueNm", Reason: "bad quality: StatusBadSensorFailure (0x808B0000)"},
			{Tag: "Test2.Value", NodeID: "ns=2;s=C01.Test2.Value", Reason: "wrong type: String, want number"},
		}
	})
	gate := cycleEvent(t, "Q05", car, 1, t0.Add(4*time.Minute), "OK")
	e.publish(
		cycleEvent(t, "W01", car, 1, t0, "OK"),
		cycleEvent(t, "W02", car, 1, t0.Add(time.Minute), "OK"),
		c01, gate)
	tr, stop := e.runWith(pipeline.TrackerConfig{Route: gated, BatchSize: 2})
	defer stop()
	drain(t, tr)

	if n := count(t, e.store, `SELECT count(*) FROM joints WHERE vin = $1 AND joint = 'J2' AND torque_nm IS NULL AND ok IS NULL AND angle_deg = 41`, car); n != 1 {
		t.Errorf("%d J2 rows with torque and verdict unknown (NULL), want 1", n)
	}
	if n := count(t, e.store, `SELECT count(*) FROM joints WHERE vin = $1 AND joint = 'J2' AND (torque_nm = 0 OR ok)`, car); n != 0 {
		t.Errorf("%d J2 rows recorded 0 or OK for a torque that was never read", n)
	}
	if n := count(t, e.store, `SELECT count(*) FROM test_results WHERE vin = $1 AND name = 'leak' AND value IS NULL AND ok IS NULL`, car); n != 1 {
		t.Errorf("%d leak rows with value and verdict unknown, want 1", n)
	}
	c, err := e.store.Trace(t.Context(), car)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Birth()
	wantHolds := []string{
		"unknown at C01: joint J2 (slot 1): torque, verdict unknown; tag Joint1.TorqueNm (node ns=2;s=C01.Joint1.TorqueNm): bad quality: StatusBadSensorFailure (0x808B0000)",
		"unknown at C01: test leak (slot 2): value, verdict unknown; tag Test2.Value (node ns=2;s=C01.Test2.Value): wrong type: String, want number",
	}
	if len(b.Holds) != 2 || b.Holds[0].Reason != wantHolds[0] || b.Holds[1].Reason != wantHolds[1] || b.Holds[0].Kind != schema.HoldUnknown || b.Holds[0].ClosedAt != nil {
		t.Fatalf("holds %+v, want the two unknown items open:\n%s", b.Holds, strings.Join(wantHolds, "\n"))
	}
	if b.Where != schema.WhereOnHold || b.Released || len(b.Gate) != 1 || b.Gate[0].OpenHolds != 2 {
		t.Errorf("car %q released %v gate %+v, want on hold, blocked by 2", b.Where, b.Released, b.Gate)
	}
	if j := b.Visits[2].Joints[0]; j.TorqueNm != nil || j.OK != nil || event.Verdict(j.OK) != "unknown" {
		t.Errorf("birth record joint %+v, want torque and verdict unknown", j)
	}

	// The rework supplies the torque: its hold closes, the leak's stays.
	rework := cycleEvent(t, "R01", car, 1, t0.Add(5*time.Minute), "OK", event.Joint{Joint: "J2", Tool: "R01-T1", TorqueNm: new(54.9), AngleDeg: new(42.0), OK: new(true)})
	e.publish(rework)
	drain(t, tr)
	c, err = e.store.Trace(t.Context(), car)
	if err != nil {
		t.Fatal(err)
	}
	b = c.Birth()
	if b.Holds[0].ClosedEventID != rework.ID || b.Holds[1].ClosedAt != nil || b.Where != schema.WhereOnHold || len(b.Gate) != 1 {
		t.Errorf("after the rework: holds %+v gate %+v, want J2's closed by %s, the leak's open, still blocked", b.Holds, b.Gate, rework.ID)
	}
	if ps := auditProblems(t, e.store); len(ps) != 0 {
		t.Fatalf("audit of the tracker's record: %v", ps)
	}
	// A forged close of the leak's hold by the rework, which never
	// measured it.
	if _, err := e.store.Pool().Exec(t.Context(), `UPDATE holds SET closed_event_id = $1, closed_at = $2 WHERE vin = $3 AND item_name = 'leak'`,
		rework.ID, rework.OccurredAt, car); err != nil {
		t.Fatal(err)
	}
	ps := auditProblems(t, e.store)
	if len(ps) != 1 || !strings.Contains(ps[0], "closed by "+rework.ID+", which does not report test leak with a known value") {
		t.Errorf("audit after a forged close: %v, want it named", ps)
	}
}

// TestTrackerBodyNumbers: under the default identity policy, cycles that
// give only a body number wait in the event log (counted pending) until a
// station pairs the body number with a VIN; then they are filed under the
// VIN by the same rules, and the pair is recorded once.
func TestTrackerBodyNumbers(t *testing.T) {
	e := newEnv(t)
	car := mkVIN(t, 41)
	body := func(ev *event.Event, b string) *event.Event { ev.Body = b; return ev }
	e.publish(
		body(cycleEvent(t, "W01", "", 1, t0, "OK"), "B-41"),
		body(cycleEvent(t, "W02", "", 1, t0.Add(time.Minute), "OK"), "B-41"),
	)
	tr, stop := e.run()
	defer stop()
	drain(t, tr)
	counts, err := e.store.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if counts.Pending != 2 || counts.Vehicles != 0 || counts.Events != 2 || tr.Stats().Pending != 2 {
		t.Fatalf("counts %+v, stats %+v: want the 2 cycles logged and pending, no car", counts, tr.Stats())
	}
	pair := body(cycleEvent(t, "C01", car, 1, t0.Add(2*time.Minute), "OK"), "B-41")
	e.publish(pair, body(cycleEvent(t, "Q05", "", 1, t0.Add(3*time.Minute), "OK"), "B-41"))
	drain(t, tr)
	if counts, err = e.store.Counts(t.Context()); err != nil || counts.Pending != 0 || counts.Vehicles != 1 || counts.Visits != 4 {
		t.Fatalf("counts %+v (%v): want nothing pending, one car with 4 visits", counts, err)
	}
	c, err := e.store.Trace(t.Context(), car)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range c.Visits {
		got = append(got, v.Station)
	}
	if strings.Join(got, " ") != "W01 W02 C01 Q05" || len(c.Holds) != 0 {
		t.Errorf("visits %v holds %+v, want W01 W02 C01 Q05 and no hold", got, c.Holds)
	}
	for _, v := range c.Birth().Visits {
		if v.Seq == 0 || v.Hash == "" {
			t.Errorf("birth record visit %s at %s has no place in the log", v.EventID, v.Station)
		}
	}
	if n := count(t, e.store, `SELECT count(*) FROM car_ids WHERE body = 'B-41' AND vin = $1 AND event_id = $2`, car, pair.ID); n != 1 {
		t.Errorf("car_ids has %d rows of the pair, want 1", n)
	}
	if ps := auditProblems(t, e.store); len(ps) != 0 {
		t.Fatalf("audit: %v", ps)
	}
	// A pending cycle filed under a car its body number was never
	// paired with.
	other := mkVIN(t, 42)
	if _, err := e.store.Pool().Exec(t.Context(), `UPDATE pending_cycles SET vin = $1 WHERE station = 'W01'`, other); err != nil {
		t.Fatal(err)
	}
	ps := auditProblems(t, e.store)
	if len(ps) == 0 || !strings.Contains(strings.Join(ps, "\n"), "filed under "+other+", which its body number B-41 was not paired with") {
		t.Errorf("audit after a pending cycle was refiled: %v", ps)
	}
}

// TestTrackerAlarms: an agent's alarm is recorded, becomes the station's
// current alarm in the record and the tracker's live state, and clears.
func TestTrackerAlarms(t *testing.T) {
	e := newEnv(t)
	raised, err := event.NewEvent("US1", "L1", "C01", event.KindAlarm, "", 0, 1000, t0, t0,
		&event.Alarm{Counter: 1000, Active: true, Code: event.AlarmRefused, Text: "refused cycle 17: invalid VIN 7KLKW1NA0VU000017: check digit", Cycle: 17})
	if err != nil {
		t.Fatal(err)
	}
	e.publish(raised)
	tr, stop := e.run()
	defer stop()
	drain(t, tr)
	live := map[string]pipeline.StationLive{}
	for _, l := range tr.Live() {
		live[l.Station] = l
	}
	if l := live["C01"]; l.AlarmCode != event.AlarmRefused || !strings.Contains(l.AlarmText, "refused cycle 17") || tr.Stats().Alarms != 1 {
		t.Errorf("live C01 %+v stats %+v, want the refused alarm counted", l, tr.Stats())
	}
	ss, err := e.store.StationStatuses(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Alarm.Code != event.AlarmRefused || ss[0].Alarm.Cycle != 17 {
		t.Fatalf("station status %+v, want C01's alarm", ss)
	}
	cleared, _ := event.NewEvent("US1", "L1", "C01", event.KindAlarm, "", 0, 1500, t0.Add(time.Second), t0.Add(time.Second),
		&event.Alarm{Counter: 1500, Code: event.AlarmRefused})
	e.publish(cleared)
	drain(t, tr)
	if ss, err = e.store.StationStatuses(t.Context()); err != nil || ss[0].Alarm.Code != "" {
		t.Errorf("station status %+v (%v), want the alarm cleared", ss, err)
	}
	for _, l := range tr.Live() {
		if l.Station == "C01" && l.AlarmCode != "" {
			t.Errorf("live C01 %+v, want the alarm cleared", l)
		}
	}
	if n := count(t, e.store, `SELECT count(*) FROM alarms WHERE station = 'C01'`); n != 2 {
		t.Errorf("%d alarm rows, want 2", n)
	}
	if ps := auditProblems(t, e.store); len(ps) != 0 {
		t.Fatalf("audit: %v", ps)
	}
}
