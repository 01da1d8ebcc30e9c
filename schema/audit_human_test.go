package schema_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/tracetest"
)

type humanIDs = tracetest.Decisions

// recordHumans records the fixture and people's decisions on it
// (tracetest.RecordDecisions).
func recordHumans(t *testing.T, s *schema.Store) humanIDs {
	t.Helper()
	tracetest.Record(t, s)
	return tracetest.RecordDecisions(t, s)
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
	if err := s.Pool().QueryRow(t.Context(), `SELECT coalesce(closed_event_id, '') FROM holds WHERE kind = 'nok' AND vin = $1`, tracetest.VINs[2]).Scan(&closer); err != nil || closer != ids.Release3 {
		t.Errorf("car 3's NOK hold closed by %q (%v), want the signed release %s", closer, err, ids.Release3)
	}
	if err := s.Pool().QueryRow(t.Context(), `SELECT event_id FROM gate_decisions WHERE vin = $1 AND kind = 'release'`, tracetest.VINs[2]).Scan(&closer); err != nil || closer != ids.Release3 {
		t.Errorf("car 3's gate release by %q (%v), want %s", closer, err, ids.Release3)
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
					WHERE event_id = '%s'`, ids.Release)}
			},
			want: [][3]string{
				{schema.CheckChain, ids0.Release, "content does not match its hash (changed)"},
				{schema.CheckDerived, ids0.Release, "human_actions: rows differ from their event"},
			},
		},
		{
			name: "the reason of a release changed in its row",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`UPDATE human_actions SET reason = 'as agreed' WHERE event_id = '%s'`, ids.Release3)}
			},
			want: [][3]string{{schema.CheckDerived, ids0.Release3, "human_actions: rows differ from their event"}},
		},
		{
			name: "a defect's row deleted",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`DELETE FROM human_actions WHERE event_id = '%s'`, ids.Defect)}
			},
			want: [][3]string{{schema.CheckDerived, ids0.Defect, "human_actions: rows missing that the event derives"}},
		},
		{
			name: "a defect's hold deleted",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`DELETE FROM holds WHERE opened_event_id = '%s'`, ids.Defect)}
			},
			want: [][3]string{{schema.CheckHolds, ids0.Defect, "a person's defect that put no hold on the car"}},
		},
		{
			name: "a manual hold closed by the wrong decision",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`UPDATE holds SET closed_event_id = '%s' WHERE opened_event_id = '%s'`, ids.Hold, ids.Hold)}
			},
			want: [][3]string{{schema.CheckHolds, ids0.Hold, "a person's hold that does not close it"}},
		},
		{
			name: "a forged defect hold",
			sql: func(ids humanIDs) []string {
				return []string{fmt.Sprintf(`INSERT INTO holds (vin, station, kind, reason, opened_event_id, opened_at)
					VALUES ('%s', 'C04', 'defect', 'forged', '%s', now())`, tracetest.VINs[1], ids.Andon)}
			},
			want: [][3]string{{schema.CheckHolds, ids0.Andon, "opened by an event of another car"}},
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
var ids0 = humanIDs{Defect: "C04.human.", Repair: "R01.human.", Release: "Q05.human.", Release3: "Q05.human.", Hold: "C04.human.", Unhold: "C04.human.", Andon: "C04.human."}

// TestBirthRecordShowsDecisions: a car's birth record lists people's
// decisions about it with who, role, where, when, why, the signature's
// meaning and the decision's place in the log.
func TestBirthRecordShowsDecisions(t *testing.T) {
	s := open(t)
	ids := recordHumans(t, s)
	tr, err := s.Trace(t.Context(), tracetest.VINs[0])
	if err != nil {
		t.Fatal(err)
	}
	b := tr.Birth()
	if len(b.Decisions) != 3 {
		t.Fatalf("decisions %+v, want the defect, the repair and the release", b.Decisions)
	}
	want := []struct{ id, action, user, role, why string }{
		{ids.Defect, "defect", "sato", "operator", "PNT-02 at hood (major); paint run"},
		{ids.Repair, "repair", "kato", "operator", "sanded and polished; cites " + ids.Defect},
		{ids.Release, "release", "ito", "quality_inspector", "re-inspected"},
	}
	for i, w := range want {
		d := b.Decisions[i]
		if d.EventID != w.id || d.Action != w.action || d.User != w.user || d.Role != w.role || d.Why() != w.why || d.Seq == 0 || d.Hash == "" {
			t.Errorf("decision %d: %+v (why %q), want %+v with its seq and hash", i, d, d.Why(), w)
		}
	}
	if b.Decisions[2].Meaning != "released: conforms" {
		t.Errorf("release signature meaning %q", b.Decisions[2].Meaning)
	}
}
