package stations_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
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
	const cars = 20
	spoolCfg := stations.SpoolConfig{Path: filepath.Join(t.TempDir(), "spool.db")}
	r := newRigWith(t, rigOptions{cars: cars, noAgent: true, spool: &spoolCfg})
	sent := watchSent(t, r)
	stop := r.startAgent(t)
	defer func() { stop() }()

	// Q01's counters go back while the agent runs.
	waitUntil(t, r, "Q01 at cycle 3", func() bool { return stationStats(t, r.plant, "Q01").CycleCounter >= 3 })
	if err := r.plant.ResetCounters("Q01"); err != nil {
		t.Fatal(err)
	}
	// The new epoch is durable before its first event is published.
	waitUntil(t, r, "Q01's epoch 1", func() bool { return epochGauge(t, "Q01", "cycle") == 1 })

	// The agent stops at once; F04's counters (upstream, ahead of Q01's)
	// go back while it is down; a new agent starts with the spool
	// reopened. Both stations have cycles to make after the restart.
	stop()
	qAtStop := stationStats(t, r.plant, "Q01").CycleCounter
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
	r.openSpool(t, spoolCfg)
	stop = r.startAgent(t)
	r.waitDone(t)
	if n := stationStats(t, r.plant, "Q01").CycleCounter; n <= qAtStop {
		t.Fatalf("Q01 made no cycle after the agent restart (%d since its reset)", n)
	}

	// Every cycle once, none lost, none taken for another; no id sent
	// twice with another content (the tracker would record a conflict).
	checkAgainstTruth(t, r, cars)
	sent.check(t)
	if t.Failed() {
		return
	}
	// Each station's cycles since its reset (its counter now) are of
	// epoch 1, those before of epoch 0: Q01 kept epoch 1 across the
	// restart, F04 started it after one.
	counts := map[string]map[uint32]int{}
	for _, ev := range streamEvents(t, r, 0) {
		if ev.Kind != event.KindCycle || (ev.Station != "Q01" && ev.Station != "F04") {
			continue
		}
		c, err := ev.Cycle()
		if err != nil {
			t.Fatal(err)
		}
		if counts[ev.Station] == nil {
			counts[ev.Station] = map[uint32]int{}
		}
		counts[ev.Station][c.Epoch]++
	}
	for _, st := range []string{"Q01", "F04"} {
		since := int(stationStats(t, r.plant, st).CycleCounter)
		if want := map[uint32]int{0: cars - since, 1: since}; !maps.Equal(counts[st], want) {
			t.Errorf("%s cycles by epoch: %v, want %v", st, counts[st], want)
		}
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
		if !logHas(r.logs.String(), "PLC counter went back", "station="+st, "counter=CycleCounter", "epoch=1") {
			t.Errorf("no log line of %s's new epoch\nagent log:\n%s", st, r.logs.String())
		}
	}
}

// sentWatch sees every cycle event the agents publish, also those
// JetStream drops as duplicates, by id. (Not state events: one in flight
// when the agent stops is sent again by the next with another
// occurred_at.)
type sentWatch struct {
	mu    sync.Mutex
	first map[string][]byte
	bad   []string
}

func watchSent(t *testing.T, r *rig) *sentWatch {
	t.Helper()
	w := &sentWatch{first: map[string][]byte{}}
	sub, err := r.js.Conn().Subscribe(event.LineSubjects("US1", "L1"), func(m *nats.Msg) {
		ev, err := event.Decode(m.Data)
		if err != nil || ev.Kind != event.KindCycle {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if prev, ok := w.first[ev.ID]; !ok {
			w.first[ev.ID] = m.Data
		} else if d := event.Differs(prev, m.Data); d != nil {
			w.bad = append(w.bad, fmt.Sprintf("%s sent again with another %v", ev.ID, d))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.js.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return w
}

func (w *sentWatch) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.bad {
		t.Errorf("conflict: %s", b)
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
