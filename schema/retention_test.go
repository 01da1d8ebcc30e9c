package schema_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/tracetest"
)

func TestRetention(t *testing.T) {
	s := open(t)
	ids := tracetest.Record(t, s)
	now := time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)
	if err := s.SetRetention(t.Context(), schema.RetentionPolicy{KeepMonths: 1, AheadMonths: 3, Mode: schema.RetentionDetach}); err != nil {
		t.Fatal(err)
	}
	dry, err := s.ApplyRetention(t.Context(), now, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Months) != 1 || dry.Events != 9 || !dry.Cutoff.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("dry run %+v: want October 2026, 9 events, cutoff 2026-11-01", dry)
	}
	if n, _, _ := s.VerifyChain(t.Context()); n != 13 {
		t.Fatalf("the dry run removed rows: %d left", n)
	}
	res, err := s.ApplyRetention(t.Context(), now, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Months) != 1 || res.Events != 9 {
		t.Fatalf("retention %+v", res)
	}
	if r := audit(t, s); len(r.Problems) != 0 || r.Rows != 5 { // 4 kept and the retention event
		t.Fatalf("after retention: %d rows, problems:\n%s", r.Rows, problems(r))
	}
	tr, err := s.Trace(t.Context(), tracetest.VINs[1])
	if err != nil {
		t.Fatal(err)
	}
	if b := tr.Birth(); len(b.Visits) != 2 || b.Visits[0].Station != "Q05" || !b.Released {
		t.Errorf("car 2 keeps its November record only: %+v", b.Visits)
	}
	var detached int
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM event_log_2026_10`).Scan(&detached); err != nil || detached != 9 {
		t.Errorf("the detached October log holds %d rows (%v), want 9 to archive", detached, err)
	}

	t.Run("a late event for a removed month gets a partition again", func(t *testing.T) {
		at := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
		ev, err := event.NewEvent("US1", "L1", "W01", event.KindCycle, "", 0, uint64(99), at, at, &event.Cycle{Counter: 99})
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(ev)
		appendEvents(t, s, []schema.EventRow{{ID: ev.ID, Kind: ev.Kind, Plant: ev.Plant, Line: ev.Line, Station: ev.Station,
			OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt, Payload: payload}})
		if r := audit(t, s); len(r.Problems) != 0 {
			t.Fatalf("problems:\n%s", problems(r))
		}
	})
	t.Run("a month dropped out of band is named", func(t *testing.T) {
		superuser(t, s, `DROP TABLE event_log_2026_11`)
		r := audit(t, s)
		found := false
		for _, p := range r.Problems {
			found = found || p.Check == schema.CheckChain && strings.Contains(p.What, "are missing (deleted)") || strings.Contains(p.What, "chain head")
		}
		if !found {
			t.Errorf("problems:\n%s", problems(r))
		}
	})
	_ = ids
}

func TestRetentionPolicyIsValidated(t *testing.T) {
	s := open(t)
	p, err := s.Retention(t.Context())
	if err != nil || p != (schema.RetentionPolicy{KeepMonths: schema.KeepMonthsDefault, AheadMonths: schema.AheadMonthsDefault, Mode: schema.RetentionDetach}) {
		t.Fatalf("default policy %+v %v", p, err)
	}
	for _, bad := range []schema.RetentionPolicy{{KeepMonths: 0, AheadMonths: 3, Mode: "drop"}, {KeepMonths: 12, AheadMonths: 0, Mode: "drop"}, {KeepMonths: 12, AheadMonths: 3, Mode: "shred"}} {
		if err := s.SetRetention(t.Context(), bad); !errors.Is(err, schema.ErrBadPolicy) {
			t.Errorf("SetRetention(%+v) = %v, want ErrBadPolicy", bad, err)
		}
	}
}
