package schema_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T) *schema.Store {
	t.Helper()
	s, err := schema.Open(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// t0 is the tests' time of events: yesterday's 08:00 UTC, derived from
// the clock.
var t0 = time.Now().UTC().Truncate(24 * time.Hour).Add(-16 * time.Hour)

func events(ids ...string) []schema.EventRow {
	var out []schema.EventRow
	for _, id := range ids {
		out = append(out, schema.EventRow{ID: id, Kind: "cycle", Plant: "US1", Line: "L1", Station: "W01", OccurredAt: t0, RecordedAt: t0,
			Payload: []byte(fmt.Sprintf(`{"id":%q}`, id))})
	}
	return out
}

func appendEvents(t *testing.T, s *schema.Store, evs []schema.EventRow) []bool {
	t.Helper()
	var fresh []bool
	err := s.WithTx(t.Context(), func(tx *schema.Tx) error {
		var err error
		fresh, err = tx.AppendEvents(t.Context(), evs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

func TestMigrateTwiceIsHarmless(t *testing.T) {
	url := pgtest.NewDB(t)
	for range 2 {
		s, err := schema.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func TestAppendEventsSkipsDuplicates(t *testing.T) {
	s := open(t)
	if got := appendEvents(t, s, events("a", "b", "c")); fmt.Sprint(got) != "[true true true]" {
		t.Fatalf("first append fresh = %v", got)
	}
	// b is a redelivery, d is new, d again in the same batch is a duplicate.
	if got := appendEvents(t, s, events("b", "d", "d")); fmt.Sprint(got) != "[false true false]" {
		t.Fatalf("second append fresh = %v, want [false true false]", got)
	}
	n, problem, err := s.VerifyChain(t.Context())
	if err != nil || problem != nil || n != 4 {
		t.Fatalf("VerifyChain = %d, %v, %v; want 4 rows intact", n, problem, err)
	}
}

func TestEventLogIsAppendOnly(t *testing.T) {
	s := open(t)
	appendEvents(t, s, events("a"))
	for _, q := range []string{
		`UPDATE event_log SET payload = '\x00' WHERE event_id = 'a'`,
		`DELETE FROM event_log WHERE event_id = 'a'`,
		`TRUNCATE event_log`,
	} {
		_, err := s.Pool().Exec(t.Context(), q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want it refused as append-only", q, err)
		}
	}
}

func TestVerifyChainNamesTampering(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want string
	}{
		{"changed payload", `UPDATE event_log SET payload = convert_to('{"id":"b","torque":1}', 'UTF8') WHERE event_id = 'b'`, "seq 2 (event b): content does not match its hash (changed)"},
		{"deleted row", `DELETE FROM event_log WHERE event_id = 'b'`, "seq 3 (event c): rows 2..2 are missing (deleted)"},
		{"forged row", `INSERT INTO event_log (seq, event_id, kind, plant, line, station, occurred_at, recorded_at, payload, prev_hash, hash)
			SELECT 4, 'forged', 'cycle', 'US1', 'L1', 'W01', now(), now(), '\x7b7d', '\x00', '\x00'`, "seq 4 (event forged): link to the previous row does not match"},
		{"deleted last row", `DELETE FROM event_log WHERE event_id = 'c'`, "chain head (seq 3) does not match the last row (seq 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			appendEvents(t, s, events("a", "b", "c"))
			// A superuser who goes around the application's guard.
			err := pgx(t, s, `SET session_replication_role = replica`, tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			_, problem, err := s.VerifyChain(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if problem == nil || !strings.Contains(problem.Error(), tt.want) {
				t.Fatalf("VerifyChain problem = %v, want %q", problem, tt.want)
			}
		})
	}
}

// pgx runs statements on one connection.
func pgx(t *testing.T, s *schema.Store, stmts ...string) error {
	conn, err := s.Pool().Acquire(t.Context())
	if err != nil {
		return err
	}
	defer conn.Release()
	defer conn.Exec(context.WithoutCancel(t.Context()), `RESET session_replication_role`)
	for _, q := range stmts {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
