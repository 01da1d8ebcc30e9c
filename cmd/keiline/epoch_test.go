package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/testplc"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/simulator"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// plantStation is station id of the plant's last stats.
func plantStation(p *simulator.Plant, id string) simulator.StationStats {
	for _, s := range p.Stats().Stations {
		if s.ID == id {
			return s
		}
	}
	return simulator.StationStats{}
}

// hasLine reports whether a line of log holds every one of parts.
func hasLine(log string, parts ...string) bool {
	for l := range strings.SplitSeq(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestCounterResetEndToEnd is issue 14's acceptance line: a simulated
// PLC's counters are reset mid-run (a CPU swap) while the agent runs, and
// another's while the agent is down after a kill -9; every cycle after
// each reset is in the record once, next to the old ones: the trace
// export equals the simulator's truth, and audit verify finds the record
// intact with no conflict.
func TestCounterResetEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const cars = 24
	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	plant, err := simulator.New(simulator.Config{Dir: filepath.Join(dir, "plant"), Seed: 7, Speed: 200, Cars: cars, TruthPath: truthPath,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plant.Stop() })
	b, err := broker.Start(broker.Config{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	nc, err := nats.Connect(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	lc := testplc.SimLine(t, plant)
	lc.PollInterval = 20 * time.Millisecond
	y, err := lc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "line.yaml")
	if err := os.WriteFile(cfg, y, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	tracker := startPart(t, "tracker", "--config", cfg, "--nats", b.URL(), "--state", state)
	agentArgs := []string{"agent", "--config", cfg, "--nats", b.URL(), "--spool", filepath.Join(dir, "spool.db")}
	agent := startAgentProcess(t, agentArgs)
	logs := func() string { return agent.out.String() }
	defer func() {
		if t.Failed() {
			t.Logf("tracker:\n%s\nagent:\n%s", tracker.output(), logs())
		}
	}()

	// T02's counters go back while the agent runs.
	waitUntil(t, agent, "T02 at cycle 4", func() bool { return plantStation(plant, "T02").CycleCounter >= 4 })
	if err := plant.ResetCounters("T02"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, agent, "T02's new epoch", func() bool { return hasLine(logs(), "PLC counter went back", "T02") })

	// C02's go back while the agent is down after a kill -9.
	waitUntil(t, agent, "C02 at cycle 3", func() bool { return plantStation(plant, "C02").CycleCounter >= 3 })
	first := logs()
	agent.kill9(t)
	before := plantStation(plant, "C02").CycleCounter
	if before >= cars-2 {
		t.Fatalf("C02 made %d of %d cycles: too few left for the test", before, cars)
	}
	if err := plant.ResetCounters("C02"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, agent, "C02's reset", func() bool { return plantStation(plant, "C02").CycleCounter < before })
	agent = startAgentProcess(t, agentArgs)
	logs = func() string { return first + agent.out.String() }
	select {
	case <-plant.Done():
	case <-time.After(3 * time.Minute):
		t.Fatalf("plant not done: %+v", plant.Stats())
	}
	for _, st := range []string{"T02", "C02"} {
		if !hasLine(logs(), "PLC counter went back", "station="+st, "counter=CycleCounter", "epoch=1") {
			t.Errorf("no log line of %s's new epoch 1", st)
		}
	}

	// The record equals the truth: every cycle once, the old and the new.
	tb, err := os.ReadFile(truthPath)
	if err != nil {
		t.Fatal(err)
	}
	want := canonical(t, "truth", tb)
	var got []byte
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got = export(t, state)
		g := canonical(t, "export", got)
		same := len(g) == len(want)
		for v, w := range want {
			same = same && g[v] == w
		}
		if same || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	compareTruth(t, tb, got, cars)
	var out bytes.Buffer
	verify := keiline(t.Context(), "audit", "verify", "--state", state)
	verify.Stdout, verify.Stderr = &out, &out
	if err := verify.Run(); err != nil || !strings.Contains(out.String(), "record intact") || strings.Contains(out.String(), "CONFLICT") {
		t.Errorf("audit verify: %v\n%s", err, out.String())
	}
}
