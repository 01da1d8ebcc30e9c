package simulator

import (
	"path/filepath"
	"testing"
	"time"
)

func stationStats(p *Plant, id string) StationStats {
	for _, s := range p.Stats().Stations {
		if s.ID == id {
			return s
		}
	}
	return StationStats{}
}

// ResetCounters with results waiting: they keep their counters, the next
// cycle is 1 again, the state reloads across a plant restart, and every
// cycle is shown once and in the truth.
func TestResetCountersKeepsTheQueue(t *testing.T) {
	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	cfg := Config{Seed: 7, Speed: 600, Cars: 6, MaxUnacked: 10, Dir: filepath.Join(dir, "state"), TruthPath: truthPath}

	// Nobody acknowledges: W01's results wait.
	p1 := startPlant(t, cfg)
	waitFor(t, 30*time.Second, "two W01 results waiting", func() bool { return stationStats(p1, "W01").Unacked >= 2 })
	state := stationStats(p1, "W01").StateCounter
	if err := p1.ResetCounters("W01"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "W01's reset", func() bool {
		s := stationStats(p1, "W01")
		return s.CycleCounter < 2 && s.StateCounter < state
	})
	// A cycle after the reset waits behind those from before it.
	waitFor(t, 30*time.Second, "W01's cycle 1 after the reset", func() bool {
		s := stationStats(p1, "W01")
		return s.CycleCounter == 1 && s.Unacked >= 3
	})
	if err := p1.ResetCounters("NOPE"); err == nil {
		t.Error("ResetCounters of an unknown station: no error")
	}
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	before := stationStats(p1, "W01")

	// The state with results from before and after the reset reloads.
	p2 := startPlant(t, cfg)
	if got := stationStats(p2, "W01"); got.CycleCounter != before.CycleCounter || got.Unacked != before.Unacked {
		t.Errorf("W01 resumed at cycle %d (%d unacked), want %d (%d)", got.CycleCounter, got.Unacked, before.CycleCounter, before.Unacked)
	}
	ackers, stop := startAckers(t, p2)
	waitDone(t, p2, 45*time.Second)
	stop()

	var counters []uint32
	vins := map[string]int{}
	for _, r := range ackers["W01"].got() {
		counters = append(counters, r.Counter)
		vins[r.VIN]++
	}
	restarts := 0
	for i := 1; i < len(counters); i++ {
		if counters[i] < counters[i-1] {
			restarts++
			if counters[i] != 1 {
				t.Errorf("W01's first cycle after the reset is %d, want 1 (%v)", counters[i], counters)
			}
		}
	}
	if restarts != 1 || counters[0] != 1 {
		t.Errorf("W01 showed counters %v, want 1.. once before and once after the reset", counters)
	}
	truth := readTruth(t, truthPath)
	if len(truth) != cfg.Cars {
		t.Fatalf("truth has %d cars, want %d", len(truth), cfg.Cars)
	}
	for _, c := range truth {
		if vins[c.VIN] != 1 {
			t.Errorf("car %s: W01 showed it %d times, want 1", c.VIN, vins[c.VIN])
		}
	}
	if len(vins) != cfg.Cars {
		t.Errorf("W01 showed %d cars, want %d", len(vins), cfg.Cars)
	}
}
