package schema_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	pgxv5 "github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/schema/tracetest"
)

func audit(t *testing.T, s *schema.Store, anchors ...schema.Anchor) *schema.AuditReport {
	t.Helper()
	r, err := s.Audit(t.Context(), schema.AuditOptions{Anchors: anchors})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAuditPassesAnIntactRecord(t *testing.T) {
	s := open(t)
	tracetest.Record(t, s)
	r := audit(t, s)
	if len(r.Problems) != 0 {
		t.Fatalf("intact record: problems %v", r.Problems)
	}
	if r.Rows != int64(len(tracetest.Cycles)+1) || r.Head.Seq != r.Rows {
		t.Errorf("rows %d head %d, want %d", r.Rows, r.Head.Seq, len(tracetest.Cycles)+1)
	}
}

// TestAuditNamesTampering tampers as a superuser, going around every guard
// of the application, and wants each change named.
func TestAuditNamesTampering(t *testing.T) {
	tests := []struct {
		name string
		sql  func(ids map[int]map[string]string) []string
		// want: each a problem's check, event and a piece of its text.
		want [][3]string
	}{
		{
			name: "changed torque in a derived row",
			sql: func(ids map[int]map[string]string) []string {
				return []string{fmt.Sprintf(`UPDATE joints SET torque_nm = 108.0 WHERE event_id = '%s' AND slot = 2`, ids[2]["C04"])}
			},
			want: [][3]string{{schema.CheckDerived, "C04.cycle.2", "joints: rows differ from their event: row US1.L1.C04.cycle.2, 2 stored (" +
				tracetest.VINs[1] + ", C04, lug_fl_2, C04-NR1, 108, 44.5, f, " + pgTime(tracetest.At(4)) + "), event says (" +
				tracetest.VINs[1] + ", C04, lug_fl_2, C04-NR1, 91.25, 44.5, f, " + pgTime(tracetest.At(4)) + ")"}},
		},
		{
			name: "deleted event",
			sql: func(ids map[int]map[string]string) []string {
				return []string{fmt.Sprintf(`DELETE FROM event_log WHERE event_id = '%s'`, ids[1]["C04"])}
			},
			want: [][3]string{
				{schema.CheckChain, "W01.cycle.3", "rows 3..3 are missing (deleted)"},
				{schema.CheckIndex, "C04.cycle.1", "in event_ids but not in the log: deleted"},
				{schema.CheckDerived, "C04.cycle.1", "joints: rows with no event in the log that derives them (inserted, or their event deleted): US1.L1.C04.cycle.1, 1; US1.L1.C04.cycle.1, 2;"},
			},
		},
		{
			name: "forged event",
			sql: func(ids map[int]map[string]string) []string {
				return []string{`INSERT INTO event_log (seq, event_id, kind, plant, line, station, vin, occurred_at, recorded_at, payload, prev_hash, hash)
					SELECT seq + 1, 'US1.L1.S01.cycle.9', 'cycle', 'US1', 'L1', 'S01', '` + tracetest.VINs[2] + `', occurred_at, recorded_at,
						convert_to('{"id":"US1.L1.S01.cycle.9","kind":"cycle","plant":"US1","line":"L1","station":"S01","vin":"` + tracetest.VINs[2] +
					`","occurred_at":"` + forgedAt + `","recorded_at":"` + forgedAt + `","data":{"counter":9,"result":"OK"}}', 'UTF8'),
						hash, sha256(hash) FROM event_log ORDER BY seq DESC LIMIT 1`}
			},
			want: [][3]string{
				{schema.CheckChain, "S01.cycle.9", "content does not match its hash"},
				{schema.CheckChain, "", "chain head (seq 13) does not match the last row (seq 14)"},
				{schema.CheckIndex, "S01.cycle.9", "in the log but not in event_ids: inserted out of band"},
				{schema.CheckDerived, "S01.cycle.9", "station_visits: rows missing that the event derives: US1.L1.S01.cycle.9"},
			},
		},
		{
			name: "changed column outside the payload",
			sql: func(ids map[int]map[string]string) []string {
				return []string{fmt.Sprintf(`UPDATE event_log SET vin = '%s' WHERE event_id = '%s'`, tracetest.VINs[0], ids[3]["C04"])}
			},
			want: [][3]string{{schema.CheckEnvelope, "C04.cycle.3", "columns differ from the hashed payload: vin"}},
		},
		{
			name: "payload bytes that are not UTF-8",
			sql: func(ids map[int]map[string]string) []string {
				return []string{fmt.Sprintf(`UPDATE event_log SET payload = '\xfffe7b7d'::bytea WHERE event_id = '%s'`, ids[3]["C04"])}
			},
			want: [][3]string{
				{schema.CheckChain, "C04.cycle.3", "content does not match its hash (changed)"},
				{schema.CheckEnvelope, "C04.cycle.3", "the payload is not UTF-8 JSON: changed out of band"},
				// What it derived has no event left to derive it.
				{schema.CheckDerived, "C04.cycle.3", "joints: rows with no event in the log that derives them"},
				{schema.CheckHolds, "C04.cycle.3", "opened by an event that is not in the log"},
			},
		},
		{
			name: "payload rewritten as other JSON",
			sql: func(ids map[int]map[string]string) []string {
				return []string{fmt.Sprintf(`UPDATE event_log SET payload = convert_to(jsonb_set(convert_from(payload, 'UTF8')::jsonb, '{data,result}', '"OK"')::text, 'UTF8')
					WHERE event_id = '%s'`, ids[3]["C04"])}
			},
			want: [][3]string{
				{schema.CheckChain, "C04.cycle.3", "content does not match its hash (changed)"},
				{schema.CheckDerived, "C04.cycle.3", "station_visits: rows differ from their event"},
			},
		},
		{
			name: "deleted hold",
			sql: func(ids map[int]map[string]string) []string {
				return []string{fmt.Sprintf(`DELETE FROM holds WHERE opened_event_id = '%s'`, ids[3]["C04"])}
			},
			want: [][3]string{
				{schema.CheckHolds, "C04.cycle.3", "a NOK cycle that put no hold on the car"},
				{schema.CheckGate, "Q05.cycle.2", "blocked with 1 open holds recorded, but 0 holds were open"},
			},
		},
		{
			name: "narrowed lot index",
			sql: func(ids map[int]map[string]string) []string {
				return []string{`UPDATE part_lots SET last_at = first_at WHERE lot = 'BIW-LOT-00100'`}
			},
			want: [][3]string{{schema.CheckDerived, "", "lot BIW-LOT-00100 of BIW-KW from SUP-KLN-BODY: the lot index says"}},
		},
		{
			name: "forged release at the gate",
			sql: func(ids map[int]map[string]string) []string {
				return []string{fmt.Sprintf(`UPDATE gate_decisions SET released = true, open_holds = 0 WHERE event_id = '%s'`, ids[3]["Q05"])}
			},
			want: [][3]string{{schema.CheckGate, "Q05.cycle.2", "released with 0 open holds recorded, but 1 holds were open at that point of the log"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			ids := tracetest.Record(t, s)
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
			if len(r.Problems) > len(tt.want)+4 {
				t.Errorf("%d problems for one change:\n%s", len(r.Problems), problems(r))
			}
		})
	}
}

// TestAuditAnchorCatchesARewrittenChain rewrites one payload and every hash
// after it so that the chain is whole again: the derived rows and the
// anchor an auditor kept still name it.
func TestAuditAnchorCatchesARewrittenChain(t *testing.T) {
	s := open(t)
	ids := tracetest.Record(t, s)
	before := audit(t, s)
	anchor := schema.Anchor{Seq: before.Head.Seq, Hash: before.Head.Hash}
	superuser(t, s, fmt.Sprintf(`UPDATE event_log SET payload = convert_to(replace(convert_from(payload, 'UTF8'), '"torque_nm":91.25', '"torque_nm":108.25'), 'UTF8')
		WHERE event_id = '%s'`, ids[2]["C04"]))
	rehash(t, s)
	if n, p, err := s.VerifyChain(t.Context()); err != nil || p != nil {
		t.Fatalf("the rewritten chain should look whole to the chain walk alone: %d rows, %v, %v", n, p, err)
	}
	r := audit(t, s, anchor)
	var anchored, derived bool
	for _, p := range r.Problems {
		anchored = anchored || p.Check == schema.CheckAnchor && p.Seq == anchor.Seq
		derived = derived || p.Check == schema.CheckDerived && p.EventID == ids[2]["C04"]
	}
	if !anchored || !derived {
		t.Errorf("anchor named %v, derived rows named %v; problems:\n%s", anchored, derived, problems(r))
	}
}

// rehash recomputes every hash of the log and the chain head, as a forger
// with superuser rights would.
func rehash(t *testing.T, s *schema.Store) {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `SELECT seq, event_id, payload FROM event_log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq     int64
		id      string
		payload []byte
	}
	var all []row
	var r row
	if _, err := pgxv5.ForEachRow(rows, []any{&r.seq, &r.id, &r.payload}, func() error { all = append(all, r); return nil }); err != nil {
		t.Fatal(err)
	}
	prev := []byte{}
	var stmts []string
	for _, r := range all {
		h := schema.ChainHash(prev, r.seq, r.id, r.payload)
		stmts = append(stmts, fmt.Sprintf(`UPDATE event_log SET prev_hash = '\x%x', hash = '\x%x' WHERE seq = %d`, prev, h, r.seq))
		prev = h
	}
	stmts = append(stmts, fmt.Sprintf(`UPDATE chain_head SET hash = '\x%x'`, prev))
	superuser(t, s, stmts...)
}

func problems(r *schema.AuditReport) string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// superuser runs statements as the database owner with triggers off.
func superuser(t *testing.T, s *schema.Store, stmts ...string) {
	t.Helper()
	if err := pgx(t, s, append([]string{`SET session_replication_role = replica`}, stmts...)...); err != nil {
		t.Fatal(err)
	}
}

// TestWriterCannotChangeTheLog connects as the tracker's writer role: it
// may append, but every UPDATE, DELETE and TRUNCATE of the log is refused
// by Postgres privileges, and so are changes to derived rows.
func TestWriterCannotChangeTheLog(t *testing.T) {
	url := pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	ids := tracetest.Record(t, owner)
	w, err := schema.OpenAs(t.Context(), url, schema.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var user string
	if err := w.Pool().QueryRow(t.Context(), `SELECT current_user`).Scan(&user); err != nil || user != schema.RoleWriter {
		t.Fatalf("connected as %q (%v), want %s", user, err, schema.RoleWriter)
	}
	id := ids[2]["C04"]
	for _, q := range []string{
		`UPDATE event_log SET payload = '\x00' WHERE event_id = '` + id + `'`,
		`DELETE FROM event_log WHERE event_id = '` + id + `'`,
		`TRUNCATE event_log`,
		`UPDATE event_ids SET seq = 0 WHERE event_id = '` + id + `'`,
		`DELETE FROM event_ids WHERE event_id = '` + id + `'`,
		`UPDATE joints SET torque_nm = 108 WHERE event_id = '` + id + `'`,
		`DELETE FROM joints WHERE event_id = '` + id + `'`,
		`DELETE FROM holds WHERE opened_event_id = '` + id + `'`,
		`UPDATE gate_decisions SET released = true`,
		`UPDATE chain_head SET seq = 0`, // allowed only as AppendEvents moves it: see below
		`DROP TABLE joints_` + tracetest.MonthSuffix(tracetest.Start),
		`ALTER TABLE event_log DISABLE TRIGGER ALL`,
	} {
		_, err := w.Pool().Exec(t.Context(), q)
		var pgErr *pgconn.PgError
		if q == `UPDATE chain_head SET seq = 0` {
			// The writer must move the chain head; a head moved out of
			// band is what audit verify reports.
			if err != nil {
				t.Errorf("%s: %v", q, err)
			}
			continue
		}
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("writer: %s: err = %v, want insufficient_privilege (42501)", q, err)
		}
	}
}

// TestAuditorOnlyReads connects as the auditor role: reads work, any write
// is refused, even with the read-only default switched off.
func TestAuditorOnlyReads(t *testing.T) {
	url := pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	tracetest.Record(t, owner)
	a, err := schema.OpenAs(t.Context(), url, schema.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Trace(t.Context(), tracetest.VINs[0]); err != nil {
		t.Fatalf("auditor trace: %v", err)
	}
	if r := audit(t, a); len(r.Problems) != 0 {
		t.Fatalf("auditor audit: %v", r.Problems)
	}
	_, err = a.Pool().Exec(t.Context(), `INSERT INTO holds (vin, station, kind, reason, opened_event_id, opened_at) VALUES ('x', 'x', 'nok', 'x', 'x', now())`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Errorf("auditor insert: err = %v, want read_only_sql_transaction (25006)", err)
	}
	conn, err := a.Pool().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(t.Context(), `SET default_transaction_read_only = off`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM joints`, `UPDATE event_log SET vin = ''`, `INSERT INTO gate_decisions SELECT * FROM gate_decisions`} {
		_, err := conn.Exec(t.Context(), q)
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("auditor: %s: err = %v, want insufficient_privilege (42501)", q, err)
		}
	}
	conn.Exec(t.Context(), `RESET default_transaction_read_only`)
}
