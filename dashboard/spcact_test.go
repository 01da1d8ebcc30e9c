package dashboard_test

import (
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/spc"
)

// Rules that act (issue 17): the SPC tests run the whole simulated line
// with control limits frozen for one joint's torque, from what the plant
// builds into its first cars.
const (
	spcStation, spcJoint = "C04", "lug_fl_1"
	// spcNominal is the joint's nominal torque (LINE.md: wheel nuts M12,
	// 108 Nm): the sigma of a planted drift is simulator.JointSigma of it.
	spcNominal = 108.0
	// spcBaseline is how many cars the limits are frozen from.
	spcBaseline = 30
	// spcShift is a shift's worth of cars: 8 h at the takt of 60 s.
	spcShift = 480
)

// plantTorques is the joint's torque the plant of seed builds into cars
// 1 to n, with drift d added as the plant adds it (the undrifted value,
// moved by d.Offset sigma, rounded to the PLC's 0.01 Nm), in car order:
// the points of the characteristic, each with its car's VIN.
func plantTorques(t testing.TB, seed int64, n int, d *simulator.TorqueDrift) []spc.Point {
	t.Helper()
	var out []spc.Point
	index := 0
	err := simulator.History(seed, "", n, func(c simulator.TruthCar) error {
		index++
		for _, st := range c.Stations {
			if st.Station != spcStation {
				continue
			}
			for _, j := range st.Joints {
				if j.Name == spcJoint {
					v := math.Round((j.TorqueNm+d.Offset(index)*simulator.JointSigma*spcNominal)*100)/100 + 0
					out = append(out, spc.Point{Value: v, ID: c.VIN})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != n {
		t.Fatalf("%d cars with %s %s, want %d", len(out), spcStation, spcJoint, n)
	}
	return out
}

// firstRunOf9 is the first point (index) at which nine points in a row
// lie on one side of centre (Nelson 2), counted by hand; -1 when none.
func firstRunOf9(pts []spc.Point, centre float64) int {
	for i := range pts {
		if runLen(pts, i, centre, 1) >= 9 || runLen(pts, i, centre, -1) >= 9 {
			return i
		}
	}
	return -1
}

// runLen is how many points up to i lie on side (1 above, -1 below) of
// centre in a row.
func runLen(pts []spc.Point, i int, centre float64, side float64) int {
	n := 0
	for ; i >= 0 && side*(pts[i].Value-centre) > 0; i-- {
		n++
	}
	return n
}

// spcLine freezes I-MR limits for the joint from the first spcBaseline
// points, checked with nelson2, and returns them and the line config's
// spc section (on_break onBreak).
func spcLine(t testing.TB, pts []spc.Point, onBreak string) (spc.Limits, *line.SPC, func(testing.TB, string)) {
	t.Helper()
	cfg := spc.ChartConfig{Method: spc.MethodIMR, N: 1}
	lim, err := spc.ComputeLimits(pts[:spcBaseline], cfg)
	if err != nil {
		t.Fatal(err)
	}
	settings := &line.SPC{Characteristics: []line.SPCCharacteristic{{Kind: schema.KindTorque, Station: spcStation, Name: spcJoint,
		Rules: []string{"nelson2"}, OnBreak: onBreak}}}
	freeze := func(t testing.TB, url string) {
		web, err := schema.OpenAs(t.Context(), url, schema.RoleWeb)
		if err != nil {
			t.Fatal(err)
		}
		defer web.Close()
		now := time.Now()
		if _, err := web.FreezeLimits(t.Context(), schema.FrozenLimits{Key: schema.CharKey{Kind: schema.KindTorque, Station: spcStation, Name: spcJoint},
			Limits: lim, Rules: settings.For(schema.KindTorque, spcStation, spcJoint, "", "").RuleSet(),
			BaselineFrom: now.Add(-time.Hour), BaselineTo: now, FrozenBy: "quality engineer", FrozenAt: now, Reason: "baseline of the first 30 cars"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	return lim, settings, freeze
}

// auditClean fails t unless keiline audit verify finds the record intact.
func auditClean(t *testing.T, r *rig) {
	t.Helper()
	rep, err := r.store.Audit(t.Context(), schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("audit found %d problems, first: %+v", len(rep.Problems), rep.Problems[0])
	}
}

// TestSPCDriftTripsRuleAndHolds is issue 17's acceptance of rules that
// act: limits frozen from the plant's first 30 cars, then a planted step
// of +2 sigma in the torque of one wheel nut from car 31 on. Nelson 2
// (nine points on one side of the centre line) trips at the ninth point
// of the first run the drift makes — the point computed here from the
// plant's values — and at no other point; the break is in the record (the
// tracker's spc event in the hash chain, the station's alarm), on the
// dashboard's station status, and, with on_break hold, the cars of the
// nine points (made since the last good point) are held; the audit
// re-derives all of it.
func TestSPCDriftTripsRuleAndHolds(t *testing.T) {
	const seed, cars, from = 5, 60, spcBaseline + 1
	drift := &simulator.TorqueDrift{Station: spcStation, Joint: spcJoint, FromCar: from, Step: 2}
	pts := plantTorques(t, seed, cars, drift)
	lim, settings, freeze := spcLine(t, pts, line.OnBreakHold)
	trip := firstRunOf9(pts, lim.Location.Centre)
	if trip < from-1 || trip >= cars {
		t.Fatalf("seed %d: the first run of nine is at point %d, want one the drift from car %d makes", seed, trip, from)
	}
	held := make([]string, 0, 9)
	for _, p := range pts[trip-8 : trip+1] {
		held = append(held, p.ID)
	}
	t.Logf("nelson2 trips at point %d (car %s), the run from %s; limits %.2f ± %.2f", trip, pts[trip].ID, held[0], lim.Location.Centre, 3*lim.Sigma)

	r := newRig(t, rigOptions{speed: 400, cars: cars, seed: seed, drift: drift, spc: settings, freeze: freeze})
	r.waitDone(t, 5*time.Minute)
	ctx, db := t.Context(), r.store.Pool()

	// The record: one spc event, made by keiline, for the computed point.
	var id, vin, station, rule, pointVIN, onBreak string
	var hold []string
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) OVER (), event_id, vin, station, p->'data'->>'rule', p->'data'->>'point_vin', p->'data'->>'on_break',
			ARRAY(SELECT jsonb_array_elements_text(p->'data'->'hold'))
		FROM event_log CROSS JOIN LATERAL (SELECT payload_jsonb(payload) AS p) j WHERE kind = 'spc'`).Scan(&n, &id, &vin, &station, &rule, &pointVIN, &onBreak, &hold); err != nil {
		t.Fatalf("no spc event in the log: %v", err)
	}
	if n != 1 || station != spcStation || rule != "nelson2" || vin != pts[trip].ID || pointVIN != pts[trip].ID || onBreak != line.OnBreakHold {
		t.Fatalf("spc events %d: %s at %s rule %s point %s (vin %s) on_break %s; want 1 at %s nelson2 point %d = %s",
			n, id, station, rule, pointVIN, vin, onBreak, spcStation, trip, pts[trip].ID)
	}
	if !slices.Equal(hold, held) {
		t.Fatalf("break holds %v, want the cars of the run %v", hold, held)
	}
	// The station's alarm row and its current alarm.
	var code, text string
	if err := db.QueryRow(ctx, `SELECT code, text FROM alarms WHERE event_id = $1 AND station = $2 AND active`, id, spcStation).Scan(&code, &text); err != nil {
		t.Fatalf("no alarm row of %s: %v", id, err)
	}
	if code != "spc" || !strings.Contains(text, "nelson2") || !strings.Contains(text, spcJoint) || !strings.Contains(text, pts[trip].ID) {
		t.Fatalf("alarm %s: %q", code, text)
	}
	// The holds: one spc hold on each car of the run, open unless the
	// car was reworked since (the drift made some of its wheel nuts NOK,
	// and the rework bay's OK cycle closes its NOK and SPC holds).
	rows, err := db.Query(ctx, `SELECT h.vin, coalesce(c.station, ''), coalesce(c.kind, ''), h.closed_at IS NULL
		FROM holds h LEFT JOIN event_log c ON c.event_id = h.closed_event_id
		WHERE h.kind = 'spc' AND h.opened_event_id = $1 AND h.station = $2`, id, spcStation)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	open := 0
	for rows.Next() {
		var v, closedAt, closedBy string
		var isOpen bool
		if err := rows.Scan(&v, &closedAt, &closedBy, &isOpen); err != nil {
			t.Fatal(err)
		}
		if isOpen {
			open++
		} else if closedAt != "R01" || closedBy != "cycle" {
			t.Fatalf("spc hold of %s closed by a %s event at %q, want the rework bay's cycle", v, closedBy, closedAt)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := slices.Clone(held)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("spc holds on %v, want %v", got, want)
	}
	if open == 0 {
		t.Fatal("every spc hold closed: the rework bay closed holds of cars it never reworked")
	}
	// The dashboard: the station's alarm on the live line.
	var lv dashboard.LineView
	r.getJSON(t, "/api/v1/line", http.StatusOK, &lv)
	i := slices.IndexFunc(lv.Stations, func(s dashboard.StationView) bool { return s.ID == spcStation })
	if i < 0 || lv.Stations[i].Alarm == nil || lv.Stations[i].Alarm.Code != "spc" || lv.Stations[i].Alarm.Text != text {
		t.Fatalf("dashboard station %s alarm: %+v", spcStation, lv.Stations)
	}
	if st := r.tracker.Stats(); st.SPCBreaks != 1 || st.SPCPoints != cars {
		t.Fatalf("tracker checked %d points and recorded %d breaks, want %d and 1", st.SPCPoints, st.SPCBreaks, cars)
	}
	auditClean(t, r)

	// The audit re-derives the break's rows: a hold deleted, or an alarm
	// rewritten, out of band is found.
	if _, err := db.Exec(ctx, `DELETE FROM holds WHERE kind = 'spc' AND vin = $1`, held[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `UPDATE alarms SET text = 'nothing to see' WHERE event_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	rep, err := r.store.Audit(ctx, schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, p := range rep.Problems {
		if p.EventID == id {
			found = append(found, p.Table+": "+p.What)
		}
	}
	if len(found) != 2 || !strings.Contains(strings.Join(found, "\n"), "no hold on car "+held[0]) {
		t.Fatalf("audit after tampering with the break's rows: %v (all: %+v)", found, rep.Problems)
	}
}

// TestSPCStableShiftRaisesNone: the same joint, no drift, a shift's worth
// of cars (480): the tracker checks every value against the frozen limits
// and raises no alarm and no hold, as the plant's values (computed here)
// show none of nine in a row on one side.
func TestSPCStableShiftRaisesNone(t *testing.T) {
	const seed = 5
	pts := plantTorques(t, seed, spcShift, nil)
	lim, settings, freeze := spcLine(t, pts, line.OnBreakHold)
	if i := firstRunOf9(pts, lim.Location.Centre); i >= 0 {
		t.Fatalf("seed %d: the stable plant has nine in a row at point %d", seed, i)
	}
	r := newRig(t, rigOptions{speed: 1000, cars: spcShift, seed: seed, spc: settings, freeze: freeze})
	r.waitDone(t, 15*time.Minute)
	var spcs, alarms, holds int
	if err := r.store.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM event_log WHERE kind = 'spc'),
		(SELECT count(*) FROM alarms WHERE code = 'spc'), (SELECT count(*) FROM holds WHERE kind = 'spc')`).Scan(&spcs, &alarms, &holds); err != nil {
		t.Fatal(err)
	}
	if spcs+alarms+holds != 0 {
		t.Fatalf("a stable shift raised %d spc events, %d alarms, %d holds", spcs, alarms, holds)
	}
	if st := r.tracker.Stats(); st.SPCPoints != spcShift || st.SPCBreaks != 0 {
		t.Fatalf("tracker checked %d points and recorded %d breaks, want %d and 0", st.SPCPoints, st.SPCBreaks, spcShift)
	}
	auditClean(t, r)
}
