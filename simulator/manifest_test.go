package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/internal/vin"
)

// waitUntil polls cond until it is true; it gives up when the test's
// context ends (the test binary's -timeout bounds the wait).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s: %v", what, t.Context().Err())
		case <-tick.C:
		}
	}
}

// waitPlantDone waits until p is done; it gives up when the test's context
// ends.
func waitPlantDone(t *testing.T, p *Plant) {
	t.Helper()
	select {
	case <-p.Done():
	case <-t.Context().Done():
		st := p.Stats()
		t.Fatalf("plant not done: framed %d out %d stations %+v", st.Framed, st.Out, st.Stations)
	}
}

// testManifest returns n manifest entries with sequence numbers from first
// on (skipping first+5, to show gaps are allowed), going through every
// model, variant and colour, with VINs of another WMI than the plant's.
func testManifest(t *testing.T, n int, first int64) []manifestCar {
	t.Helper()
	var cars []manifestCar
	seq := first
	for k := range n {
		m := models[k%len(models)]
		v := m.Variants[(k/len(models))%len(m.Variants)]
		id, err := vin.Make("JK9", m.Code+string(m.Body)+v.Code, ModelYear, PlantCode, 500+k)
		if err != nil {
			t.Fatal(err)
		}
		var opts []string
		if v.FourWD {
			opts = append(opts, "4WD")
		}
		if v.Turbo {
			opts = append(opts, "TURBO")
		}
		if k%3 == 0 {
			opts = append(opts, "SUNROOF")
		}
		cars = append(cars, manifestCar{Seq: seq, VIN: id, Model: m.Code, Variant: v.Name,
			Colour: colours[k%len(colours)].Name, Options: strings.Join(opts, ",")})
		seq++
		if seq == first+5 {
			seq++
		}
	}
	return cars
}

// writeNodes writes values to the nodes named by logical tag names in one
// Write request and returns the status of each.
func writeNodes(ctx context.Context, c *opcua.Client, si StationInfo, names []string, values []any) ([]ua.StatusCode, error) {
	req := &ua.WriteRequest{}
	for i, name := range names {
		node, ok := si.Nodes[name]
		if !ok {
			return nil, fmt.Errorf("station %s has no tag %s", si.ID, name)
		}
		nid, err := ua.ParseNodeID(node)
		if err != nil {
			return nil, err
		}
		req.NodesToWrite = append(req.NodesToWrite, &ua.WriteValue{
			NodeID: nid, AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(values[i])},
		})
	}
	resp, err := c.Write(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(resp.Results) != len(names) {
		return nil, fmt.Errorf("%d results for %d nodes", len(resp.Results), len(names))
	}
	return resp.Results, nil
}

// writeSlot downloads mc into manifest slot k as the MES does: the strings
// in one Write, then Seq in another.
func writeSlot(ctx context.Context, c *opcua.Client, si StationInfo, k int, mc manifestCar) error {
	p := fmt.Sprintf("Manifest%d.", k)
	sts, err := writeNodes(ctx, c, si, []string{p + "Vin", p + "Model", p + "Variant", p + "Colour", p + "Options"},
		[]any{mc.VIN, mc.Model, mc.Variant, mc.Colour, mc.Options})
	if err != nil {
		return err
	}
	for i, st := range sts {
		if st != ua.StatusOK {
			return fmt.Errorf("slot %d string %d: %v", k, i, st)
		}
	}
	sts, err = writeNodes(ctx, c, si, []string{p + "Seq"}, []any{mc.Seq})
	if err != nil {
		return err
	}
	if sts[0] != ua.StatusOK {
		return fmt.Errorf("slot %d seq %d: %v", k, mc.Seq, sts[0])
	}
	return nil
}

// readTags reads station tags by logical name in one Read.
func readTags(ctx context.Context, c *opcua.Client, si StationInfo, names ...string) (map[string]any, error) {
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = si.Nodes[n]
	}
	dvs, err := readValues(ctx, c, ids)
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, len(names))
	for i, n := range names {
		m[n] = dvs[i].Value.Value()
	}
	return m, nil
}

// feeder is a small MES stand-in for the manifest download: it keeps the
// framing PLC's empty slots filled with the next cars of its list. What the
// PLC already has it learns from the PLC (LastSeq and the slots' Seq), so a
// feeder started against a resumed plant continues where the last one
// stopped. It fills free slots from the highest down, so slot order is not
// sequence order.
type feeder struct {
	si   StationInfo
	c    *opcua.Client
	cars []manifestCar

	mu  sync.Mutex
	err error
}

func startFeeder(t *testing.T, p *Plant, cars []manifestCar) (stop func()) {
	t.Helper()
	si := p.Stations()[0]
	if si.Manifest == 0 {
		t.Fatalf("W01 has no manifest slots")
	}
	ctx, cancel := context.WithCancel(t.Context())
	f := &feeder{si: si, c: connect(t, ctx, si.Endpoint), cars: cars}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := f.run(ctx); err != nil && ctx.Err() == nil {
			f.mu.Lock()
			f.err = err
			f.mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.err != nil {
				t.Errorf("feeder: %v", f.err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (f *feeder) run(ctx context.Context) error {
	names := []string{TagManifestLastSeq}
	for k := 1; k <= f.si.Manifest; k++ {
		names = append(names, fmt.Sprintf("Manifest%d.Seq", k))
	}
	tick := time.NewTicker(3 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		vs, err := readTags(ctx, f.c, f.si, names...)
		if err != nil {
			return err
		}
		high := vs[TagManifestLastSeq].(int64)
		var free []int
		for k := f.si.Manifest; k >= 1; k-- {
			s := vs[names[k]].(int64)
			high = max(high, s)
			if s == 0 {
				free = append(free, k)
			}
		}
		next := slices.IndexFunc(f.cars, func(mc manifestCar) bool { return mc.Seq > high })
		for _, k := range free {
			if next < 0 || next >= len(f.cars) {
				break
			}
			if err := writeSlot(ctx, f.c, f.si, k, f.cars[next]); err != nil {
				return err
			}
			next++
		}
	}
}

// checkManifestTruth checks that the truth holds exactly the cars of the
// manifest, each with its identity and sequence number, built as car index
// k (the k-th in sequence order) is built from the seed; and that W01
// framed them in sequence order.
func checkManifestTruth(t *testing.T, seed int64, cars []manifestCar, truth []TruthCar, w01 []readResult) {
	t.Helper()
	if len(truth) != len(cars) {
		t.Fatalf("truth has %d cars, want %d", len(truth), len(cars))
	}
	bySeq := make(map[int64]TruthCar)
	for _, c := range truth {
		checkRoute(t, c)
		if _, dup := bySeq[c.Seq]; dup {
			t.Errorf("seq %d twice in the truth", c.Seq)
		}
		bySeq[c.Seq] = c
	}
	p := newPlanner(seed, WMIDefault)
	for k, mc := range cars {
		got, ok := bySeq[mc.Seq]
		if !ok {
			t.Errorf("seq %d (%s) not built", mc.Seq, mc.VIN)
			continue
		}
		if got.VIN != mc.VIN || got.Model != mc.Model || got.Variant != mc.Variant || got.Colour != mc.Colour {
			t.Errorf("seq %d built as %s %s %s %s, manifest %s %s %s %s", mc.Seq,
				got.VIN, got.Model, got.Variant, got.Colour, mc.VIN, mc.Model, mc.Variant, mc.Colour)
		}
		plan, err := p.planManifest(k+1, mc)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(truthCar(plan))
		g, _ := json.Marshal(got)
		if string(g) != string(want) {
			t.Errorf("seq %d: truth\n %s\nwant\n %s", mc.Seq, g, want)
		}
	}
	if w01 == nil {
		return
	}
	var framed []string
	for _, r := range w01 {
		if len(framed) == 0 || framed[len(framed)-1] != r.VIN { // a result read again after a restart
			framed = append(framed, r.VIN)
		}
	}
	var want []string
	for _, mc := range cars {
		want = append(want, mc.VIN)
	}
	if !slices.Equal(framed, want) {
		t.Errorf("W01 framed\n %v\nwant (sequence order)\n %v", framed, want)
	}
}

func allAcked(s Stats) bool {
	for _, st := range s.Stations {
		if st.Unacked > 0 {
			return false
		}
	}
	return true
}

func manifestNames(slots int) []string {
	names := []string{TagManifestLastSeq}
	for k := 1; k <= slots; k++ {
		for _, f := range manifestFields {
			names = append(names, fmt.Sprintf("Manifest%d.%s", k, f.Name))
		}
	}
	return names
}

func TestManifestBuildsDownloadedCars(t *testing.T) {
	const seed = 3
	truthPath := filepath.Join(t.TempDir(), "truth.jsonl")
	p := startPlant(t, Config{Seed: seed, Speed: 600, Manifest: true, ManifestSlots: 4, TruthPath: truthPath})

	sts := p.Stations()
	w01 := sts[0]
	if w01.Manifest != 4 {
		t.Fatalf("W01 Manifest = %d, want 4", w01.Manifest)
	}
	for _, name := range manifestNames(4) {
		if want := "ns=1;s=W01." + name; w01.Nodes[name] != want {
			t.Errorf("W01 node of %s = %q, want %q", name, w01.Nodes[name], want)
		}
	}
	for _, si := range sts[1:] {
		if si.Manifest != 0 || si.Nodes[TagManifestLastSeq] != "" {
			t.Errorf("station %s has manifest slots", si.ID)
		}
	}

	// Nothing framed while the manifest is empty.
	c := connect(t, t.Context(), w01.Endpoint)
	waitUntil(t, "W01 waiting for the manifest", func() bool {
		vs, err := readTags(t.Context(), c, w01, TagState, TagFaultCode, TagFaultText)
		if err != nil {
			t.Fatal(err)
		}
		return vs[TagState] == StateStarved && vs[TagFaultCode] == int32(0) && vs[TagFaultText] == FaultTextWaitingManifest
	})
	if st := p.Stats(); st.Framed != 0 {
		t.Fatalf("framed %d cars with an empty manifest", st.Framed)
	}

	cars := testManifest(t, 11, 101)
	ackers, stopAckers := startAckers(t, p)
	stopFeeder := startFeeder(t, p, cars)
	waitUntil(t, "every car out and acknowledged", func() bool {
		st := p.Stats()
		return st.Out == len(cars) && allAcked(st)
	})
	stopFeeder()
	stopAckers()

	// The line ran out of manifest: it stopped framing and says why.
	vs, err := readTags(t.Context(), c, w01, append([]string{TagState, TagFaultCode, TagFaultText, TagVinPresent}, manifestNames(4)...)...)
	if err != nil {
		t.Fatal(err)
	}
	if vs[TagState] != StateStarved || vs[TagFaultCode] != int32(0) || vs[TagFaultText] != FaultTextWaitingManifest || vs[TagVinPresent] != "" {
		t.Errorf("W01 after the manifest ran out: state %v code %v text %q vin %q", vs[TagState], vs[TagFaultCode], vs[TagFaultText], vs[TagVinPresent])
	}
	if vs[TagManifestLastSeq] != cars[len(cars)-1].Seq {
		t.Errorf("LastSeq %v, want %d", vs[TagManifestLastSeq], cars[len(cars)-1].Seq)
	}
	for _, name := range manifestNames(4)[1:] {
		if v := vs[name]; v != int64(0) && v != "" {
			t.Errorf("%s = %v after framing, want it emptied", name, v)
		}
	}
	if st := p.Stats(); st.Framed != len(cars) || st.OnLine != 0 {
		t.Errorf("framed %d, on line %d; want %d, 0", st.Framed, st.OnLine, len(cars))
	}

	truth := readTruth(t, truthPath)
	checkManifestTruth(t, seed, cars, truth, ackers["W01"].got())
	checkAgainstTruth(t, truth, collect(ackers), true)
	for _, r := range ackers["W01"].got() {
		k := slices.IndexFunc(cars, func(mc manifestCar) bool { return mc.VIN == r.VIN })
		if k < 0 {
			t.Errorf("W01 result of %s, not a manifest car", r.VIN)
			continue
		}
		if mc := cars[k]; r.Model != mc.Model || r.Variant != mc.Variant || r.Colour != mc.Colour {
			t.Errorf("W01 result %s: %s %s %s, manifest %s %s %s", r.VIN, r.Model, r.Variant, r.Colour, mc.Model, mc.Variant, mc.Colour)
		}
	}
}

func TestManifestBadEntry(t *testing.T) {
	truthPath := filepath.Join(t.TempDir(), "truth.jsonl")
	p := startPlant(t, Config{Seed: 5, Speed: 600, Cars: 1, Manifest: true, ManifestSlots: 4, TruthPath: truthPath})
	w01 := p.Stations()[0]
	c := connect(t, t.Context(), w01.Endpoint)
	ctx := t.Context()
	good := testManifest(t, 2, 1)

	t.Run("writes of the wrong type are rejected", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			tag   string
			value any
			want  ua.StatusCode
		}{
			{"Seq as Int32", "Manifest1.Seq", int32(1), ua.StatusBadTypeMismatch},
			{"Seq as string", "Manifest1.Seq", "1", ua.StatusBadTypeMismatch},
			{"Vin as Int64", "Manifest1.Vin", int64(1), ua.StatusBadTypeMismatch},
			{"negative Seq", "Manifest1.Seq", int64(-1), ua.StatusBadOutOfRange},
			{"LastSeq is the PLC's", TagManifestLastSeq, int64(5), ua.StatusBadNotWritable},
			{"slot beyond the count", "Manifest5.Seq", int64(1), ua.StatusBadNodeIDUnknown},
		} {
			t.Run(tt.name, func(t *testing.T) {
				node := w01.Nodes[tt.tag]
				if node == "" {
					node = "ns=1;s=W01." + tt.tag
				}
				st, err := writeAck(ctx, c, node, tt.value)
				if err != nil {
					t.Fatal(err)
				}
				if st != tt.want {
					t.Errorf("write %s = %v: %v, want %v", tt.tag, tt.value, st, tt.want)
				}
			})
		}
		vs, err := readTags(ctx, c, w01, "Manifest1.Seq", "Manifest1.Vin", TagManifestLastSeq)
		if err != nil {
			t.Fatal(err)
		}
		if vs["Manifest1.Seq"] != int64(0) || vs["Manifest1.Vin"] != "" || vs[TagManifestLastSeq] != int64(0) {
			t.Errorf("rejected writes changed the tags: %v", vs)
		}
	})

	waitFault := func(t *testing.T, want string) {
		t.Helper()
		waitUntil(t, "W01 fault "+want, func() bool {
			vs, err := readTags(ctx, c, w01, TagState, TagFaultCode, TagFaultText)
			if err != nil {
				t.Fatal(err)
			}
			return vs[TagState] == StateFault && vs[TagFaultCode] == int32(FaultCodeManifest) &&
				strings.Contains(vs[TagFaultText].(string), want)
		})
	}

	badVIN := good[0]
	badVIN.VIN = badVIN.VIN[:8] + string("0123456789X"[(strings.IndexByte("0123456789X", badVIN.VIN[8])+1)%11]) + badVIN.VIN[9:]
	if err := writeSlot(ctx, c, w01, 2, badVIN); err != nil {
		t.Fatal(err)
	}
	waitFault(t, fmt.Sprintf("manifest slot 2 seq 1: VIN %q", badVIN.VIN))
	waitFault(t, "check digit")

	badModel := good[0]
	badModel.Model = "KX"
	if err := writeSlot(ctx, c, w01, 2, badModel); err != nil {
		t.Fatal(err)
	}
	waitFault(t, `manifest slot 2 seq 1: model "KX" unknown`)

	badColour := good[0]
	badColour.Colour = "pink"
	if err := writeSlot(ctx, c, w01, 2, badColour); err != nil {
		t.Fatal(err)
	}
	waitFault(t, `manifest slot 2 seq 1: colour "pink" unknown`)
	if st := p.Stats(); st.Framed != 0 {
		t.Fatalf("framed %d cars from a bad manifest", st.Framed)
	}

	// Corrected: framing resumes. The second entry is beyond Cars.
	ackers, stopAckers := startAckers(t, p)
	if err := writeSlot(ctx, c, w01, 2, good[0]); err != nil {
		t.Fatal(err)
	}
	if err := writeSlot(ctx, c, w01, 3, good[1]); err != nil {
		t.Fatal(err)
	}
	waitPlantDone(t, p)
	stopAckers()
	if st := p.Stats(); st.Framed != 1 || st.Out != 1 {
		t.Errorf("framed %d, out %d; want 1, 1 (Cars 1)", st.Framed, st.Out)
	}
	vs, err := readTags(ctx, c, w01, TagState, TagFaultCode, TagManifestLastSeq, "Manifest2.Seq", "Manifest2.Vin", "Manifest3.Seq", "Manifest3.Vin")
	if err != nil {
		t.Fatal(err)
	}
	if vs[TagState] != StateStarved || vs[TagFaultCode] != int32(0) || vs[TagManifestLastSeq] != int64(1) ||
		vs["Manifest2.Seq"] != int64(0) || vs["Manifest2.Vin"] != "" ||
		vs["Manifest3.Seq"] != int64(2) || vs["Manifest3.Vin"] != good[1].VIN {
		t.Errorf("W01 after one car: %v", vs)
	}
	checkManifestTruth(t, 5, good[:1], readTruth(t, truthPath), ackers["W01"].got())
}

func TestManifestRestart(t *testing.T) {
	const seed = 13
	dir := t.TempDir()
	cars := testManifest(t, 36, 1) // more than the line holds, so some wait in the manifest
	truthPath := filepath.Join(dir, "truth.jsonl")
	cfg := Config{Seed: seed, Speed: 600, Cars: len(cars), Manifest: true, ManifestSlots: 3,
		Dir: filepath.Join(dir, "state"), TruthPath: truthPath}

	// First run: stop midway, with cars on the line and slots filled.
	p1 := startPlant(t, cfg)
	ackers1, stopAckers1 := startAckers(t, p1)
	stopFeeder1 := startFeeder(t, p1, cars)
	crash := filepath.Join(dir, "crash")
	waitUntil(t, "a car out", func() bool { return p1.Stats().Out >= 1 })
	// What a crash (kill -9) would leave on disk while the plant runs.
	copyFile(t, filepath.Join(cfg.Dir, StateFile), filepath.Join(crash, "state", StateFile))
	copyFile(t, truthPath, filepath.Join(crash, "truth.jsonl"))
	waitUntil(t, "two cars out", func() bool { return p1.Stats().Out >= 2 })
	stopFeeder1()
	stopAckers1()
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	before := p1.Stats()
	if before.Out >= len(cars) {
		t.Fatalf("first run built every car; cannot test a restart")
	}
	saved := readState(t, cfg.Dir)
	filled := slices.IndexFunc(saved.Manifest.Slots, func(mc manifestCar) bool { return mc.Seq > 0 })
	if len(saved.ManifestCars) == 0 || filled < 0 {
		t.Fatalf("stopped with no manifest car on the line (%v) or no filled slot (%+v); cannot test a restart",
			saved.ManifestCars, saved.Manifest.Slots)
	}

	// Second run: the manifest and the cars on the line survived.
	p2 := startPlant(t, cfg)
	if got := p2.Stats(); got.Framed != before.Framed || got.Out != before.Out {
		t.Errorf("resumed with framed %d out %d, want %d %d", got.Framed, got.Out, before.Framed, before.Out)
	}
	for i, s := range p2.Stats().Stations {
		if s.VIN != before.Stations[i].VIN || s.CycleCounter != before.Stations[i].CycleCounter {
			t.Errorf("station %s resumed with car %q at cycle %d, want %q at %d", s.ID,
				s.VIN, s.CycleCounter, before.Stations[i].VIN, before.Stations[i].CycleCounter)
		}
	}
	c := connect(t, t.Context(), p2.Stations()[0].Endpoint)
	vs, err := readTags(t.Context(), c, p2.Stations()[0], TagManifestLastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if want := cars[before.Framed-1].Seq; vs[TagManifestLastSeq] != want {
		t.Errorf("resumed LastSeq %v, want %d", vs[TagManifestLastSeq], want)
	}
	ackers2, stopAckers2 := startAckers(t, p2)
	stopFeeder2 := startFeeder(t, p2, cars)
	waitPlantDone(t, p2)
	stopFeeder2()
	stopAckers2()
	if err := p2.Stop(); err != nil {
		t.Fatal(err)
	}
	truth := readTruth(t, truthPath)
	w01 := append(ackers1["W01"].got(), ackers2["W01"].got()...)
	checkManifestTruth(t, seed, cars, truth, w01)
	all := collect(ackers1)
	for id, rs := range collect(ackers2) {
		all[id] = append(all[id], rs...)
	}
	checkAgainstTruth(t, truth, all, true)

	// Resumed after the crash: the same cars.
	crashCfg := cfg
	crashCfg.Dir, crashCfg.TruthPath = filepath.Join(crash, "state"), filepath.Join(crash, "truth.jsonl")
	crashed := runManifest(t, crashCfg, cars)
	if !sameTruth(truth, crashed) {
		t.Errorf("the run resumed after a crash built other cars than the one resumed after a stop")
	}
	// A straight run without a restart: the same cars.
	straightCfg := cfg
	straightCfg.Dir, straightCfg.TruthPath = "", filepath.Join(dir, "straight.jsonl")
	if straight := runManifest(t, straightCfg, cars); !sameTruth(truth, straight) {
		t.Errorf("a restarted run built other cars than a straight run")
	}
}

// runManifest runs a manifest-mode plant with a feeder and ackers until done
// and returns its truth.
func runManifest(t *testing.T, cfg Config, cars []manifestCar) []TruthCar {
	t.Helper()
	p := startPlant(t, cfg)
	_, stopAckers := startAckers(t, p)
	stopFeeder := startFeeder(t, p, cars)
	waitPlantDone(t, p)
	stopFeeder()
	stopAckers()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	return readTruth(t, cfg.TruthPath)
}

func readState(t *testing.T, dir string) plantState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st plantState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestManifestState(t *testing.T) {
	t.Run("version 1 state loads", func(t *testing.T) {
		dir := t.TempDir()
		v1 := `{"version":1,"plant":"US1","line":"L1","seed":1,"wmi":"7KL","framed":0,"out":0,"truth_offset":0,"stations":[]}`
		if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(v1), 0o644); err != nil {
			t.Fatal(err)
		}
		p := startPlant(t, Config{Seed: 1, Speed: 600, Dir: dir, Manifest: true})
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		st := readState(t, dir)
		if st.Version != stateVersion || st.Manifest == nil || len(st.Manifest.Slots) != ManifestSlotsDefault {
			t.Errorf("saved version %d, manifest %+v; want version %d with %d slots", st.Version, st.Manifest, stateVersion, ManifestSlotsDefault)
		}
	})
	t.Run("filled slot beyond ManifestSlots", func(t *testing.T) {
		dir := t.TempDir()
		p := startPlant(t, Config{Seed: 1, Speed: 600, Dir: dir, Manifest: true, ManifestSlots: 4})
		w01 := p.Stations()[0]
		c := connect(t, t.Context(), w01.Endpoint)
		mc := testManifest(t, 1, 7)[0]
		mc.Model = "KX" // a bad entry: W01 does not frame it, the slot stays filled
		if err := writeSlot(t.Context(), c, w01, 4, mc); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "W01 fault", func() bool { return p.Stats().Stations[0].FaultCode == FaultCodeManifest })
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		p2, err := New(Config{Seed: 1, Speed: 600, Dir: dir, Manifest: true, ManifestSlots: 2, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer p2.Stop()
		if err := p2.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "manifest slot 4 holds seq 7") {
			t.Errorf("Start with fewer slots than a filled one: %v", err)
		}
	})
}

func TestManifestNext(t *testing.T) {
	car := func(seq int64) manifestCar { return manifestCar{Seq: seq, VIN: fmt.Sprintf("V%d", seq)} }
	tests := []struct {
		name      string
		lastSeq   int64
		slots     []manifestCar
		wantSlot  int
		wantSlots []int64 // Seq of each slot afterwards
	}{
		{name: "empty", slots: []manifestCar{{}, {}}, wantSlot: 0, wantSlots: []int64{0, 0}},
		{name: "lowest seq, not lowest slot", slots: []manifestCar{car(9), car(4), car(6)}, wantSlot: 2, wantSlots: []int64{9, 4, 6}},
		{name: "gaps allowed", lastSeq: 3, slots: []manifestCar{{}, car(10)}, wantSlot: 2, wantSlots: []int64{0, 10}},
		{name: "stale slots emptied", lastSeq: 5, slots: []manifestCar{car(5), car(2), car(7), {VIN: "half written"}}, wantSlot: 3, wantSlots: []int64{0, 0, 7, 0}},
		{name: "equal seqs: lowest slot", slots: []manifestCar{{}, car(3), car(3)}, wantSlot: 2, wantSlots: []int64{0, 3, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &manifestState{LastSeq: tt.lastSeq, Slots: slices.Clone(tt.slots)}
			slot, changed := m.next()
			var got []int64
			for _, s := range m.Slots {
				got = append(got, s.Seq)
			}
			if slot != tt.wantSlot || !slices.Equal(got, tt.wantSlots) {
				t.Errorf("next() = slot %d, slots %v; want %d, %v", slot, got, tt.wantSlot, tt.wantSlots)
			}
			wantChanged := false
			for k := range tt.slots {
				if m.Slots[k] != tt.slots[k] {
					wantChanged = true
				}
			}
			if changed != wantChanged {
				t.Errorf("changed = %v, want %v", changed, wantChanged)
			}
			for k, s := range tt.slots {
				if s.Seq == 0 && m.Slots[k] != s {
					t.Errorf("slot %d being written (Seq 0) changed to %+v", k+1, m.Slots[k])
				}
			}
		})
	}
}

// FuzzManifestCheck checks that an entry check accepts builds as written
// and one it rejects has a reason.
func FuzzManifestCheck(f *testing.F) {
	f.Add("7KLKV22W9VU000001", "KV", "2WD", "white")
	f.Add("JK9KE4LR6VU000507", "KE", "long range", "silver")
	f.Add("JK9KE4LR6VU000507", "KE", "standard", "mint")
	f.Add("1HGCM82633A004352", "KT", "4WD", "red")
	f.Add("1HGCM82634A004352", "KX", "4WD", "red")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, id, model, variant, colour string) {
		mc := manifestCar{Seq: 1, VIN: id, Model: model, Variant: variant, Colour: colour}
		err := mc.check()
		c, perr := newPlanner(1, WMIDefault).planManifest(1, mc)
		if (err == nil) != (perr == nil) {
			t.Fatalf("check %v but planManifest %v", err, perr)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty reason")
			}
			return
		}
		if vin.Validate(id) != nil {
			t.Fatalf("accepted VIN %q", id)
		}
		if c.VIN != id || c.Model != model || c.Variant != variant || c.Colour != colour || c.Seq != 1 {
			t.Fatalf("built %+v from %+v", c, mc)
		}
	})
}
