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
	// The fixture spans two months, 9 events in the first and 4 in the
	// second; at the start of the month after them, keeping one month cuts
	// at the start of the second.
	first := schema.MonthStart(tracetest.Start)
	second, now := first.AddDate(0, 1, 0), first.AddDate(0, 2, 0)
	older, last := tracetest.MonthSuffix(first), tracetest.MonthSuffix(second)
	if err := s.SetRetention(t.Context(), schema.RetentionPolicy{KeepMonths: 1, AheadMonths: 3, Mode: schema.RetentionDetach}); err != nil {
		t.Fatal(err)
	}
	dry, err := s.ApplyRetention(t.Context(), now, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Months) != 1 || !dry.Months[0].Equal(first) || dry.Events != 9 || !dry.Cutoff.Equal(second) {
		t.Fatalf("dry run %+v: want the first month (%s), 9 events, cutoff %s", dry, older, second.Format(time.DateOnly))
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
		t.Errorf("car 2 keeps its record of the second month only: %+v", b.Visits)
	}
	var detached int
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM event_log_`+older).Scan(&detached); err != nil || detached != 9 {
		t.Errorf("the detached log event_log_%s holds %d rows (%v), want 9 to archive", older, detached, err)
	}

	t.Run("a late event for a removed month gets a partition again", func(t *testing.T) {
		at := first.AddDate(0, 0, 19) // the 20th of the removed month
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
		superuser(t, s, `DROP TABLE event_log_`+last)
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
