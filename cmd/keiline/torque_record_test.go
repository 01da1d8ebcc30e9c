package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keiline/keiline/cmd/keiline/cli"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/simulator/torque"
	"github.com/nats-io/nats.go/jetstream"
)

// recordRig is a tracker recording the stream into a PostgreSQL of the
// test's own, as keiline tracker does.
type recordRig struct {
	url   string
	store *schema.Store
	tr    *pipeline.Tracker
}

// startRecord starts a tracker for the default line lc on js, recording
// into the database at url (pgtest.NewDB).
func startRecord(t *testing.T, url string, js jetstream.JetStream, lc *line.Config) *recordRig {
	t.Helper()
	store, err := schema.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	route := pipeline.Route{Plant: lc.Plant, Line: lc.Line}
	for _, s := range lc.Stations {
		route.Stations = append(route.Stations, pipeline.RouteStation{ID: s.ID, Optional: s.Optional})
		if s.Zone == "quality" && !s.Optional {
			route.Gate = s.ID
		}
	}
	tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: route, Identity: lc.Identity, Store: store, JetStream: js,
		Logger: slog.New(slog.DiscardHandler), Torque: &pipeline.TorqueConfig{ClassA: lc.ClassAJoints}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tracker: %v", err)
		}
	})
	return &recordRig{url: url, store: store, tr: tr}
}

// exported returns the tightenings of trace export by event id, failing
// on one exported twice.
func (r *recordRig) exported(t *testing.T) map[string]schema.TighteningRecord {
	t.Helper()
	out := map[string]schema.TighteningRecord{}
	err := r.store.Export(t.Context(), func(c schema.CarRecord) error {
		for _, x := range c.Tightenings {
			if _, dup := out[x.EventID]; dup {
				t.Fatalf("trace export has tightening %s twice", x.EventID)
			}
			if x.VIN != c.VIN {
				t.Errorf("tightening %s of %s exported under car %s", x.EventID, x.VIN, c.VIN)
			}
			out[x.EventID] = x
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cliExport runs keiline trace export against the rig's database and
// returns the tightenings it exported by event id, failing on one exported
// twice or under another car.
func (r *recordRig) cliExport(t *testing.T) map[string]schema.TighteningRecord {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := keiline(t.Context(), "trace", "export", "--jsonl", "--db", r.url)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("trace export: %v\n%s", err, errb.String())
	}
	got := map[string]schema.TighteningRecord{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var c schema.CarRecord
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("trace export: %v: %s", err, sc.Text())
		}
		for _, x := range c.Tightenings {
			if _, dup := got[x.EventID]; dup || x.VIN != c.VIN {
				t.Errorf("trace export: tightening %s twice, or under car %s (its VIN %s)", x.EventID, c.VIN, x.VIN)
			}
			got[x.EventID] = x
		}
	}
	return got
}

// checkRecord compares the controllers' truth with keiline trace export: every
// tightening in the record once, with the controller's values, and an
// audit that finds nothing wrong. It returns the record's tightenings.
func checkRecord(t *testing.T, p *agentProcess, r *recordRig, plant *simulator.Plant) map[string]schema.TighteningRecord {
	t.Helper()
	stationOf := map[string]string{}
	var truth []torque.Tightening
	for _, c := range plant.Controllers() {
		stationOf[c.ID] = c.Station
		truth = append(truth, plant.Controller(c.ID).Truth()...)
	}
	waitUntil(t, p, "every tightening in the record", func() bool { return len(r.exported(t)) >= len(truth) })
	got := r.cliExport(t)
	if len(got) != len(truth) || len(truth) == 0 {
		t.Errorf("the record has %d tightenings, the controllers made %d", len(got), len(truth))
	}
	for _, x := range truth {
		id := event.TighteningEventID("US1", "L1", stationOf[x.Controller], x.Controller, x.ID)
		rec, ok := got[id]
		if !ok {
			t.Errorf("%s tightening %d not in the record", x.Controller, x.ID)
			continue
		}
		if rec.VIN != x.VIN || rec.Pset != x.Pset || rec.BatchCounter != x.BatchCounter || (rec.Result == event.StatusOK) != x.OK ||
			rec.TorqueNm == nil || math.Abs(*rec.TorqueNm*100-float64(x.Torque)) > 0.5 || rec.AngleDeg == nil || *rec.AngleDeg != float64(x.Angle) ||
			rec.Class != line.ClassA || rec.Joint == "" || rec.Station != stationOf[x.Controller] {
			t.Errorf("%s tightening %d:\n record %+v\n truth  %+v", x.Controller, x.ID, rec, x)
		}
	}
	a, err := r.store.Audit(t.Context(), schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range a.Problems {
		t.Errorf("audit: %s", pr)
	}
	return got
}

// checkTraceQuestions asks keiline trace the tightening questions of the
// issue — by tool, by controller, by pset — and the birth record of a car,
// and compares the answers with the controllers' truth.
func checkTraceQuestions(t *testing.T, r *recordRig, plant *simulator.Plant) {
	t.Helper()
	ask := func(args ...string) []byte {
		var out, errb bytes.Buffer
		cmd := keiline(t.Context(), append(append([]string{"trace"}, args...), "--db", r.url)...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("trace %v: %v\n%s", args, err, errb.String())
		}
		return out.Bytes()
	}
	count := func(args ...string) int {
		var a schema.WindowAnswer
		if err := json.Unmarshal(ask(append(args, "--last", "24h", "--json")...), &a); err != nil {
			t.Fatalf("trace %v: %v", args, err)
		}
		return len(a.Tightenings)
	}
	nr1 := plant.Controller("C04-NR1").Truth()
	if n := count("tightenings", "--controller", "C04-NR1"); n != len(nr1) {
		t.Errorf("trace tightenings --controller C04-NR1: %d, the controller made %d", n, len(nr1))
	}
	if n := count("tightenings", "--tool", nr1[0].ToolSerial); n != len(nr1) {
		t.Errorf("trace tightenings --tool %s: %d, its controller made %d", nr1[0].ToolSerial, n, len(nr1))
	}
	want := 0
	for _, id := range []string{"F01-NR1", "F01-NR2"} {
		for _, x := range plant.Controller(id).Truth() {
			if x.Pset == 1 {
				want++
			}
		}
	}
	if n := count("tightenings", "--station", "F01", "--pset", "1"); n != want || n == 0 {
		t.Errorf("trace tightenings --station F01 --pset 1: %d, the seat controllers made %d", n, want)
	}
	birth := string(ask("vin", nr1[0].VIN))
	if !strings.Contains(birth, "TIGHTENINGS") || !strings.Contains(birth, "C04-NR1") || !strings.Contains(birth, "lug_fl_1") {
		t.Errorf("trace vin %s shows no tightenings:\n%s", nr1[0].VIN, birth)
	}
}

// TestUpTorqueExportEqualsTruth runs keiline up with the simulated
// tightening controllers: trace export equals the plant's truth, car by
// car (the stations as the PLCs built them), every tightening of the
// torque truth file is in the export once, on its car, with the
// controller's values and the joint the operator tightened, and the audit
// finds the record intact.
func TestUpTorqueExportEqualsTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	dir := t.TempDir()
	state, truth, torqueTruth := filepath.Join(dir, "state"), filepath.Join(dir, "t.jsonl"), filepath.Join(dir, "torque.jsonl")
	var out bytes.Buffer
	cmd := keiline(t.Context(), "up", "--torque", "--torque-truth", torqueTruth, "--cars", "20", "--seed", "7", "--speed", "200",
		"--truth", truth, "--state", state, "--http", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	exp := export(t, state)
	// The stations against the truth file; the tightenings against the
	// torque truth file.
	var stationsOnly bytes.Buffer
	got := map[string]schema.TighteningRecord{}
	sc := bufio.NewScanner(bytes.NewReader(exp))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var car map[string]any
		if err := json.Unmarshal(sc.Bytes(), &car); err != nil {
			t.Fatal(err)
		}
		delete(car, "tightenings")
		b, _ := json.Marshal(car)
		stationsOnly.Write(append(b, '\n'))
		var c schema.CarRecord
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		for _, x := range c.Tightenings {
			if _, dup := got[x.EventID]; dup || x.VIN != c.VIN {
				t.Errorf("tightening %s twice, or under car %s (its VIN %s)", x.EventID, c.VIN, x.VIN)
			}
			got[x.EventID] = x
		}
	}
	tb, err := os.ReadFile(truth)
	if err != nil {
		t.Fatal(err)
	}
	compareTruth(t, tb, stationsOnly.Bytes(), 20)
	tt, err := os.ReadFile(torqueTruth)
	if err != nil {
		t.Fatal(err)
	}
	made := 0
	sc = bufio.NewScanner(bytes.NewReader(tt))
	for sc.Scan() {
		var x simulator.TruthTightening
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		made++
		id := event.TighteningEventID(cli.PlantDefault, cli.LineDefault, x.Station, x.Controller, x.ID)
		rec, ok := got[id]
		if !ok || rec.VIN != x.VIN || rec.Joint != x.Joint || (rec.Result == event.StatusOK) != x.OK || rec.Pset != x.Pset ||
			rec.TorqueNm == nil || math.Abs(*rec.TorqueNm*100-float64(x.Torque)) > 0.5 || rec.ToolSerial != x.ToolSerial {
			t.Errorf("tightening %s:\n record %+v\n truth  %+v", id, rec, x)
		}
	}
	if made == 0 || len(got) != made {
		t.Errorf("the export has %d tightenings, the controllers made %d", len(got), made)
	}
	// The agent publishes a station's cycle once the car's batches are
	// durable (stations/cycleorder.go): no class A joint is taken for
	// missing, even for a moment, while every controller works — unless the
	// agent said it gave up waiting for that car (a machine so loaded that
	// a result took longer than stations.TighteningWaitMax to be durable).
	agentLog, err := os.ReadFile(filepath.Join(state, "keiline.log"))
	if err != nil {
		t.Fatal(err)
	}
	gaveUp := func(vin string) bool {
		for _, l := range strings.Split(string(agentLog), "\n") {
			if strings.Contains(l, "cycle published before its tightening batches are durable") && strings.Contains(l, vin) {
				return true
			}
		}
		return false
	}
	cars := map[string]bool{}
	for _, x := range got {
		cars[x.VIN] = true
	}
	for vin := range cars {
		b, err := keiline(t.Context(), "trace", "vin", vin, "--json", "--state", state).Output()
		if err != nil {
			t.Fatalf("trace vin %s: %v", vin, err)
		}
		var birth schema.BirthRecord
		if err := json.Unmarshal(b, &birth); err != nil {
			t.Fatal(err)
		}
		for _, h := range birth.Holds {
			if h.Kind == schema.HoldMissing && !gaveUp(vin) {
				t.Errorf("%s: a %s hold at %s (%s): the station's cycle was published before its tightenings", vin, h.Kind, h.Station, h.Reason)
			}
		}
	}
	if b, err := keiline(t.Context(), "audit", "verify", "--state", state).CombinedOutput(); err != nil {
		t.Errorf("audit verify: %v\n%s", err, b)
	}
}
