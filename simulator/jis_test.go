package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// jisCar is a car of a seeded plant and the JIS parts delivered for it.
type jisCar struct {
	index int
	plan  *carPlan
	parts []JISPart // in line order of the install stations
}

// wrongPart makes a part of the wrong variant.
type wrongPart struct {
	car      int // car index
	supplier string
}

// jisDeliveries returns the first n cars of a plant of seed (not in
// manifest mode) with the parts their suppliers deliver for them, numbered
// per supplier in car order, as the MES broadcast numbers them. The parts
// in wrong have a variant the car does not need.
func jisDeliveries(t *testing.T, seed int64, n int, wrong ...wrongPart) []jisCar {
	t.Helper()
	return jisDeliveriesFrom(t, seed, 1, n, wrong...)
}

// jisDeliveriesFrom is jisDeliveries for a plant in JIS mode from car from
// on: earlier cars get no parts delivered.
func jisDeliveriesFrom(t *testing.T, seed int64, from, n int, wrong ...wrongPart) []jisCar {
	t.Helper()
	pl := newPlanner(seed, WMIDefault)
	seq := make(map[string]int64)
	var cars []jisCar
	for k := 1; k <= n; k++ {
		c, err := pl.plan(k)
		if err != nil {
			t.Fatal(err)
		}
		jc := jisCar{index: k, plan: c}
		for _, s := range jisSuppliers {
			if !s.fits(c.Model) || k < from {
				continue
			}
			seq[s.Name]++
			v := s.variant(c)
			if slices.Contains(wrong, wrongPart{k, s.Name}) {
				v += "-X" // another variant than the car needs
			}
			jc.parts = append(jc.parts, JISPart{Supplier: s.Name, Seq: seq[s.Name], VIN: c.VIN,
				PartNumber: s.Prefix + "-" + v, Variant: v, Serial: fmt.Sprintf("%s-SN-%s", s.Prefix, c.VIN)})
		}
		cars = append(cars, jc)
	}
	return cars
}

// deliver delivers the parts of cars whose supplier keep accepts (nil:
// every supplier), in order.
func deliver(t *testing.T, p *Plant, cars []jisCar, keep func(JISPart) bool) {
	t.Helper()
	for _, c := range cars {
		for _, d := range c.parts {
			if keep != nil && !keep(d) {
				continue
			}
			if err := p.Deliver(d); err != nil {
				t.Fatalf("Deliver %+v: %v", d, err)
			}
		}
	}
}

// checkJISTruth checks that the truth holds exactly the cars, each built as
// the plant builds a car with its delivered parts installed, and that each
// install station shows the delivered part and its variant check.
func checkJISTruth(t *testing.T, seed int64, cars []jisCar, truth []TruthCar) {
	t.Helper()
	checkJISTruthFrom(t, seed, 1, cars, truth)
}

// checkJISTruthFrom is checkJISTruth for a plant in JIS mode from car from
// on.
func checkJISTruthFrom(t *testing.T, seed int64, from int, cars []jisCar, truth []TruthCar) {
	t.Helper()
	if len(truth) != len(cars) {
		t.Fatalf("truth has %d cars, want %d", len(truth), len(cars))
	}
	pl := newPlanner(seed, WMIDefault)
	pl.jisFrom = from
	pl.jisInstalls = func(k int) []JISPart { return cars[k-1].parts }
	for _, c := range cars {
		got, ok := truthOf(truth, c.plan.VIN)
		if !ok {
			t.Errorf("car %d %s not in the truth", c.index, c.plan.VIN)
			continue
		}
		checkRoute(t, got)
		want, err := pl.plan(c.index)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(truthCar(want))
		if string(g) != string(w) {
			t.Errorf("car %d: truth\n %s\nwant\n %s", c.index, g, w)
		}
		for _, d := range c.parts {
			s := jisSupplierByName(d.Supplier)
			k := slices.IndexFunc(got.Stations, func(ts TruthStation) bool { return ts.Station == s.Station })
			if k < 0 {
				t.Errorf("%s: no %s visit", got.VIN, s.Station)
				continue
			}
			ts := got.Stations[k]
			wantPart := Part{PartNumber: d.PartNumber, Serial: d.Serial, Supplier: s.Supplier}
			if !slices.Contains(ts.Parts, wantPart) {
				t.Errorf("%s at %s: parts %+v, want %+v among them", got.VIN, s.Station, ts.Parts, wantPart)
			}
			ok := d.Variant == s.variant(c.plan)
			ti := slices.IndexFunc(ts.Tests, func(tt Test) bool { return tt.Name == "JIS "+s.Name+" variant" })
			if ti < 0 || ts.Tests[ti].OK != ok || ok && ts.Result != "OK" && !hasNOK(ts, ti) || !ok && ts.Result != "NOK" {
				t.Errorf("%s at %s: result %s tests %+v; want variant test ok=%v", got.VIN, s.Station, ts.Result, ts.Tests, ok)
			}
			if len(ts.JIS) != 1 || ts.JIS[0].Serial != d.Serial || ts.JIS[0].Variant != d.Variant || ts.JIS[0].Seq != d.Seq || ts.JIS[0].OK != ok {
				t.Errorf("%s at %s: truth jis %+v, want the delivered %+v (ok %v)", got.VIN, s.Station, ts.JIS, d, ok)
			}
		}
	}
}

// truthOf returns the truth of the car with vin. Cars leave the line in
// framing order except that a car at R01 is overtaken.
func truthOf(truth []TruthCar, vin string) (TruthCar, bool) {
	k := slices.IndexFunc(truth, func(c TruthCar) bool { return c.VIN == vin })
	if k < 0 {
		return TruthCar{}, false
	}
	return truth[k], true
}

// hasNOK reports whether ts has a NOK joint or a NOK test other than
// test skip (a seeded NOK).
func hasNOK(ts TruthStation, skip int) bool {
	for _, j := range ts.Joints {
		if !j.OK {
			return true
		}
	}
	for k, tt := range ts.Tests {
		if k != skip && !tt.OK {
			return true
		}
	}
	return false
}

func TestJISSlots(t *testing.T) {
	p := startPlant(t, Config{Seed: 1, Speed: 600, JIS: true})
	off := LineStations()
	for i, si := range p.Stations() {
		parts, tests := off[i].Parts, off[i].Tests
		switch si.ID {
		case "T03", "C01", "F01":
			tests++
		case reworkStation:
			parts += 3
			tests += 3
		}
		if si.Parts != parts || si.Joints != off[i].Joints || si.Tests != tests {
			t.Errorf("%s in JIS mode: slots %d/%d/%d, want %d/%d/%d", si.ID, si.Parts, si.Joints, si.Tests, parts, off[i].Joints, tests)
		}
		for n := 1; n <= si.Tests; n++ {
			if si.Nodes[fmt.Sprintf("Test%d.Name", n)] == "" {
				t.Errorf("%s: no node for test slot %d", si.ID, n)
			}
		}
	}
	// The PLCs have the same slots without JIS mode (the JIS ones stay
	// empty), so one line config fits the plant in both modes.
	q := startPlant(t, Config{Seed: 1, Speed: 600})
	jis := p.Stations()
	for i, si := range q.Stations() {
		if si.Parts != jis[i].Parts || si.Joints != jis[i].Joints || si.Tests != jis[i].Tests || len(si.Nodes) != len(jis[i].Nodes) {
			t.Errorf("%s without JIS: slots %d/%d/%d, %d nodes; want %d/%d/%d, %d nodes as in JIS mode", si.ID, si.Parts, si.Joints, si.Tests, len(si.Nodes),
				jis[i].Parts, jis[i].Joints, jis[i].Tests, len(jis[i].Nodes))
		}
	}
}

func TestJISRightParts(t *testing.T) {
	const seed, n = 21, 10
	cars := jisDeliveries(t, seed, n)
	if !slices.ContainsFunc(cars, func(c jisCar) bool { return c.plan.Model == "KE" }) {
		t.Fatalf("no KE among the first %d cars of seed %d: pick another seed", n, seed)
	}
	truthPath := filepath.Join(t.TempDir(), "truth.jsonl")
	p := startPlant(t, Config{Seed: seed, Speed: 600, Cars: n, JIS: true, TruthPath: truthPath})
	deliver(t, p, cars, nil) // ahead of the line: the racks hold every car's parts
	ackers, stop := startAckers(t, p)
	waitPlantDone(t, p)
	stop()
	truth := readTruth(t, truthPath)
	checkJISTruth(t, seed, cars, truth)
	checkAgainstTruth(t, truth, collect(ackers), true)
	for _, c := range truth {
		for _, ts := range c.Stations {
			for _, j := range ts.JIS {
				if !j.OK {
					t.Errorf("%s at %s: JIS part %+v not OK", c.VIN, ts.Station, j)
				}
			}
		}
	}
	// Read over OPC UA: each install station showed the delivered serial.
	for _, c := range cars {
		for _, d := range c.parts {
			st := jisSupplierByName(d.Supplier).Station
			k := slices.IndexFunc(ackers[st].got(), func(r readResult) bool { return r.VIN == d.VIN })
			if k < 0 {
				t.Errorf("%s: no result of %s read", st, d.VIN)
				continue
			}
			r := ackers[st].got()[k]
			if !slices.ContainsFunc(r.Parts, func(pt Part) bool { return pt.Serial == d.Serial && pt.PartNumber == d.PartNumber }) {
				t.Errorf("%s result of %s: parts %+v, want serial %s", st, d.VIN, r.Parts, d.Serial)
			}
		}
	}
}

func TestJISWrongVariant(t *testing.T) {
	const seed, n = 22, 4
	cars := jisDeliveries(t, seed, n, wrongPart{2, JISSupplierSeats})
	truthPath := filepath.Join(t.TempDir(), "truth.jsonl")
	p := startPlant(t, Config{Seed: seed, Speed: 600, Cars: n, JIS: true, TruthPath: truthPath})
	deliver(t, p, cars, nil)
	ackers, stop := startAckers(t, p)
	waitPlantDone(t, p)
	stop()
	truth := readTruth(t, truthPath)
	checkJISTruth(t, seed, cars, truth)
	checkAgainstTruth(t, truth, collect(ackers), true)

	car, _ := truthOf(truth, cars[1].plan.VIN)
	bad := cars[1].parts[len(cars[1].parts)-1]
	want := jisSuppliers[2].variant(cars[1].plan)
	stations := make(map[string]TruthStation)
	for _, ts := range car.Stations {
		stations[ts.Station] = ts
	}
	f01 := stations["F01"]
	if f01.Result != "NOK" {
		t.Errorf("F01 with a wrong seat set: %s", f01.Result)
	}
	if !slices.Contains(f01.Tests, Test{Name: "JIS seats variant", Unit: "pass/fail", Value: 0, Low: 1, High: 1}) {
		t.Errorf("F01 tests %+v: want a failed JIS seats variant", f01.Tests)
	}
	r01, ok := stations[reworkStation]
	if !ok {
		t.Fatalf("car with a wrong seat set did not visit R01: %+v", car.Stations)
	}
	repl := Part{PartNumber: "SEAT-" + want, Serial: "R01-seats-" + car.VIN, Supplier: supSeat}
	if !slices.Contains(r01.Parts, repl) {
		t.Errorf("R01 parts %+v, want the replacement %+v", r01.Parts, repl)
	}
	if !slices.ContainsFunc(r01.Tests, func(tt Test) bool { return tt.Name == "JIS seats variant" && tt.OK && tt.Value == 1 }) {
		t.Errorf("R01 tests %+v: want a passed JIS seats variant re-test", r01.Tests)
	}
	if r01.Result != "OK" {
		t.Errorf("R01 result %s", r01.Result)
	}
	if len(r01.JIS) != 1 || r01.JIS[0].Replaces != bad.Serial || r01.JIS[0].Serial != repl.Serial || r01.JIS[0].Variant != want {
		t.Errorf("R01 truth jis %+v: want the replacement of %s", r01.JIS, bad.Serial)
	}
	// Over OPC UA: F01 showed the NOK, R01 the replacement.
	var f01Read, r01Read *readResult
	for _, r := range ackers["F01"].got() {
		if r.VIN == car.VIN {
			f01Read = &r
		}
	}
	for _, r := range ackers[reworkStation].got() {
		if r.VIN == car.VIN {
			r01Read = &r
		}
	}
	if f01Read == nil || f01Read.Status != "NOK" || !slices.ContainsFunc(f01Read.Parts, func(pt Part) bool { return pt.Serial == bad.Serial }) {
		t.Errorf("F01 read for %s: %+v", car.VIN, f01Read)
	}
	if r01Read == nil || !slices.Contains(r01Read.Parts, repl) {
		t.Errorf("R01 read for %s: %+v", car.VIN, r01Read)
	}
	// The other cars got their right parts and no rework for them.
	for _, c := range truth {
		if c.VIN == car.VIN {
			continue
		}
		for _, ts := range c.Stations {
			for _, j := range ts.JIS {
				if !j.OK || j.Replaces != "" {
					t.Errorf("%s at %s: %+v", c.VIN, ts.Station, j)
				}
			}
		}
	}
}

func TestJISWaits(t *testing.T) {
	const seed, n = 23, 2
	cars := jisDeliveries(t, seed, n)
	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	cfg := Config{Seed: seed, Speed: 600, Cars: n, JIS: true, TruthPath: truthPath, Dir: filepath.Join(dir, "state")}
	p := startPlant(t, cfg)
	// Every part but the cockpits.
	deliver(t, p, cars, func(d JISPart) bool { return d.Supplier != JISSupplierCockpit })
	ackers, stop := startAckers(t, p)

	t03 := p.Stations()[stationIndex["T03"]]
	c := connect(t, t.Context(), t03.Endpoint)
	wantText := fmt.Sprintf(FaultTextWaitingJIS, JISSupplierCockpit)
	if wantText != "waiting for JIS cockpit part" {
		t.Fatalf("fault text %q", wantText)
	}
	waitUntil(t, "T03 waiting for the cockpit", func() bool {
		vs, err := readTags(t.Context(), c, t03, TagState, TagFaultCode, TagFaultText, TagVinPresent, TagCycleCounter)
		if err != nil {
			t.Fatal(err)
		}
		return vs[TagState] == StateStarved && vs[TagFaultCode] == int32(0) && vs[TagFaultText] == wantText &&
			vs[TagVinPresent] == cars[0].plan.VIN && vs[TagCycleCounter] == uint32(0)
	})
	if st := p.Stats(); st.Out != 0 || st.Stations[stationIndex["T03"]].FaultText != wantText {
		t.Fatalf("stats while T03 waits: out %d, T03 %+v", st.Out, st.Stations[stationIndex["T03"]])
	}

	// The cockpits arrive; one is delivered twice (a supplier resending
	// after a crash): the second is ignored.
	deliver(t, p, cars, func(d JISPart) bool { return d.Supplier == JISSupplierCockpit })
	if err := p.Deliver(cars[0].parts[0]); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	waitPlantDone(t, p)
	stop()
	truth := readTruth(t, truthPath)
	checkJISTruth(t, seed, cars, truth)
	checkAgainstTruth(t, truth, collect(ackers), true)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	st := readState(t, cfg.Dir)
	for sup, rack := range st.JIS.Racks {
		if len(rack) != 0 {
			t.Errorf("rack %s left with %+v", sup, rack)
		}
	}
	if st.JIS.LastSeq[JISSupplierCockpit] != 2 || st.JIS.LastSeq[JISSupplierSeats] != 2 {
		t.Errorf("last seq %v", st.JIS.LastSeq)
	}
}

func TestJISRestart(t *testing.T) {
	const seed, n = 24, 12
	cars := jisDeliveries(t, seed, n, wrongPart{3, JISSupplierCockpit})
	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	cfg := Config{Seed: seed, Speed: 600, Cars: n, JIS: true, TruthPath: truthPath, Dir: filepath.Join(dir, "state")}

	// First run: every part delivered; stopped after T03 installed two
	// cockpits, before F01 installed any seats.
	p1 := startPlant(t, cfg)
	deliver(t, p1, cars, nil)
	ackers1, stop1 := startAckers(t, p1)
	waitUntil(t, "two cockpits installed", func() bool { return p1.Stats().Stations[stationIndex["T03"]].CycleCounter >= 2 })
	stop1()
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	saved := readState(t, cfg.Dir)
	if saved.Version != stateVersion || saved.JIS == nil || len(saved.JIS.Racks[JISSupplierSeats]) == 0 || len(saved.JIS.Installed) == 0 {
		t.Fatalf("saved state (version %d) has no seats on the rack or no installed parts: %+v", saved.Version, saved.JIS)
	}
	if saved.Out >= n {
		t.Fatalf("first run built every car; cannot test a restart")
	}

	// Second run: nothing delivered again but a redelivery of everything,
	// which is ignored; the racks and installed parts survived.
	p2 := startPlant(t, cfg)
	deliver(t, p2, cars, nil)
	ackers2, stop2 := startAckers(t, p2)
	waitPlantDone(t, p2)
	stop2()
	if err := p2.Stop(); err != nil {
		t.Fatal(err)
	}
	truth := readTruth(t, truthPath)
	checkJISTruth(t, seed, cars, truth)
	all := collect(ackers1)
	for id, rs := range collect(ackers2) {
		all[id] = append(all[id], rs...)
	}
	checkAgainstTruth(t, truth, all, true)
	if c, _ := truthOf(truth, cars[2].plan.VIN); !slices.ContainsFunc(c.Stations, func(ts TruthStation) bool { return ts.Station == reworkStation }) {
		t.Errorf("car 3 with a wrong cockpit did not visit R01")
	}
	final := readState(t, cfg.Dir)
	for sup, rack := range final.JIS.Racks {
		if len(rack) != 0 {
			t.Errorf("rack %s left with %+v", sup, rack)
		}
	}

	// A straight run with the same deliveries builds the same cars.
	straight := cfg
	straight.Dir, straight.TruthPath = "", filepath.Join(dir, "straight.jsonl")
	p3 := startPlant(t, straight)
	deliver(t, p3, cars, nil)
	_, stop3 := startAckers(t, p3)
	waitPlantDone(t, p3)
	stop3()
	if err := p3.Stop(); err != nil {
		t.Fatal(err)
	}
	if !sameTruth(truth, readTruth(t, straight.TruthPath)) {
		t.Errorf("a restarted run built other cars than a straight run")
	}
}

func TestJISDeliverErrors(t *testing.T) {
	good := JISPart{Supplier: JISSupplierSeats, Seq: 1, VIN: "7KL2KV4W1U0000011", PartNumber: "SEAT-KV-red", Variant: "KV-red", Serial: "S1"}

	off := startPlant(t, Config{Seed: 1, Speed: 600})
	if err := off.Deliver(good); err == nil || !strings.Contains(err.Error(), "not in JIS mode") {
		t.Errorf("Deliver without JIS mode: %v", err)
	}

	p, err := New(Config{Seed: 1, Speed: 600, JIS: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Deliver(good); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Deliver before Start: %v", err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		d    JISPart
		want string
	}{
		{"unknown supplier", JISPart{Supplier: "wheels", Seq: 1, VIN: good.VIN}, `unknown supplier "wheels" (want one of cockpit battery seats)`},
		{"seq 0", JISPart{Supplier: JISSupplierSeats, VIN: good.VIN}, "seq 0"},
		{"no VIN", JISPart{Supplier: JISSupplierSeats, Seq: 1}, "no VIN"},
		{"long serial", JISPart{Supplier: JISSupplierSeats, Seq: 1, VIN: good.VIN, Serial: strings.Repeat("x", 257)}, "Serial of 257 bytes"},
	} {
		if err := p.Deliver(tc.d); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if err := p.Deliver(good); err != nil {
		t.Errorf("Deliver: %v", err)
	}
	if err := p.Deliver(good); err != nil {
		t.Errorf("redelivery: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Deliver(good); !errors.Is(err, ErrStopped) {
		t.Errorf("Deliver after Stop: %v", err)
	}
}

func TestJISOffUnchanged(t *testing.T) {
	// Without JIS mode the install stations install their own parts and
	// the truth has no jis entries.
	c, err := newPlanner(5, WMIDefault).plan(1)
	if err != nil {
		t.Fatal(err)
	}
	tc := truthCar(c)
	for _, ts := range tc.Stations {
		if ts.JIS != nil {
			t.Errorf("%s: jis %+v without JIS mode", ts.Station, ts.JIS)
		}
	}
	b, _ := json.Marshal(tc)
	if strings.Contains(string(b), `"jis"`) {
		t.Errorf("truth line without JIS mode mentions jis: %s", b)
	}
	if f01 := tc.Stations[stationIndex["F01"]]; len(f01.Parts) < 2 || !strings.HasPrefix(f01.Parts[0].PartNumber, "SEAT-") || len(f01.Tests) != 0 {
		t.Errorf("F01 without JIS mode: %+v", f01)
	}
}

func TestJISStateVersion2Loads(t *testing.T) {
	dir := t.TempDir()
	v2 := `{"version":2,"plant":"US1","line":"L1","seed":1,"wmi":"7KL","framed":0,"out":0,"truth_offset":0,"stations":[]}`
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPlant(t, Config{Seed: 1, Speed: 600, Dir: dir, JIS: true})
	if err := p.Deliver(JISPart{Supplier: JISSupplierBattery, Seq: 4, VIN: "V", Variant: "KE-standard", Serial: "B4"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	st := readState(t, dir)
	if st.Version != stateVersion || st.JIS == nil || len(st.JIS.Racks[JISSupplierBattery]) != 1 || st.JIS.LastSeq[JISSupplierBattery] != 4 {
		t.Errorf("saved version %d, jis %+v", st.Version, st.JIS)
	}
	// A rack of a supplier the plant does not know is refused.
	bad := `{"version":3,"plant":"US1","line":"L1","seed":1,"wmi":"7KL","framed":0,"out":0,"truth_offset":0,"stations":[],
		"jis":{"racks":{"wheels":[]},"last_seq":{}}}`
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := New(Config{Seed: 1, Speed: 600, Dir: dir, JIS: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Stop()
	if err := q.Start(t.Context()); err == nil || !strings.Contains(err.Error(), `unknown supplier "wheels"`) {
		t.Errorf("Start with a rack of an unknown supplier: %v", err)
	}
}

func TestJISTurnedOnMidLine(t *testing.T) {
	const seed, n = 25, 20
	dir := t.TempDir()
	truthPath := filepath.Join(dir, "truth.jsonl")
	cfg := Config{Seed: seed, Speed: 600, Cars: n, TruthPath: truthPath, Dir: filepath.Join(dir, "state")}

	// First run without JIS mode: stopped with cars past T03 and F01.
	p1 := startPlant(t, cfg)
	ackers1, stop1 := startAckers(t, p1)
	waitUntil(t, "cars past T03", func() bool { return p1.Stats().Stations[stationIndex["T03"]].CycleCounter >= 2 })
	stop1()
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	framed := p1.Stats().Framed
	if framed >= n {
		t.Fatalf("first run framed every car; cannot test")
	}

	// Second run in JIS mode: the cars on the line keep their own parts
	// and do not wait; the cars framed now get the delivered ones.
	cfg.JIS = true
	from := framed + 1
	cars := jisDeliveriesFrom(t, seed, from, n)
	p2 := startPlant(t, cfg)
	deliver(t, p2, cars, nil)
	ackers2, stop2 := startAckers(t, p2)
	waitPlantDone(t, p2)
	stop2()
	if err := p2.Stop(); err != nil {
		t.Fatal(err)
	}
	truth := readTruth(t, truthPath)
	checkJISTruthFrom(t, seed, from, cars, truth)
	all := collect(ackers1)
	for id, rs := range collect(ackers2) {
		all[id] = append(all[id], rs...)
	}
	checkAgainstTruth(t, truth, all, true)
	for _, jc := range cars {
		c, _ := truthOf(truth, jc.plan.VIN)
		f01 := c.Stations[stationIndex["F01"]]
		if own := jc.index < from; own != (len(f01.JIS) == 0) || own && !strings.HasSuffix(f01.Parts[0].PartNumber, "-FL") {
			t.Errorf("car %d (JIS from car %d) at F01: %+v", jc.index, from, f01)
		}
	}
	if st := readState(t, cfg.Dir); st.JIS == nil || st.JIS.From != from {
		t.Errorf("saved JIS state %+v, want from %d", st.JIS, from)
	}
}
