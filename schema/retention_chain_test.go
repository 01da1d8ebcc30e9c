package schema_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/tracetest"
)

// recordStates records one state change of C04 at each of ats, counters
// from 1, each in its own transaction through the record's rules.
func recordStates(t *testing.T, s *schema.Store, ats ...time.Time) {
	t.Helper()
	for i, at := range ats {
		st := &event.State{Counter: uint64(i + 1), State: "running"}
		ev, err := event.NewEvent("US1", "L1", "C04", event.KindState, "", 0, st.Counter, at, at, st)
		if err != nil {
			t.Fatal(err)
		}
		tracetest.RecordEvents(t, s, &tracetest.Line, ev)
	}
}

// TestRetentionIsChained: each month retention removes appends a
// retention event to the hash chain listing every removed run so far; a
// genuine removal audits clean, and a gap row a superuser adds to
// chain_gaps to hide deleted rows is named, as is one deleted from it.
func TestRetentionIsChained(t *testing.T) {
	s := open(t)
	now := time.Now()
	m4, m3 := schema.MonthStart(now).AddDate(0, -4, 0), schema.MonthStart(now).AddDate(0, -3, 0)
	cur := schema.MonthStart(now)
	recordStates(t, s, m4.Add(time.Hour), m4.Add(2*time.Hour), m3.Add(time.Hour), cur, cur.Add(time.Millisecond))
	if err := s.SetRetention(t.Context(), schema.RetentionPolicy{KeepMonths: 2, AheadMonths: 1, Mode: schema.RetentionDrop}); err != nil {
		t.Fatal(err)
	}
	res, err := s.ApplyRetention(t.Context(), now, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Months) != 2 || res.Events != 3 {
		t.Fatalf("retention %+v: want 2 months, 3 events", res)
	}
	r := audit(t, s)
	if len(r.Problems) != 0 || r.Rows != 4 {
		t.Fatalf("after a genuine retention: %d rows (want 2 states and 2 retention events), problems:\n%s", r.Rows, problems(r))
	}
	var payload []byte
	if err := s.Pool().QueryRow(t.Context(), `SELECT payload FROM event_log WHERE seq = 7`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	ev, err := event.Decode(payload)
	if err == nil || !strings.Contains(err.Error(), "keiline's own") {
		t.Errorf("the retention event decodes as a station's: %v", err)
	}
	if !strings.Contains(string(payload), `"kind":"retention"`) || !strings.Contains(string(payload), `"first_seq":1,"last_seq":2`) ||
		!strings.Contains(string(payload), `"first_seq":3,"last_seq":3`) {
		t.Errorf("the latest retention event does not list both months' runs: %s (%v)", payload, ev)
	}

	t.Run("a month removed again has a retention event of its own", func(t *testing.T) {
		at := m4.Add(3 * time.Hour) // a late event gives the removed month a partition again
		st := &event.State{Counter: 99, State: "running"}
		ev, err := event.NewEvent("US1", "L1", "C04", event.KindState, "", 0, st.Counter, at, at, st)
		if err != nil {
			t.Fatal(err)
		}
		tracetest.RecordEvents(t, s, &tracetest.Line, ev)
		res, err := s.ApplyRetention(t.Context(), now, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Months) == 0 || !res.Months[0].Equal(m4) || res.Events != 1 {
			t.Fatalf("retention %+v: want %s again, with the late event", res, m4.Format("2006-01"))
		}
		// Each month removed again (the late event's, and those made ahead
		// of it) appends a retention event.
		if r := audit(t, s); len(r.Problems) != 0 || r.Rows != int64(4+len(res.Months)) {
			t.Fatalf("after removing a month again: %d rows (want 2 states and %d retention events), problems:\n%s", r.Rows, 2+len(res.Months), problems(r))
		}
	})
	t.Run("a forged gap row is caught", func(t *testing.T) {
		// Seq 4 is the current month's first state: delete it and
		// everything derived from it, and cover the hole with a gap row
		// that links on to its hash, as a superuser would.
		superuser(t, s,
			`DELETE FROM station_states WHERE event_id IN (SELECT event_id FROM event_ids WHERE seq = 4)`,
			`INSERT INTO chain_gaps (first_seq, last_seq, last_hash, rows, partition) SELECT 4, 4, hash, 1, 'event_log_x' FROM event_log WHERE seq = 4`,
			`DELETE FROM event_log WHERE seq = 4`,
			`DELETE FROM event_ids WHERE seq = 4`)
		r := audit(t, s)
		if len(r.Problems) != 1 || r.Problems[0].Check != schema.CheckChain || r.Problems[0].Seq != 4 || r.Problems[0].Table != "chain_gaps" ||
			!strings.Contains(r.Problems[0].What, "does not list that run") {
			t.Fatalf("want the forged gap at seq 4 named, problems:\n%s", problems(r))
		}
		if _, p, err := s.VerifyChain(t.Context()); err != nil || p == nil || p.Seq != 4 {
			t.Errorf("VerifyChain: %v, %v: want the forged gap at seq 4", p, err)
		}
	})
	t.Run("a gap row deleted is caught", func(t *testing.T) {
		superuser(t, s, `DELETE FROM chain_gaps WHERE first_seq = 3`)
		r := audit(t, s)
		found := false
		for _, p := range r.Problems {
			found = found || p.Table == "chain_gaps" && strings.Contains(p.What, fmt.Sprintf("lists rows %d..%d as removed, but chain_gaps lacks", 3, 3))
		}
		if !found {
			t.Errorf("want the deleted gap named, problems:\n%s", problems(r))
		}
	})
}

// TestGapsWithoutARetentionEventAreNamed: chain_gaps rows with no
// retention event in the log (a gap made out of band on a record that
// never removed history) are named.
func TestGapsWithoutARetentionEventAreNamed(t *testing.T) {
	s := open(t)
	cur := schema.MonthStart(time.Now())
	recordStates(t, s, cur, cur.Add(time.Millisecond), cur.Add(2*time.Millisecond))
	superuser(t, s,
		`DELETE FROM station_states WHERE event_id IN (SELECT event_id FROM event_ids WHERE seq = 2)`,
		`INSERT INTO chain_gaps (first_seq, last_seq, last_hash, rows, partition) SELECT 2, 2, hash, 1, 'event_log_x' FROM event_log WHERE seq = 2`,
		`DELETE FROM event_log WHERE seq = 2`,
		`DELETE FROM event_ids WHERE seq = 2`)
	r := audit(t, s)
	if len(r.Problems) != 1 || r.Problems[0].Seq != 2 || !strings.Contains(r.Problems[0].What, "no retention event") {
		t.Fatalf("want the gap at seq 2 named, problems:\n%s", problems(r))
	}
}
