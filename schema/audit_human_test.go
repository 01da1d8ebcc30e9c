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

// humanIDs are the event ids of recordHumans' decisions.
type humanIDs struct {
	defect, repair, release, release3, hold, unhold, andon string
}

// recordHumans records the fixture and then people's decisions on it: a
// defect seen on car 1 at C04, repaired at R01 and released at Q05 by an
// inspector's signature; car 3 (blocked at the gate by its NOK) released
// by a signature; a supervisor's manual hold on car 2 and its release; an
// andon pulled at C04.
func recordHumans(t *testing.T, s *schema.Store) humanIDs {
	t.Helper()
	tracetest.Record(t, s)
	base := tracetest.Start.Add(time.Duration(len(tracetest.Cycles)) * tracetest.Step)
	n := 0
	mk := func(station string, car int, h event.Human) string {
		t.Helper()
		n++
		vin := ""
		if car > 0 {
			vin = tracetest.VINs[car-1]
		}
		ev, err := event.NewHuman("US1", "L1", station, vin, h, base.Add(time.Duration(n)*time.Minute+123456*time.Microsecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.Validate(); err != nil {
			t.Fatal(err)
		}
		tracetest.RecordEvents(t, s, &tracetest.Line, ev)
		return ev.ID
	}
	var ids humanIDs
	ids.defect = mk("C04", 1, event.Human{Action: event.ActionDefect, UserID: 1, User: "sato", Role: "operator", Code: "PNT-02", Zone: "hood", Severity: "major", Text: "paint run"})
	ids.repair = mk("R01", 1, event.Human{Action: event.ActionRepair, UserID: 2, User: "kato", Role: "operator", Cites: ids.defect, Text: "sanded and polished"})
	ids.release = mk("Q05", 1, event.Human{Action: event.ActionRelease, UserID: 3, User: "ito", Role: "quality_inspector", Meaning: "released: conforms", Reason: "re-inspected"})
	ids.release3 = mk("Q05", 3, event.Human{Action: event.ActionRelease, UserID: 3, User: "ito", Role: "quality_inspector", Meaning: "released: conforms", Reason: "lug re-torqued by hand, checked"})
	ids.hold = mk("C04", 2, event.Human{Action: event.ActionHold, UserID: 4, User: "abe", Role: "supervisor", Reason: "supplier alert", Lot: "TYR-LOT-00201"})
	ids.unhold = mk("C04", 2, event.Human{Action: event.ActionUnhold, UserID: 4, User: "abe", Role: "supervisor", Reason: "lot cleared", Cites: ids.hold})
	ids.andon = mk("C04", 0, event.Human{Action: event.ActionAndonPull, UserID: 1, User: "sato", Role: "operator", Reason: "missing clip"})
	return ids
}

// TestAuditPassesPeoplesDecisions: the record with people's decisions in
// it is intact, and their rows, holds and the gate's release are there.
func TestAuditPassesPeoplesDecisions(t *testing.T) {
	s := open(t)
	ids := recordHumans(t, s)
	if r := audit(t, s); len(r.Problems) != 0 {
		t.Fatalf("intact record: problems\n%s", problems(r))
	}
	var n int
	var closer string
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM human_actions`).Scan(&n); err != nil || n != 7 {
		t.Errorf("human_actions rows %d (%v), want 7", n, err)
	}
	if err := s.Pool().QueryRow(t.Context(), `SELECT coalesce(closed_event_id, '') FROM holds WHERE kind = 'nok' AND vin = $1`, tracetest.VINs[2]).Scan(&closer); err != nil || closer != ids.release3 {
		t.Errorf("car 3's NOK hold closed by %q (%v), want the signed release %s", closer, err, ids.release3)
	}
	if err := s.Pool().QueryRow(t.Context(), `SELECT event_id FROM gate_decisions WHERE vin = $1 AND kind = 'release'`, tracetest.VINs[2]).Scan(&closer); err != nil || closer != ids.release3 {
		t.Errorf("car 3's gate release by %q (%v), want %s", closer, err, ids.release3)
	}
}

// TestAuditNamesTamperingWithPeoplesDecisions changes people's decisions
// and their rows as a superuser and wants each change named.
func TestAuditNamesTamperingWithPeoplesDecisions(t *testing.T) {
	tests := []struct {
		name string
		sql  func(ids humanIDs) []string
		want [][3]string
	}{
		{
			name: "the signer of a release rewritten in the event",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`UPDATE event_log SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '"user":"ito"', '"user":"mori"'), 'UTF8')
					WHERE event_id = '%s'`, ids.release)}
			},
			want: [][3]string{
				{schema.CheckChain, ids0.release, "content does not match its hash (changed)"},
				{schema.CheckDerived, ids0.release, "human_actions: rows differ from their event"},
			},
		},
		{
			name: "the reason of a release changed in its row",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`UPDATE human_actions SET reason = 'as agreed' WHERE event_id = '%s'`, ids.release3)}
			},
			want: [][3]string{{schema.CheckDerived, ids0.release3, "human_actions: rows differ from their event"}},
		},
		{
			name: "a defect's row deleted",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`DELETE FROM human_actions WHERE event_id = '%s'`, ids.defect)}
			},
			want: [][3]string{{schema.CheckDerived, ids0.defect, "human_actions: rows missing that the event derives"}},
		},
		{
			name: "a defect's hold deleted",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`DELETE FROM holds WHERE opened_event_id = '%s'`, ids.defect)}
			},
			want: [][3]string{{schema.CheckHolds, ids0.defect, "a person's defect that put no hold on the car"}},
		},
		{
			name: "a manual hold closed by the wrong decision",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`UPDATE holds SET closed_event_id = '%s' WHERE opened_event_id = '%s'`, ids.hold, ids.hold)}
			},
			want: [][3]string{{schema.CheckHolds, ids0.hold, "a person's hold that does not close it"}},
		},
		{
			name: "a forged defect hold",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`INSERT INTO holds (vin, station, kind, reason, opened_event_id, opened_at)
					VALUES ('%s', 'C04', 'defect', 'forged', '%s', now())`, tracetest.VINs[1], ids.andon)}
			},
			want: [][3]string{{schema.CheckHolds, ids0.andon, "opened by an event of another car"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ids := recordHumans(t, s)
			superuser(t, s, tt.sql(ids)...)
			r := audit(t, s)
			for _, w := range tt.want {
				found := false
				for _, p := range r.Problems {
					if p.Check == w[0] && strings.Contains(p.EventID, w[1]) && strings.Contains(p.String(), w[2]) {
						found = true
					}
				}
				if !found {
					t.Errorf("no %s problem for event *%s* saying %q; problems:\n%s", w[0], w[1], w[2], problems(r))
				}
			}
		})
	}
}

// ids0 are the ids' shapes the table names before the fixture runs: each
// is matched as a substring of the problem's event id.
var ids0 = humanIDs{defect: "C04.human.", repair: "R01.human.", release: "Q05.human.", release3: "Q05.human.", hold: "C04.human.", unhold: "C04.human.", andon: "C04.human."}
