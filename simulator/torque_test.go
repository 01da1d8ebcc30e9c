package simulator

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// opLink is a bare Open Protocol link to a simulated controller, as a test
// MES would hold it: commands only, no result subscription.
type opLink struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialTool(t *testing.T, addr string) *opLink {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	l := &opLink{conn: conn, r: bufio.NewReader(conn)}
	if mid := l.do(t, 1, ""); mid != 2 {
		t.Fatalf("%s: communication start answered with MID %04d", addr, mid)
	}
	return l
}

// do sends MID mid with data and returns the MID of the answer.
func (l *opLink) do(t *testing.T, mid int, data string) int {
	t.Helper()
	f := fmt.Sprintf("%04d%04d001         %s\x00", 20+len(data), mid, data)
	if _, err := io.WriteString(l.conn, f); err != nil {
		t.Fatal(err)
	}
	_ = l.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	head := make([]byte, 20)
	if _, err := io.ReadFull(l.r, head); err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(string(head[:4]))
	if _, err := io.ReadFull(l.r, make([]byte, n-20+1)); err != nil {
		t.Fatal(err)
	}
	got, _ := strconv.Atoi(string(head[4:8]))
	return got
}

// setTool sets a controller for a car as the MES would: disabled while
// the VIN and pset change (a pset selection starts the batch over), then
// enabled.
func (l *opLink) setTool(t *testing.T, vin string, pset int) {
	t.Helper()
	for _, c := range []struct {
		mid  int
		data string
	}{{42, ""}, {50, fmt.Sprintf("%-25s", vin)}, {18, fmt.Sprintf("%03d", pset)}, {43, ""}} {
		if got := l.do(t, c.mid, c.data); got != 5 {
			t.Fatalf("MID %04d answered with MID %04d", c.mid, got)
		}
	}
}

func readTorqueTruth(t *testing.T, path string) []TruthTightening {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []TruthTightening
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var tt TruthTightening
		if err := json.Unmarshal([]byte(l), &tt); err != nil {
			t.Fatalf("torque truth %q: %v", l, err)
		}
		out = append(out, tt)
	}
	return out
}

// TestTorqueStations: with controllers the wheel and seat stations wait
// for their tools, which tighten only when the MES has set them for the
// car (VIN, the model's parameter set, enabled); every tightening is in the
// torque truth with the joint its batch position names, and the PLC
// blocks of those stations carry no joints. A restarted plant's
// controllers go on where they stopped.
func TestTorqueStations(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Seed: 3, Speed: 300, Cars: 3, Dir: filepath.Join(dir, "plant"), TruthPath: filepath.Join(dir, "truth.jsonl"),
		TorqueTruthPath: filepath.Join(dir, "torque.jsonl"), Torque: true}
	p := startPlant(t, cfg)
	cis := p.Controllers()
	if len(cis) != 6 || cis[0].ID != "C04-NR1" || cis[0].Psets["KT"] != 2 || cis[0].Psets["KW"] != 1 || cis[5].Joints[3] != "seat_m10_8" || cis[5].Address == "" {
		t.Fatalf("controllers: %+v", cis)
	}
	links := map[string]*opLink{}
	for _, ci := range cis {
		links[ci.ID] = dialTool(t, ci.Address)
	}
	ackers, stop := startAckers(t, p)
	defer stop()

	// The first car waits at C04 for its tools.
	waitFor(t, 30*time.Second, "a car waiting at C04", func() bool {
		return p.Stats().Stations[stationIndex["C04"]].FaultText == fmt.Sprintf(FaultTextWaitingTool, "C04-NR1")
	})
	c04 := p.Stats().Stations[stationIndex["C04"]]
	if c04.State != StateBlocked || c04.VIN == "" {
		t.Fatalf("C04 while its tools are disabled: %+v", c04)
	}
	if n := len(p.Controller("C04-NR1").Truth()); n != 0 {
		t.Fatalf("%d tightenings with the tool disabled", n)
	}
	// The other wheels' tools set right finish their batches; the first
	// one, enabled with the other model's parameter set, keeps the car
	// waiting.
	right := cis[0].Psets[c04.VIN[3:5]]
	links["C04-NR1"].setTool(t, c04.VIN, 3-right)
	for _, id := range []string{"C04-NR2", "C04-NR3", "C04-NR4"} {
		links[id].setTool(t, c04.VIN, right)
	}
	waitFor(t, 30*time.Second, "the other wheels' batches", func() bool {
		for _, id := range []string{"C04-NR2", "C04-NR3", "C04-NR4"} {
			if last, ok := p.Controller(id).Last(); !ok || last.BatchStatus != 1 {
				return false
			}
		}
		return true
	})
	if n := len(p.Controller("C04-NR1").Truth()); n != 0 {
		t.Fatalf("C04-NR1 made %d tightenings with the wrong parameter set", n)
	}
	if st := p.Stats().Stations[stationIndex["C04"]]; st.VIN != c04.VIN || st.FaultText != fmt.Sprintf(FaultTextWaitingTool, "C04-NR1") {
		t.Fatalf("C04 with C04-NR1 set wrong: %+v", st)
	}

	// The test's MES: each tool set for the car at its station.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() {
		set := map[string]string{"C04-NR2": c04.VIN, "C04-NR3": c04.VIN, "C04-NR4": c04.VIN}
		for ctx.Err() == nil {
			st := p.Stats()
			for _, ci := range cis {
				vin := st.Stations[stationIndex[ci.Station]].VIN
				if vin != "" && set[ci.ID] != vin {
					links[ci.ID].setTool(t, vin, ci.Psets[vin[3:5]])
					set[ci.ID] = vin
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	waitDone(t, p, 60*time.Second)
	cancel()
	wg.Wait()
	stop()

	truth := readTruth(t, cfg.TruthPath)
	tt := readTorqueTruth(t, cfg.TorqueTruthPath)
	byCar := map[string][]string{} // VIN → station:joint of the OK tightenings
	for i, x := range tt {
		if x.Joint == "" || x.VIN == "" {
			t.Errorf("tightening %d: joint %q VIN %q", i, x.Joint, x.VIN)
		}
		if x.OK {
			byCar[x.VIN] = append(byCar[x.VIN], x.Station+":"+x.Joint)
		}
	}
	for _, car := range truth {
		got := byCar[car.VIN]
		slices.Sort(got)
		if len(got) != 24 || len(slices.Compact(slices.Clone(got))) != 24 || got[0] != "C04:lug_fl_1" || got[15] != "C04:lug_rr_4" || got[23] != "F01:seat_m10_8" {
			t.Errorf("car %s (%s): OK tightenings %v, want the 16 wheel nuts and 8 seat bolts", car.VIN, car.Model, got)
		}
		for _, s := range car.Stations {
			if torqueStations[s.Station] && len(s.Joints) != 0 {
				t.Errorf("car %s: station %s's PLC reported %d joints", car.VIN, s.Station, len(s.Joints))
			}
		}
	}
	for _, x := range tt {
		ps := 1
		if x.VIN[3:5] == "KT" && x.Station == "C04" {
			ps = 2
		}
		if x.Pset != ps {
			t.Errorf("tightening %s %d for %s: pset %d, want %d", x.Controller, x.ID, x.VIN, x.Pset, ps)
		}
	}
	checkAgainstTruth(t, truth, collect(ackers), true)

	// A restart: the controllers keep their ids and the truth its lines.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	cfg.Cars = 4
	p2 := startPlant(t, cfg)
	made := 0
	for _, x := range tt {
		if x.Controller == "C04-NR1" {
			made++
		}
	}
	if got := p2.Controller("C04-NR1").Truth(); len(got) != made || made == 0 {
		t.Errorf("C04-NR1 after a restart keeps %d tightenings, want %d", len(got), made)
	}
	if again := readTorqueTruth(t, cfg.TorqueTruthPath); len(again) != len(tt) {
		t.Errorf("torque truth after a restart has %d lines, want %d", len(again), len(tt))
	}
}
