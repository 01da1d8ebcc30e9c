package schema_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/tracetest"
)

// TestTighteningsInTheRecord: each tightening is a joint of its car, once,
// with the holds it decided, in the car's trace and birth record.
func TestTighteningsInTheRecord(t *testing.T) {
	s := open(t)
	tracetest.Record(t, s)
	evs := tracetest.RecordTightenings(t, s)
	// A redelivery of every tightening derives nothing more.
	tracetest.RecordEvents(t, s, &tracetest.TorqueLine, evs...)

	tr, err := s.Trace(t.Context(), tracetest.VINs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Tightenings) != 4 {
		t.Fatalf("car 1: %d tightenings, want 4: %+v", len(tr.Tightenings), tr.Tightenings)
	}
	got := tr.Tightenings[1]
	want, _ := evs[1].Tightening()
	if got.EventID != evs[1].ID || got.Station != "C04" || got.Joint != "lug_fl_2" || got.Class != "A" || got.ToolSerial != tracetest.ToolSerial ||
		*got.TorqueNm != *want.TorqueNm || *got.TorqueMaxNm != 120 || *got.AngleTargetDeg != 45 || got.Pset != 2 || got.PsetName != "M12 wheel nut" ||
		!got.ControllerTime.Equal(want.ControllerTime) || !got.MadeAt.Equal(evs[1].OccurredAt) || got.MID != 61 {
		t.Errorf("car 1's second tightening\n got %+v\nwant %+v", got, want)
	}
	b := tr.Birth()
	if len(b.Tightenings) != 4 || b.Tightenings[0].Seq == 0 || b.Tightenings[0].Hash == "" {
		t.Errorf("birth record tightenings %+v, want 4 with their log rows", b.Tightenings)
	}

	two, err := s.Trace(t.Context(), tracetest.VINs[1])
	if err != nil {
		t.Fatal(err)
	}
	var nok *schema.HoldRecord
	for i, h := range two.Holds {
		if h.EventID == evs[4].ID {
			nok = &two.Holds[i]
		}
	}
	if nok == nil || nok.Kind != schema.HoldNOK || nok.ClosedEventID != evs[5].ID || nok.Item.Name != "lug_fl_2" {
		t.Errorf("car 2: NOK tightening hold %+v, want closed by the joint's OK tightening %s", nok, evs[5].ID)
	}
	d := two.Birth().Defects
	if len(d) == 0 || d[len(d)-1].Kind != schema.DefectTightening || d[len(d)-1].ReworkEventID != evs[5].ID {
		t.Errorf("car 2: defects %+v, want the NOK tightening redone by %s", d, evs[5].ID)
	}

	three, err := s.Trace(t.Context(), tracetest.VINs[2])
	if err != nil {
		t.Fatal(err)
	}
	last := three.Holds[len(three.Holds)-1]
	if last.Kind != schema.HoldInterlock || last.EventID != evs[6].ID || !last.ClosedAt.IsZero() {
		t.Errorf("car 3: last hold %+v, want the open interlock hold of %s", last, evs[6].ID)
	}
	if r := audit(t, s); len(r.Problems) != 0 {
		t.Fatalf("audit of an intact record with tightenings:\n%s", problems(r))
	}
}

// TestAuditNamesTamperedTightenings: the audit re-derives the tightenings
// from the log; a superuser's change to one is named.
func TestAuditNamesTamperedTightenings(t *testing.T) {
	tests := []struct {
		name string
		sql  func(evs []*event.Event) []string
		want [][3]string // check, event, a piece of the text
	}{
		{
			name: "changed torque",
			sql: func(evs []*event.Event) []string {
				return []string{fmt.Sprintf(`UPDATE tightenings SET torque_nm = 110 WHERE event_id = '%s'`, evs[4].ID)}
			},
			want: [][3]string{{schema.CheckDerived, evs0(4), "tightenings: rows differ from their event: row " + evs0(4) + " stored ("}},
		},
		{
			name: "NOK made OK",
			sql: func(evs []*event.Event) []string {
				return []string{fmt.Sprintf(`UPDATE tightenings SET result = 'OK' WHERE event_id = '%s'`, evs[4].ID)}
			},
			want: [][3]string{{schema.CheckDerived, evs0(4), "tightenings: rows differ from their event"}},
		},
		{
			name: "deleted row",
			sql: func(evs []*event.Event) []string {
				return []string{fmt.Sprintf(`DELETE FROM tightenings WHERE event_id = '%s'`, evs[0].ID)}
			},
			want: [][3]string{{schema.CheckDerived, evs0(0), "tightenings: rows missing that the event derives: " + evs0(0)}},
		},
		{
			name: "inserted row",
			sql: func(evs []*event.Event) []string {
				return []string{fmt.Sprintf(`INSERT INTO tightenings SELECT replace(event_id, '.101', '.999'), vin, station, controller, channel, 999,
					tool_vin, pset, pset_name, batch_size, batch_counter, batch_status, result, torque_status, angle_status, torque_nm, torque_min_nm,
					torque_max_nm, torque_target_nm, angle_deg, angle_min_deg, angle_max_deg, angle_target_deg, torque_unit, controller_time, clock,
					joint, class, tool_serial, mid, made_while_disabled, made_at FROM tightenings WHERE event_id = '%s'`, evs[0].ID)}
			},
			want: [][3]string{{schema.CheckDerived, "", "tightenings: rows with no event in the log that derives them"}},
		},
		{
			name: "NOK hold deleted",
			sql: func(evs []*event.Event) []string {
				return []string{fmt.Sprintf(`DELETE FROM holds WHERE opened_event_id = '%s'`, evs[4].ID)}
			},
			want: [][3]string{{schema.CheckHolds, evs0(4), "a NOK tightening that put no hold on the car (hold deleted)"}},
		},
		{
			name: "interlock hold deleted",
			sql: func(evs []*event.Event) []string {
				return []string{fmt.Sprintf(`DELETE FROM holds WHERE opened_event_id = '%s'`, evs[6].ID)}
			},
			want: [][3]string{{schema.CheckHolds, evs0(6), "a tightening made while the tool was disabled that put no hold on the car"}},
		},
		{
			name: "NOK hold closed by another joint",
			sql: func(evs []*event.Event) []string {
				return []string{fmt.Sprintf(`UPDATE holds SET closed_event_id = '%s', closed_at = opened_at WHERE opened_event_id = '%s'`, evs[3].ID, evs[6].ID)}
			},
			want: [][3]string{{schema.CheckHolds, evs0(6), "closed by " + evs0(3)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			tracetest.Record(t, s)
			evs := tracetest.RecordTightenings(t, s)
			if r := audit(t, s); len(r.Problems) != 0 {
				t.Fatalf("before: %s", problems(r))
			}
			superuser(t, s, tt.sql(evs)...)
			r := audit(t, s)
			for _, w := range tt.want {
				found := false
				for _, p := range r.Problems {
					if p.Check == w[0] && strings.HasSuffix(p.EventID, w[1]) && strings.Contains(p.String(), w[2]) {
						found = true
					}
				}
				if !found {
					t.Errorf("want a %s problem of %q saying %q; got\n%s", w[0], w[1], w[2], problems(r))
				}
			}
		})
	}
}

// evs0 is the event id RecordTightenings gives its i-th tightening.
func evs0(i int) string { return fmt.Sprintf("US1.L1.C04.tightening.C04-NR1.%d", 101+i) }

// TestTraceByTightening: the questions by tool, by controller and by pset.
func TestTraceByTightening(t *testing.T) {
	s := open(t)
	tracetest.Record(t, s)
	evs := tracetest.RecordTightenings(t, s)
	from, to := tracetest.Start.Add(-time.Hour), tracetest.Start.Add(24*time.Hour)
	ids := func(a *schema.WindowAnswer) string {
		var out []string
		for _, x := range a.Tightenings {
			out = append(out, strings.TrimPrefix(x.EventID, "US1.L1.C04.tightening.C04-NR1."))
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name      string
		q         schema.TighteningQuery
		want      string
		cars      int
		truncated bool
	}{
		{"tool", schema.TighteningQuery{Tool: tracetest.ToolSerial}, "101 102 103 104 105 106 107", 3, false},
		{"tool NOK", schema.TighteningQuery{Tool: tracetest.ToolSerial, Result: schema.ResultNOK}, "105", 1, false},
		{"controller", schema.TighteningQuery{Controller: "C04-NR1", Limit: 2}, "101 102", 1, true},
		{"pset", schema.TighteningQuery{Station: "C04", Pset: 2, Result: schema.ResultOK}, "101 102 103 104 106 107", 3, false},
		{"another pset", schema.TighteningQuery{Station: "C04", Pset: 1}, "", 0, false},
		{"another tool", schema.TighteningQuery{Tool: "NR9-0009"}, "", 0, false},
	} {
		q := tc.q
		q.From, q.To = from, to
		a, err := s.ByTightening(t.Context(), q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := ids(a); got != tc.want || len(a.Cars) != tc.cars || a.Truncated != tc.truncated {
			t.Errorf("%s: tightenings %q of %d cars (truncated %v), want %q of %d (%v)", tc.name, got, len(a.Cars), a.Truncated, tc.want, tc.cars, tc.truncated)
		}
	}
	if a, _ := s.ByTightening(t.Context(), schema.TighteningQuery{Tool: tracetest.ToolSerial, From: from, To: to}); a != nil && a.Tightenings[0].VIN != evs[0].VIN {
		t.Errorf("first tightening on %s, want %s", a.Tightenings[0].VIN, evs[0].VIN)
	}
	for _, q := range []schema.TighteningQuery{{}, {Tool: "x", Controller: "y"}, {Station: "C04"}, {Tool: "x"}} {
		if q.Tool == "x" && q.Controller == "" {
			q.From, q.To = to, from
		} else {
			q.From, q.To = from, to
		}
		if _, err := s.ByTightening(t.Context(), q); !errors.Is(err, schema.ErrBadQuestion) {
			t.Errorf("question %+v: err %v, want ErrBadQuestion", q, err)
		}
	}
}

// TestLateTighteningReleasesTheCar: a car leaves C04 before its
// tightenings reach the record (independent paths): each class A joint
// holds it, the gate blocks it, and the late tightenings close the holds
// and release it, in a record the audit finds intact.
func TestLateTighteningReleasesTheCar(t *testing.T) {
	s := open(t)
	v := tracetest.VINs[0]
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	cycle := func(station string, n int) *event.Event {
		at := start.Add(time.Duration(n) * time.Minute)
		ev, err := event.NewEvent("US1", "L1", station, event.KindCycle, v, 0, uint64(n), at, at,
			&event.Cycle{Counter: uint32(n), Result: "OK", Model: "KW", Variant: "NA", Colour: "mint", Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	tracetest.RecordEvents(t, s, &tracetest.TorqueLine, cycle("W01", 1), cycle("C04", 2))
	tracetest.RecordEvents(t, s, &tracetest.TorqueLine, cycle("Q05", 3))
	tr, err := s.Trace(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tr.Holds); n != 4 || tr.Holds[0].Kind != schema.HoldMissing || len(tr.Gate) != 1 || tr.Gate[0].Released {
		t.Fatalf("car left C04 without its tightenings: holds %+v gate %+v, want 4 missing joints and blocked", tr.Holds, tr.Gate)
	}
	var last *event.Event
	for k := 1; k <= 4; k++ {
		last = tracetest.Tightening(t, 1, uint32(k), fmt.Sprintf("lug_fl_%d", k), event.StatusOK, start.Add(90*time.Second))
		tracetest.RecordEvents(t, s, &tracetest.TorqueLine, last)
	}
	if tr, err = s.Trace(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	if tr.Status.OpenHolds != 0 || len(tr.Gate) != 2 || !tr.Gate[1].Released || tr.Gate[1].EventID != last.ID || len(tr.Tightenings) != 4 {
		t.Errorf("after the late tightenings: holds %+v gate %+v, want every hold closed and the car released by %s", tr.Holds, tr.Gate, last.ID)
	}
	if r := audit(t, s); len(r.Problems) != 0 {
		t.Fatalf("audit:\n%s", problems(r))
	}
}

// TestTighteningsBeforeTheCycle: the tightenings reach the record before
// the station's cycle, each in a batch of its own: the record's view of
// the car has them, and the cycle holds the car for none.
func TestTighteningsBeforeTheCycle(t *testing.T) {
	s := open(t)
	v := tracetest.VINs[0]
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	cycle := func(station string, n int) *event.Event {
		at := start.Add(time.Duration(n) * time.Minute)
		ev, err := event.NewEvent("US1", "L1", station, event.KindCycle, v, 0, uint64(n), at, at,
			&event.Cycle{Counter: uint32(n), Result: "OK", Model: "KW", Variant: "NA", Colour: "mint", Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	tracetest.RecordEvents(t, s, &tracetest.TorqueLine, cycle("W01", 1))
	for k := 1; k <= 4; k++ {
		result := event.StatusOK
		if k == 3 {
			result = event.StatusNOK // and no OK of it: missing
		}
		tracetest.RecordEvents(t, s, &tracetest.TorqueLine, tracetest.Tightening(t, 1, uint32(k), fmt.Sprintf("lug_fl_%d", k), result, start.Add(90*time.Second)))
	}
	tracetest.RecordEvents(t, s, &tracetest.TorqueLine, cycle("C04", 2))
	tr, err := s.Trace(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, h := range tr.Holds {
		if h.Kind == schema.HoldMissing {
			missing = append(missing, h.Item.Name)
		}
	}
	if strings.Join(missing, " ") != "lug_fl_3" {
		t.Errorf("missing-joint holds %v, want only lug_fl_3 (its one tightening NOK)", missing)
	}
	if r := audit(t, s); len(r.Problems) != 0 {
		t.Fatalf("audit:\n%s", problems(r))
	}
}
