package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// TestTrackerQualityGate sends to the quality gate a car with a NOK left
// unrepaired, one repaired at the rework bay and one clean: the gate blocks
// the first, naming the hold, and releases the others. The record the
// tracker wrote then passes the audit, whose independent derivation from
// the event log must agree with the tracker's.
func TestTrackerQualityGate(t *testing.T) {
	e := newEnv(t)
	gated := route
	gated.Gate = "Q05"
	ok := event.Joint{Joint: "J1", Tool: "T1", TorqueNm: new(55.1), AngleDeg: new(40.0), OK: new(true)}
	nok := event.Joint{Joint: "J2", Tool: "T1", TorqueNm: new(70.3), AngleDeg: new(41.0), OK: new(false)}
	fixed := event.Joint{Joint: "J2", Tool: "R01-T1", TorqueNm: new(54.9), AngleDeg: new(42.0), OK: new(true)}
	held, reworked, clean := mkVIN(t, 20), mkVIN(t, 21), mkVIN(t, 22)
	e.publish(
		cycleEvent(t, "W01", held, 1, t0, "OK"),
		cycleEvent(t, "W02", held, 1, t0.Add(time.Minute), "OK"),
		cycleEvent(t, "C01", held, 1, t0.Add(2*time.Minute), "NOK", ok, nok),
		cycleEvent(t, "Q05", held, 1, t0.Add(3*time.Minute), "OK"), // rework skipped: blocked
		cycleEvent(t, "W01", reworked, 2, t0.Add(time.Minute), "OK"),
		cycleEvent(t, "W02", reworked, 2, t0.Add(2*time.Minute), "OK"),
		cycleEvent(t, "C01", reworked, 2, t0.Add(3*time.Minute), "NOK", ok, nok),
		cycleEvent(t, "R01", reworked, 1, t0.Add(4*time.Minute), "OK", fixed),
		cycleEvent(t, "Q05", reworked, 2, t0.Add(5*time.Minute), "OK"),
		cycleEvent(t, "W01", clean, 3, t0.Add(2*time.Minute), "OK"),
		cycleEvent(t, "W02", clean, 3, t0.Add(3*time.Minute), "OK"),
		cycleEvent(t, "C01", clean, 3, t0.Add(4*time.Minute), "OK", ok),
		cycleEvent(t, "Q05", clean, 3, t0.Add(5*time.Minute), "OK"),
	)
	tr, stop := e.runWith(pipeline.TrackerConfig{Route: gated, BatchSize: 4})
	drain(t, tr)
	stop()

	c, err := e.store.Trace(t.Context(), held)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Gate) != 1 {
		t.Fatalf("gate decisions on %s: %+v, want one", held, c.Gate)
	}
	if g := c.Gate[0]; g.Released || g.OpenHolds != 1 || g.EventID != "US1.L1.Q05.cycle.1" ||
		g.Reason != "nok hold from C01 (US1.L1.C01.cycle.1): NOK at C01: joint J2 70.30 Nm 41.0°" {
		t.Errorf("decision %+v, want blocked by the C01 hold", g)
	}
	if s := c.Birth(); s.Where != schema.WhereOnHold || s.Released {
		t.Errorf("blocked car is %q, released %v", s.Where, s.Released)
	}
	for _, vin := range []string{reworked, clean} {
		c, err := e.store.Trace(t.Context(), vin)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Gate) != 1 || !c.Gate[0].Released {
			t.Errorf("gate decisions on %s: %+v, want one release", vin, c.Gate)
		}
		if b := c.Birth(); vin == reworked && (len(b.Defects) != 1 || b.Defects[0].ReworkEventID != "US1.L1.R01.cycle.1" || b.Defects[0].ReworkDetail != "tool R01-T1 54.90 Nm 42.0°") {
			t.Errorf("defects %+v, want J2 reworked at R01", b.Defects)
		}
	}
	r, err := e.store.Audit(t.Context(), schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Problems {
		t.Errorf("audit of the tracker's record: %s", p)
	}
}

// TestTrackerReleasesAfterLateRework: the rework bay's event reaches the
// tracker after the gate's (agents poll independently), so the gate blocks
// the car on a hold the rework had already closed in the plant. When the
// rework event arrives the car is released by it: the block stays, a
// release follows it, the birth record says released, and the audit agrees
// — and names a forged release of a car the gate never blocked.
func TestTrackerReleasesAfterLateRework(t *testing.T) {
	e := newEnv(t)
	gated := route
	gated.Gate = "Q05"
	ok := event.Joint{Joint: "J1", Tool: "T1", TorqueNm: new(55.1), AngleDeg: new(40.0), OK: new(true)}
	nok := event.Joint{Joint: "J2", Tool: "T1", TorqueNm: new(70.3), AngleDeg: new(41.0), OK: new(false)}
	fixed := event.Joint{Joint: "J2", Tool: "R01-T1", TorqueNm: new(54.9), AngleDeg: new(42.0), OK: new(true)}
	car, clean := mkVIN(t, 30), mkVIN(t, 31)
	e.publish(
		cycleEvent(t, "W01", car, 1, t0, "OK"),
		cycleEvent(t, "W02", car, 1, t0.Add(time.Minute), "OK"),
		cycleEvent(t, "C01", car, 1, t0.Add(2*time.Minute), "NOK", ok, nok),
		cycleEvent(t, "Q05", car, 1, t0.Add(4*time.Minute), "OK"),        // consumed first
		cycleEvent(t, "R01", car, 1, t0.Add(3*time.Minute), "OK", fixed), // happened first
		cycleEvent(t, "W01", clean, 2, t0.Add(time.Minute), "OK"),
		cycleEvent(t, "W02", clean, 2, t0.Add(2*time.Minute), "OK"),
		cycleEvent(t, "C01", clean, 2, t0.Add(3*time.Minute), "OK", ok),
		cycleEvent(t, "Q05", clean, 2, t0.Add(4*time.Minute), "OK"),
	)
	tr, stop := e.runWith(pipeline.TrackerConfig{Route: gated, BatchSize: 1})
	drain(t, tr)
	stop()

	c, err := e.store.Trace(t.Context(), car)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Gate) != 2 {
		t.Fatalf("gate decisions %+v, want the block and a release", c.Gate)
	}
	block, release := c.Gate[0], c.Gate[1]
	if block.Released || block.Kind != schema.GateKindGate || block.EventID != "US1.L1.Q05.cycle.1" {
		t.Errorf("first decision %+v, want the gate's block", block)
	}
	if !release.Released || release.Kind != schema.GateKindRelease || release.EventID != "US1.L1.R01.cycle.1" ||
		release.Station != "Q05" || !release.DecidedAt.Equal(block.DecidedAt) {
		t.Errorf("second decision %+v, want a release by the rework event, dated at the block", release)
	}
	if b := c.Birth(); !b.Released || b.Where == schema.WhereOnHold {
		t.Errorf("reworked car: released %v, where %q", b.Released, b.Where)
	}
	audit := func() []string {
		r, err := e.store.Audit(t.Context(), schema.AuditOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range r.Problems {
			out = append(out, p.String())
		}
		return out
	}
	if ps := audit(); len(ps) != 0 {
		t.Fatalf("audit of the tracker's record: %v", ps)
	}
	// A forged release of the clean car, which the gate released itself.
	if _, err := e.store.Pool().Exec(t.Context(), `INSERT INTO gate_decisions (event_id, vin, station, released, open_holds, reason, decided_at, kind)
		VALUES ('US1.L1.C01.cycle.2', $1, 'Q05', true, 0, 'forged', $2, 'release')`, clean, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	ps := audit()
	if len(ps) != 1 || !strings.Contains(ps[0], "a release without an earlier block of the car") || !strings.Contains(ps[0], "US1.L1.C01.cycle.2") {
		t.Errorf("audit after a forged release: %v, want it named", ps)
	}
}
