package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgserver"
	"github.com/keiline/keiline/simulator"
)

// traceRun is a finished simulated run: the truth the simulator wrote and
// the state dir whose private PostgreSQL (kept running) holds the record.
type traceRun struct {
	state string
	truth []simulator.TruthCar
	url   string // the owner's (superuser's) URL of the record
}

// traceCars is how many cars the acceptance run builds.
const traceCars = 30

// runLine builds traceCars cars with a seed whose cars visit the rework
// bay, then starts the state dir's PostgreSQL again so that every trace
// command finds it running.
func runLine(t *testing.T) *traceRun {
	t.Helper()
	seed := int64(0)
	for s := int64(1); s < 100 && seed == 0; s++ {
		reworked := 0
		_ = simulator.History(s, "", traceCars, func(c simulator.TruthCar) error {
			for _, st := range c.Stations {
				if st.Station == "R01" {
					reworked++
				}
			}
			return nil
		})
		if reworked >= 3 {
			seed = s
		}
	}
	if seed == 0 {
		t.Fatal("no seed below 100 sends 3 of 30 cars to rework")
	}
	state := filepath.Join(t.TempDir(), "state")
	truthPath := filepath.Join(t.TempDir(), "truth.jsonl")
	var out bytes.Buffer
	cmd := keiline(t.Context(), "up", "--cars", fmt.Sprint(traceCars), "--seed", fmt.Sprint(seed), "--speed", "300", "--truth", truthPath, "--state", state, "--http", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	r := &traceRun{state: state}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var c simulator.TruthCar
		if err := json.Unmarshal(line, &c); err != nil {
			t.Fatal(err)
		}
		r.truth = append(r.truth, c)
	}
	if len(r.truth) != traceCars {
		t.Fatalf("truth has %d cars, want %d", len(r.truth), traceCars)
	}
	srv, err := pgserver.Start(t.Context(), pgserver.Config{Dir: filepath.Join(state, "pg")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.WithoutCancel(t.Context())) })
	r.url = srv.URL("keiline")
	return r
}

// ask runs a keiline trace command and decodes its JSON answer into v.
func (r *traceRun) ask(t *testing.T, v any, args ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := keiline(t.Context(), append(append([]string{"trace"}, args...), "--json", "--state", r.state)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("trace %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		t.Fatalf("trace %s: %v\n%.300s", strings.Join(args, " "), err, out.String())
	}
}

// sameSet fails t unless got and want hold the same strings, naming what
// is missing and what is extra.
func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		count[g]--
	}
	var missing, extra []string
	for k, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, k)
		}
		for ; n < 0; n++ {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: %d in the truth missing from the answer %v; %d in the answer not in the truth %v (of %d wanted)",
			what, len(missing), head(missing), len(extra), head(extra), len(want))
	}
}

func head(ss []string) []string { return ss[:min(len(ss), 5)] }

func jointKey(vin, station string, j simulator.Joint) string {
	return fmt.Sprintf("%s %s %s %s %g %g %v", vin, station, j.Name, j.Tool, j.TorqueNm, j.AngleDeg, j.OK)
}

func partKey(vin, station string, p simulator.Part) string {
	return fmt.Sprintf("%s %s %s %s %s %s", vin, station, p.PartNumber, p.Serial, p.Lot, p.Supplier)
}

// TestTraceAnswersEqualTruth builds 30 cars and asks every trace question
// of issue 5 through the keiline command, as the auditor role, comparing
// each answer with the simulator's truth both ways; then it tampers with
// the record as a superuser and wants audit verify to name each change.
func TestTraceAnswersEqualTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	r := runLine(t)
	births := map[string]schema.BirthRecord{}
	var first, last time.Time

	t.Run("vin: birth record with holds, defects, rework and the gate", func(t *testing.T) {
		for _, c := range r.truth {
			var b schema.BirthRecord
			r.ask(t, &b, "vin", c.VIN)
			births[c.VIN] = b
			if b.Where != schema.WhereShipped || b.OpenHolds != 0 || b.Model != c.Model || b.Variant != c.Variant || b.Colour != c.Colour {
				t.Errorf("%s: %+v, want %s %s %s shipped with no open hold", c.VIN, b.CarStatus, c.Model, c.Variant, c.Colour)
			}
			if len(b.Visits) != len(c.Stations) {
				t.Errorf("%s: %d visits, truth %d", c.VIN, len(b.Visits), len(c.Stations))
				continue
			}
			byStation := map[string]schema.BirthVisit{}
			var wantHolds, wantDefects, gotDefects []string
			for i, st := range c.Stations {
				v := b.Visits[i]
				byStation[st.Station] = v
				if v.Station != st.Station || v.Result != st.Result || !strings.HasPrefix(v.EventID, "US1.L1."+st.Station+".cycle.") || v.Seq == 0 {
					t.Errorf("%s visit %d: %s %s %s seq %d, truth %s %s", c.VIN, i, v.Station, v.Result, v.EventID, v.Seq, st.Station, st.Result)
				}
				var gotJ, wantJ []string
				for _, j := range v.Joints {
					gotJ = append(gotJ, jointKey(c.VIN, v.Station, simulator.Joint{Name: j.Joint, Tool: j.Tool, TorqueNm: orNaN(j.TorqueNm), AngleDeg: orNaN(j.AngleDeg), OK: event.IsOK(j.OK)}))
				}
				for _, j := range st.Joints {
					wantJ = append(wantJ, jointKey(c.VIN, st.Station, j))
					if !j.OK {
						wantDefects = append(wantDefects, "joint "+st.Station+" "+j.Name)
					}
				}
				sameSet(t, c.VIN+" "+st.Station+" joints", gotJ, wantJ)
				for _, x := range st.Tests {
					if !x.OK {
						wantDefects = append(wantDefects, "test "+st.Station+" "+x.Name)
					}
				}
				if st.Result == "NOK" {
					wantHolds = append(wantHolds, "nok "+st.Station+" "+v.EventID)
				}
			}
			// NOK holds are the truth's; route holds come from events of
			// different stations arriving out of order, and each closes when
			// the skipped station's own cycle arrives.
			seq := map[string]int64{}
			for _, v := range b.Visits {
				seq[v.EventID] = v.Seq
			}
			gate := byStation["Q05"].EventID
			openAtGate := 0
			var gotHolds []string
			for _, h := range b.Holds {
				switch h.Kind {
				case schema.HoldNOK:
					gotHolds = append(gotHolds, h.Kind+" "+h.Station+" "+h.OpenedEventID)
					if h.ClosedEventID != byStation["R01"].EventID {
						t.Errorf("%s: NOK hold from %s closed by %q, want the rework bay's cycle %s", c.VIN, h.Station, h.ClosedEventID, byStation["R01"].EventID)
					}
				case schema.HoldRoute:
					if h.ClosedEventID != byStation[h.Station].EventID {
						t.Errorf("%s: route hold for %s (%s) closed by %q, want that station's cycle", c.VIN, h.Station, h.Reason, h.ClosedEventID)
					}
				default:
					t.Errorf("%s: %s hold from %s: %s", c.VIN, h.Kind, h.Station, h.Reason)
				}
				if seq[h.OpenedEventID] <= seq[gate] && seq[h.ClosedEventID] > seq[gate] {
					openAtGate++
				}
			}
			sameSet(t, c.VIN+" NOK holds", gotHolds, wantHolds)
			for _, d := range b.Defects {
				gotDefects = append(gotDefects, d.Kind+" "+d.Station+" "+d.Name)
				if d.ReworkStation != "R01" || d.ReworkEventID != byStation["R01"].EventID {
					t.Errorf("%s: defect %s %s reworked by %q at %q, want R01's cycle", c.VIN, d.Station, d.Name, d.ReworkEventID, d.ReworkStation)
				}
			}
			sameSet(t, c.VIN+" defects", gotDefects, wantDefects)
			// The gate decides on Q05's cycle: released unless a hold was
			// still open in the log at that point (a late cycle's route
			// hold, or a rework that reached the tracker after Q05's
			// cycle); a car so blocked is released by the event that
			// closed its last hold.
			wantGate := 1
			if openAtGate > 0 {
				wantGate = 2
			}
			if len(b.Gate) != wantGate || b.Gate[0].EventID != gate || b.Gate[0].Kind != schema.GateKindGate ||
				b.Gate[0].Released != (openAtGate == 0) || b.Gate[0].OpenHolds != openAtGate {
				t.Errorf("%s: gate %+v, want a decision on Q05's cycle %s, released unless a hold was open there (%d), and then a release", c.VIN, b.Gate, gate, openAtGate)
			} else if wantGate == 2 && (b.Gate[1].Kind != schema.GateKindRelease || !b.Gate[1].Released || seq[b.Gate[1].EventID] <= seq[gate]) {
				t.Errorf("%s: gate %+v: the block at %s is not followed by a release by a later event", c.VIN, b.Gate, gate)
			}
			if first.IsZero() || b.FirstSeenAt.Before(first) {
				first = b.FirstSeenAt
			}
			if b.ShippedAt != nil && b.ShippedAt.After(last) {
				last = *b.ShippedAt
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	from, to := first.Add(-time.Minute).Format(time.RFC3339Nano), last.Add(time.Minute).Format(time.RFC3339Nano)

	// The truth's parts, joints and NOK results, keyed for comparison.
	var serials, lots []string
	var parts []string
	joints := map[string][]string{}    // by tool
	nokJoints := map[string][]string{} // by station
	nokTests := map[string][]string{}  // by station
	nokVisits := map[string][]string{} // by station
	seenLot := map[string]bool{}
	for _, c := range r.truth {
		for _, st := range c.Stations {
			for _, p := range st.Parts {
				parts = append(parts, partKey(c.VIN, st.Station, p))
				if p.Serial != "" {
					serials = append(serials, p.Serial)
				}
				if !seenLot[p.Lot] {
					seenLot[p.Lot] = true
					lots = append(lots, p.Lot)
				}
			}
			for _, j := range st.Joints {
				joints[j.Tool] = append(joints[j.Tool], jointKey(c.VIN, st.Station, j))
				if !j.OK {
					nokJoints[st.Station] = append(nokJoints[st.Station], jointKey(c.VIN, st.Station, j))
				}
			}
			for _, x := range st.Tests {
				if !x.OK {
					nokTests[st.Station] = append(nokTests[st.Station], fmt.Sprintf("%s %s %s %g", c.VIN, st.Station, x.Name, x.Value))
				}
			}
			if st.Result == "NOK" {
				nokVisits[st.Station] = append(nokVisits[st.Station], c.VIN)
			}
		}
	}

	t.Run("part: every serial", func(t *testing.T) {
		var a schema.PartAnswer
		r.ask(t, &a, append([]string{"part"}, serials...)...)
		var got, want []string
		for _, u := range a.Uses {
			got = append(got, u.Serial+" "+u.VIN)
		}
		for _, p := range parts {
			f := strings.Fields(p)
			if f[3] != "" && len(f) == 6 {
				want = append(want, f[3]+" "+f[0])
			}
		}
		sameSet(t, "serials", got, want)
		for _, c := range a.Cars {
			if c.Where != schema.WhereShipped {
				t.Errorf("%s is %s, the truth says it left the line", c.VIN, c.Where)
			}
		}
	})
	t.Run("lot: every lot, and by part number and supplier", func(t *testing.T) {
		var a schema.PartAnswer
		r.ask(t, &a, append([]string{"lot"}, lots...)...)
		var got []string
		for _, u := range a.Uses {
			got = append(got, partKey(u.VIN, u.Station, simulator.Part{PartNumber: u.PartNumber, Serial: u.Serial, Lot: u.Lot, Supplier: u.Supplier}))
		}
		sameSet(t, "lots", got, parts)
		if len(a.Cars) != traceCars {
			t.Errorf("%d cars got parts of the lots, want all %d", len(a.Cars), traceCars)
		}
		// One lot, narrowed by its part number and supplier, and by another supplier.
		u := a.Uses[0]
		var want []string
		for _, p := range parts {
			if f := strings.Fields(p); strings.Contains(p, " "+u.Lot+" ") && strings.Contains(p, " "+u.PartNumber+" ") && f[len(f)-1] == u.Supplier {
				want = append(want, f[0])
			}
		}
		var one, none schema.PartAnswer
		r.ask(t, &one, "lot", u.Lot, "--part-number", u.PartNumber, "--supplier", u.Supplier)
		var gotVINs []string
		for _, x := range one.Uses {
			gotVINs = append(gotVINs, x.VIN)
		}
		sameSet(t, "lot "+u.Lot+" of "+u.PartNumber, gotVINs, want)
		r.ask(t, &none, "lot", u.Lot, "--supplier", "SUP-NOBODY")
		if len(none.Uses) != 0 {
			t.Errorf("lot %s from SUP-NOBODY: %d uses, want none", u.Lot, len(none.Uses))
		}
	})
	t.Run("tool: every joint in the window", func(t *testing.T) {
		for tool, want := range joints {
			var a schema.WindowAnswer
			r.ask(t, &a, "tool", tool, "--from", from, "--to", to)
			var got []string
			for _, j := range a.Joints {
				got = append(got, jointKey(j.VIN, j.Station, simulator.Joint{Name: j.Joint, Tool: j.Tool, TorqueNm: orNaN(j.TorqueNm), AngleDeg: orNaN(j.AngleDeg), OK: event.IsOK(j.OK)}))
			}
			sameSet(t, "tool "+tool, got, want)
		}
		// A window around one car's cycle at C04 holds that car's lug nuts only.
		c := r.truth[len(r.truth)/2]
		var at time.Time
		for _, v := range births[c.VIN].Visits {
			if v.Station == "C04" {
				at = v.FinishedAt
			}
		}
		var a schema.WindowAnswer
		r.ask(t, &a, "tool", "C04-NR1", "--from", at.Format(time.RFC3339Nano), "--to", at.Add(time.Millisecond).Format(time.RFC3339Nano))
		var want, got []string
		for _, k := range joints["C04-NR1"] {
			if strings.HasPrefix(k, c.VIN+" ") {
				want = append(want, k)
			}
		}
		for _, j := range a.Joints {
			got = append(got, jointKey(j.VIN, j.Station, simulator.Joint{Name: j.Joint, Tool: j.Tool, TorqueNm: orNaN(j.TorqueNm), AngleDeg: orNaN(j.AngleDeg), OK: event.IsOK(j.OK)}))
		}
		sameSet(t, "tool C04-NR1 at "+c.VIN+"'s cycle", got, want)
	})
	t.Run("station: NOK cycles, joints and tests", func(t *testing.T) {
		for _, st := range simulator.LineStations() {
			if st.ID == "R01" {
				continue
			}
			var v, j, x schema.WindowAnswer
			r.ask(t, &v, "station", st.ID, "--from", from, "--to", to, "--result", "NOK")
			var got []string
			for _, a := range v.Visits {
				got = append(got, a.VIN)
			}
			sameSet(t, st.ID+" NOK cycles", got, nokVisits[st.ID])
			if st.Joints > 0 {
				r.ask(t, &j, "station", st.ID, "--rows", "joints", "--from", from, "--to", to, "--result", "NOK")
				got = got[:0]
				for _, a := range j.Joints {
					got = append(got, jointKey(a.VIN, a.Station, simulator.Joint{Name: a.Joint, Tool: a.Tool, TorqueNm: orNaN(a.TorqueNm), AngleDeg: orNaN(a.AngleDeg), OK: event.IsOK(a.OK)}))
				}
				sameSet(t, st.ID+" NOK joints", got, nokJoints[st.ID])
			}
			if st.Tests > 0 {
				r.ask(t, &x, "station", st.ID, "--rows", "tests", "--from", from, "--to", to, "--result", "NOK")
				got = got[:0]
				for _, a := range x.Tests {
					got = append(got, fmt.Sprintf("%s %s %s %g", a.VIN, a.Station, a.Name, orNaN(a.Value)))
				}
				sameSet(t, st.ID+" NOK tests", got, nokTests[st.ID])
			}
		}
		// Every cycle of one station, as CSV.
		var out bytes.Buffer
		cmd := keiline(t.Context(), "trace", "station", "W01", "--from", from, "--to", to, "--csv", "--state", r.state)
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&out).ReadAll()
		if err != nil || len(rows) != traceCars+1 || rows[0][0] != "vin" {
			t.Errorf("W01 visits as CSV: %d rows (%v), want a header and %d cars", len(rows), err, traceCars)
		}
	})

	t.Run("roles: the writer cannot change the log", func(t *testing.T) {
		u, err := schema.RoleURL(r.url, schema.RoleWriter)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(t.Context()))
		for _, q := range []string{`UPDATE event_log SET vin = ''`, `DELETE FROM event_log`, `TRUNCATE event_log`, `UPDATE joints SET torque_nm = 0`, `DELETE FROM holds`} {
			_, err := conn.Exec(t.Context(), q)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("writer: %s: %v, want insufficient_privilege", q, err)
			}
		}
	})

	t.Run("audit: tampering is named", func(t *testing.T) {
		verify := func() string {
			var out bytes.Buffer
			cmd := keiline(t.Context(), "audit", "verify", "--state", r.state)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if err == nil && strings.Contains(out.String(), "PROBLEM") {
				t.Errorf("audit verify found problems but succeeded:\n%s", out.String())
			}
			if err != nil && !strings.Contains(out.String(), "PROBLEM") {
				t.Fatalf("audit verify: %v\n%s", err, out.String())
			}
			return out.String()
		}
		if out := verify(); !strings.Contains(out, "record intact") {
			t.Fatalf("the untouched record does not verify:\n%s", out)
		}
		conn, err := pgx.Connect(t.Context(), r.url) // the cluster's superuser
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(t.Context()))
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := conn.Exec(t.Context(), q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`SET session_replication_role = replica`) // around the append-only triggers
		c := r.truth[3]
		var c04, deleted string
		var deletedSeq int64
		for _, v := range births[c.VIN].Visits {
			switch v.Station {
			case "C04":
				c04 = v.EventID
			case "F02":
				deleted, deletedSeq = v.EventID, v.Seq
			}
		}
		steps := []struct {
			name, sql string
			args      []any
			want      []string
		}{
			{"one torque value changed", `UPDATE joints SET torque_nm = torque_nm + 5 WHERE event_id = $1 AND slot = 3`, []any{c04},
				[]string{"PROBLEM derived: seq", "event " + c04 + " vin " + c.VIN + " joints: rows differ from their event: row " + c04 + ", 3"}},
			{"one event deleted", `DELETE FROM event_log WHERE event_id = $1`, []any{deleted},
				[]string{fmt.Sprintf("rows %d..%d are missing (deleted)", deletedSeq, deletedSeq), "index: seq " + fmt.Sprint(deletedSeq) + " event " + deleted}},
			{"one event forged", `INSERT INTO event_log (seq, event_id, kind, plant, line, station, vin, occurred_at, recorded_at, payload, prev_hash, hash)
				SELECT seq + 1, 'US1.L1.Q05.cycle.999', kind, plant, line, 'Q05', vin, occurred_at, recorded_at, payload, hash, hash
				FROM event_log ORDER BY seq DESC LIMIT 1`, nil,
				[]string{"event US1.L1.Q05.cycle.999", "in the log but not in event_ids: inserted out of band"}},
		}
		for _, s := range steps {
			exec(s.sql, s.args...)
			out := verify()
			for _, w := range s.want {
				if !strings.Contains(out, w) {
					t.Errorf("after %s, audit verify does not say %q:\n%s", s.name, w, out)
				}
			}
		}
	})
}

// orNaN is *v, or NaN for an unknown value: it equals no value of the truth.
func orNaN(v *float64) float64 {
	if v == nil {
		return math.NaN()
	}
	return *v
}
