package stations_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/stations"
	"github.com/prometheus/client_golang/prometheus"
)

// stationStats is the plant's station st.
func stationStats(t *testing.T, p *simulator.Plant, st string) simulator.StationStats {
	t.Helper()
	for _, s := range p.Stats().Stations {
		if s.ID == st {
			return s
		}
	}
	t.Fatalf("no station %s in the plant", st)
	return simulator.StationStats{}
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitUntil(t *testing.T, r *rig, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen\nplant: %+v\nagent log:\n%s", what, r.plant.Stats(), r.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamEvents returns the stream's events from seq from on, in order.
func streamEvents(t *testing.T, r *rig, from uint64) []*event.Event {
	t.Helper()
	s, err := r.js.Stream(t.Context(), event.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	for seq := max(from, info.State.FirstSeq); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		out = append(out, ev)
	}
	return out
}

func lastSeq(t *testing.T, r *rig) uint64 {
	t.Helper()
	s, err := r.js.Stream(t.Context(), event.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// epochGauge is keiline_agent_counter_epoch{station, kind}.
func epochGauge(t *testing.T, station, kind string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keiline_agent_counter_epoch" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["station"] == station && labels["kind"] == kind {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no keiline_agent_counter_epoch{station=%q,kind=%q}", station, kind)
	return 0
}

// hasEpoch reports whether the stream holds a cycle event of station in
// epoch (its id says so and its data agrees).
func hasEpoch(t *testing.T, r *rig, station string, epoch uint32) bool {
	t.Helper()
	s, err := r.js.Stream(t.Context(), event.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), event.Subject("US1", "L1", station, event.KindCycle))
	if err != nil {
		return false
	}
	ev, err := event.Decode(m.Data)
	if err != nil {
		t.Fatalf("stream message %d: %v", m.Sequence, err)
	}
	c, err := ev.Cycle()
	return err == nil && c.Epoch == epoch && strings.Contains(ev.ID, fmt.Sprintf(".cycle.e%d.", epoch))
}

// A PLC whose counters go back (a CPU swap) mid-run: the agent starts a
// new epoch, so the cycles after the reset get new ids and none is taken
// for an old one; an agent restarted keeps the epoch, and notices a reset
// made while it was down.
func TestAgentStartsACounterEpochWhenThePLCCounterGoesBack(t *testing.T) {
	const cars = 14
	spoolCfg := stations.SpoolConfig{Path: filepath.Join(t.TempDir(), "spool.db")}
	r := newRigWith(t, rigOptions{cars: cars, noAgent: true, spool: &spoolCfg})
	stop := r.startAgent(t)
	defer func() { stop() }()

	// Q01's counters go back while the agent runs.
	waitUntil(t, r, "Q01 at cycle 3", func() bool { return stationStats(t, r.plant, "Q01").CycleCounter >= 3 })
	if err := r.plant.ResetCounters("Q01"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, r, "Q01's epoch 1", func() bool { return epochGauge(t, "Q01", "cycle") == 1 })
	waitUntil(t, r, "a Q01 cycle of epoch 1", func() bool { return hasEpoch(t, r, "Q01", 1) })

	// The agent stops; F04's counters (upstream, ahead of Q01's) go back
	// while it is down; a new agent starts with the spool reopened. Both
	// stations have cycles to make after the restart.
	stop()
	if n := stationStats(t, r.plant, "F04").CycleCounter; n > cars-4 {
		t.Fatalf("F04 made %d cycles: too few cars left for the test", n)
	}
	if err := r.spool.Close(); err != nil {
		t.Fatal(err)
	}
	before := stationStats(t, r.plant, "F04").CycleCounter
	if err := r.plant.ResetCounters("F04"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, r, "F04's reset", func() bool { return stationStats(t, r.plant, "F04").CycleCounter < before })
	restartSeq := lastSeq(t, r)
	r.openSpool(t, spoolCfg)
	stop = r.startAgent(t)
	r.waitDone(t)

	// Every cycle once, none lost, none taken for another.
	checkAgainstTruth(t, r, cars)
	if t.Failed() {
		return
	}
	counts := map[string]map[uint32]int{}
	for _, ev := range streamEvents(t, r, restartSeq+1) {
		if ev.Kind != event.KindCycle || (ev.Station != "Q01" && ev.Station != "F04") {
			continue
		}
		c, err := ev.Cycle()
		if err != nil {
			t.Fatal(err)
		}
		if want := event.EventID(ev.Plant, ev.Line, ev.Station, ev.Kind, c.Epoch, uint64(c.Counter)); ev.ID != want {
			t.Errorf("event %s: id, want %s", ev.ID, want)
		}
		if counts[ev.Station] == nil {
			counts[ev.Station] = map[uint32]int{}
		}
		counts[ev.Station][c.Epoch]++
	}
	// After the restart Q01 keeps epoch 1; F04, whose reset the agent did
	// not see happen, starts epoch 1 (after any cycle it showed from
	// before its reset).
	if counts["Q01"][1] == 0 || len(counts["Q01"]) != 1 {
		t.Errorf("Q01 cycles after the agent restart by epoch: %v, want only epoch 1", counts["Q01"])
	}
	if counts["F04"][1] == 0 || counts["F04"][2] > 0 {
		t.Errorf("F04 cycles after the agent restart by epoch: %v, want epoch 1 (and 0 before it)", counts["F04"])
	}
	for _, g := range []struct {
		st   string
		want float64
	}{{"Q01", 1}, {"F04", 1}, {"C04", 0}} {
		if v := epochGauge(t, g.st, "cycle"); v != g.want {
			t.Errorf("keiline_agent_counter_epoch{station=%s,kind=cycle} = %v, want %v", g.st, v, g.want)
		}
	}
	stateE1 := false
	for _, ev := range streamEvents(t, r, 0) {
		if ev.Station == "Q01" && ev.Kind == event.KindState && strings.Contains(ev.ID, ".state.e1.") {
			stateE1 = true
		}
	}
	if !stateE1 {
		t.Errorf("no Q01 state event of epoch 1 after its StateCounter went back")
	}
	for _, st := range []string{"Q01", "F04"} {
		if !logHas(r.logs.String(), "PLC counter went back", "station="+st, "epoch=1") {
			t.Errorf("no log line of %s's new epoch\nagent log:\n%s", st, r.logs.String())
		}
	}
}

// logHas reports whether a line of log holds every one of parts.
func logHas(log string, parts ...string) bool {
	for line := range strings.SplitSeq(log, "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
