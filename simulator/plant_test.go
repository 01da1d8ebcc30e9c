package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/vin"
)

// mandatory is the station ids every car visits, in order.
func mandatory() []string {
	var ids []string
	for _, s := range line {
		if !s.Optional {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// checkRoute checks that a car visited every mandatory station in order,
// and R01 (between Q04 and Q05) exactly when it had a NOK.
func checkRoute(t *testing.T, c TruthCar) {
	t.Helper()
	var got []string
	nok := false
	for _, s := range c.Stations {
		got = append(got, s.Station)
		if s.Station != reworkStation && s.Result == "NOK" {
			nok = true
		}
		for _, arr := range []bool{s.Parts == nil, s.Joints == nil, s.Tests == nil} {
			if arr {
				t.Errorf("%s at %s: null array in truth", c.VIN, s.Station)
			}
		}
	}
	want := mandatory()
	if nok {
		k := slices.Index(want, "Q05")
		want = slices.Insert(want, k, reworkStation)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s (nok %v): route %v, want %v", c.VIN, nok, got, want)
	}
	if err := vin.Validate(c.VIN); err != nil {
		t.Errorf("truth VIN: %v", err)
	}
}

// checkAgainstTruth checks that every result the ackers read (including one
// read again after a restart) is in the truth with the same values. When
// complete, it also checks that every truth visit was read and that each
// station's cycle counters run 1, 2, 3, ... without gaps.
func checkAgainstTruth(t *testing.T, truth []TruthCar, results map[string][]readResult, complete bool) {
	t.Helper()
	type key struct{ vin, station string }
	want := make(map[key]TruthStation)
	for _, c := range truth {
		for _, s := range c.Stations {
			want[key{c.VIN, s.Station}] = s
		}
	}
	seen := make(map[key]bool)
	for st, rs := range results {
		counters := make([]uint32, 0, len(rs))
		for _, r := range rs {
			counters = append(counters, r.Counter)
		}
		slices.Sort(counters)
		counters = slices.Compact(counters)
		for i, c := range counters {
			if !complete {
				break
			}
			if c != uint32(i+1) {
				t.Errorf("station %s: cycle counters %v, want 1..%d", st, counters, len(counters))
				break
			}
		}
		for _, r := range rs {
			k := key{r.VIN, st}
			ts, ok := want[k]
			if !ok {
				t.Errorf("station %s cycle %d: car %s not in truth", st, r.Counter, r.VIN)
				continue
			}
			seen[k] = true // a result read again after a restart must be the same
			if r.Status != ts.Result {
				t.Errorf("station %s %s: status %s, truth %s", st, r.VIN, r.Status, ts.Result)
			}
			if r.End < r.Start || r.Start == 0 {
				t.Errorf("station %s %s: start %d end %d", st, r.VIN, r.Start, r.End)
			}
			for _, cmp := range []struct {
				name      string
				got, want any
			}{
				{"parts", nonNil(r.Parts), ts.Parts},
				{"joints", nonNil(r.Joints), ts.Joints},
				{"tests", nonNil(r.Tests), ts.Tests},
			} {
				g, _ := json.Marshal(cmp.got)
				w, _ := json.Marshal(cmp.want)
				if !bytes.Equal(g, w) {
					t.Errorf("station %s %s %s:\n read  %s\n truth %s", st, r.VIN, cmp.name, g, w)
				}
			}
		}
	}
	for k := range want {
		if complete && !seen[k] {
			t.Errorf("station %s: car %s in truth was never read", k.station, k.vin)
		}
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func collect(ackers map[string]*acker) map[string][]readResult {
	m := make(map[string][]readResult)
	for id, a := range ackers {
		m[id] = a.got()
	}
	return m
}

func waitDone(t *testing.T, p *Plant, d time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(d):
		st := p.Stats()
		t.Fatalf("plant not done after %v: framed %d out %d stations %+v", d, st.Framed, st.Out, st.Stations)
	}
}

func TestLineEndToEnd(t *testing.T) {
	truthPath := filepath.Join(t.TempDir(), "truth.jsonl")
	p := startPlant(t, Config{Seed: 7, Speed: 600, Cars: 5, MaxUnacked: 3, TruthPath: truthPath})

	sts := p.Stations()
	if len(sts) != 23 || sts[0].ID != "W01" || sts[22].ID != "S01" || !sts[20].Optional || sts[20].ID != "R01" {
		t.Fatalf("stations: %+v", sts)
	}
	if got := sts[11].Nodes["Joint16.TorqueNm"]; got != "ns=1;s=C04.Joint16.TorqueNm" || sts[11].Joints != 16 {
		t.Fatalf("C04 Joint16.TorqueNm node %q, joints %d", got, sts[11].Joints)
	}

	ackers, stop := startAckers(t, p)
	waitDone(t, p, 45*time.Second)
	stop()

	st := p.Stats()
	if st.Framed != 5 || st.Out != 5 || st.OnLine != 0 {
		t.Errorf("stats: framed %d out %d on line %d, want 5 5 0", st.Framed, st.Out, st.OnLine)
	}
	truth := readTruth(t, truthPath)
	if len(truth) != 5 {
		t.Fatalf("truth has %d lines, want 5", len(truth))
	}
	vins := make(map[string]bool)
	for _, c := range truth {
		checkRoute(t, c)
		vins[c.VIN] = true
	}
	if len(vins) != 5 {
		t.Errorf("truth VINs not distinct: %v", vins)
	}
	checkAgainstTruth(t, truth, collect(ackers), true)
}

// runToEnd runs a plant with ackers until done and returns the truth and
// what the ackers read.
func runToEnd(t *testing.T, cfg Config) ([]TruthCar, map[string][]readResult) {
	t.Helper()
	p := startPlant(t, cfg)
	ackers, stop := startAckers(t, p)
	waitDone(t, p, 45*time.Second)
	stop()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	return readTruth(t, cfg.TruthPath), collect(ackers)
}

func TestRestartContinues(t *testing.T) {
	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	cfg := Config{Seed: 11, Speed: 600, Cars: 6, Dir: filepath.Join(dir, "state"), TruthPath: truthPath}

	// First run: stop midway.
	p1 := startPlant(t, cfg)
	ackers1, stop1 := startAckers(t, p1)
	// What a crash would leave on disk while the plant runs: the state
	// file, then the truth file (the plant writes them in the other order).
	crash := filepath.Join(dir, "crash")
	waitFor(t, 30*time.Second, "a car out", func() bool { return p1.Stats().Out >= 1 })
	copyFile(t, filepath.Join(cfg.Dir, StateFile), filepath.Join(crash, "state", StateFile))
	copyFile(t, truthPath, filepath.Join(crash, "truth.jsonl"))
	waitFor(t, 30*time.Second, "two cars out", func() bool { return p1.Stats().Out >= 2 })
	stop1()
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	before := p1.Stats()
	if before.Out >= cfg.Cars {
		t.Fatalf("first run finished all cars; cannot test a restart")
	}
	// A line written after the last saved state (a crash between the two)
	// must be dropped on start.
	f, err := os.OpenFile(truthPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, `{"vin":"JUNK"}`)
	f.Close()

	// Second run on the same state, with another seed (the saved one wins).
	cfg.Seed = 99
	p2 := startPlant(t, cfg)
	if got := p2.Stats(); got.Framed != before.Framed || got.Out != before.Out {
		t.Errorf("resumed with framed %d out %d, want %d %d", got.Framed, got.Out, before.Framed, before.Out)
	}
	for i, s := range p2.Stats().Stations {
		if s.CycleCounter != before.Stations[i].CycleCounter || s.Unacked != before.Stations[i].Unacked {
			t.Errorf("station %s resumed at cycle %d (%d unacked), want %d (%d)", s.ID,
				s.CycleCounter, s.Unacked, before.Stations[i].CycleCounter, before.Stations[i].Unacked)
		}
	}
	ackers2, stop2 := startAckers(t, p2)
	waitDone(t, p2, 45*time.Second)
	stop2()
	if err := p2.Stop(); err != nil {
		t.Fatal(err)
	}

	truth := readTruth(t, truthPath)
	if len(truth) != cfg.Cars {
		t.Fatalf("truth has %d lines, want %d", len(truth), cfg.Cars)
	}
	seen := make(map[string]int)
	for _, c := range truth {
		seen[c.VIN]++
		checkRoute(t, c)
	}
	for k := 1; k <= cfg.Cars; k++ {
		pl, err := newPlanner(11, WMIDefault).plan(k)
		if err != nil {
			t.Fatal(err)
		}
		if seen[pl.VIN] != 1 {
			t.Errorf("car %d (%s) is %d times in the truth, want once", k, pl.VIN, seen[pl.VIN])
		}
	}
	// Both runs' reads together: counters continue, nothing lost or
	// duplicated, values as in the truth.
	all := collect(ackers1)
	for id, rs := range collect(ackers2) {
		all[id] = append(all[id], rs...)
	}
	checkAgainstTruth(t, truth, all, true)

	// A run resumed after the crash builds every car once, the same cars.
	crashed, crashReads := runToEnd(t, Config{Seed: 11, Speed: 600, Cars: 6,
		Dir: filepath.Join(crash, "state"), TruthPath: filepath.Join(crash, "truth.jsonl")})
	if !sameTruth(truth, crashed) {
		t.Errorf("the run resumed after a crash built other cars than the one resumed after a stop")
	}
	checkAgainstTruth(t, crashed, crashReads, false)

	// The same seed without the restart builds the same cars.
	straight, _ := runToEnd(t, Config{Seed: 11, Speed: 600, Cars: 6, TruthPath: filepath.Join(dir, "straight.jsonl")})
	if !sameTruth(truth, straight) {
		t.Errorf("a restarted run built other cars than a straight run with the same seed")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sameTruth compares two truth files irrespective of line order (cars can
// overtake one another at the rework bay).
func sameTruth(a, b []TruthCar) bool {
	norm := func(cs []TruthCar) []string {
		var out []string
		for _, c := range cs {
			j, _ := json.Marshal(c)
			out = append(out, string(j))
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(norm(a), norm(b))
}

// TestNothingShownBeforeSaved checks that a PLC shows nothing it has not
// made retentive: while its state cannot be saved its outputs stay frozen,
// and they move on once saving works again.
func TestNothingShownBeforeSaved(t *testing.T) {
	dir := t.TempDir()
	// A directory where the state's temporary file goes makes every save fail.
	blocker := filepath.Join(dir, StateFile+".tmp")
	if err := os.Mkdir(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startPlant(t, Config{Seed: 4, Speed: 600, Cars: 2, Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	w01 := p.Stations()[0]
	c := connect(t, t.Context(), w01.Endpoint)
	nodes := []string{w01.Nodes[TagDataReady], w01.Nodes[TagCycleCounter], w01.Nodes[TagVinPresent], w01.Nodes[TagHeartbeat]}

	waitFor(t, 20*time.Second, "W01 to finish a cycle in memory", func() bool { return p.Stats().Stations[0].CycleCounter >= 1 })
	dvs, err := readValues(t.Context(), c, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if dvs[0].Value.Bool() || dvs[1].Value.Value() != uint32(0) || dvs[2].Value.String() != "" {
		t.Errorf("unsaved state shown: DataReady %v CycleCounter %v VinPresent %q",
			dvs[0].Value.Bool(), dvs[1].Value.Value(), dvs[2].Value.String())
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil {
		t.Errorf("state file written although every save fails")
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "W01 result shown", func() bool {
		dvs, err := readValues(t.Context(), c, nodes)
		if err != nil {
			t.Fatal(err)
		}
		return dvs[0].Value.Bool() && dvs[1].Value.Value() == uint32(1)
	})
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st plantState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Stations[0].CycleCounter < 1 || len(st.Stations[0].Pending) < 1 {
		t.Errorf("shown result not in the saved state: %+v", st.Stations[0])
	}
}
