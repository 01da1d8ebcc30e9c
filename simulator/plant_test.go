package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

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

// checkAgainstTruth checks that every result the ackers read is in the
// truth, and every truth station visit was read exactly once, with the
// same values; and that each station's cycle counters run 1, 2, 3, ...
func checkAgainstTruth(t *testing.T, truth []TruthCar, results map[string][]readResult) {
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
			if seen[k] {
				// A result read again after a restart must be the same.
				continue
			}
			seen[k] = true
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
		if !seen[k] {
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
	checkAgainstTruth(t, truth, collect(ackers))
}

func TestBlocksWithoutAcks(t *testing.T) {
	p := startPlant(t, Config{Seed: 3, Speed: 600, MaxUnacked: 3})
	w01 := p.Stations()[0]
	c := connect(t, t.Context(), w01.Endpoint)
	nodes := []string{w01.Nodes[TagState], w01.Nodes[TagFaultCode], w01.Nodes[TagFaultText],
		w01.Nodes[TagCycleCounter], w01.Nodes[TagDataReady], w01.Nodes[TagStateCounter]}
	var dvs []*ua.DataValue
	waitFor(t, 20*time.Second, "W01 blocked with fault 900", func() bool {
		var err error
		dvs, err = readValues(t.Context(), c, nodes)
		if err != nil {
			t.Fatal(err)
		}
		return dvs[0].Value.String() == StateBlocked && dvs[1].Value.Value() == int32(FaultCodeUnacked)
	})
	if got := dvs[2].Value.String(); got != FaultTextUnacked {
		t.Errorf("FaultText %q, want %q", got, FaultTextUnacked)
	}
	if got := dvs[3].Value.Value(); got != uint32(1) {
		t.Errorf("CycleCounter shown %v, want the oldest pending, 1", got)
	}
	if !dvs[4].Value.Bool() {
		t.Errorf("DataReady false while results wait")
	}
	if s := p.Stats().Stations[0]; s.CycleCounter != 3 || s.Unacked != 3 {
		t.Errorf("W01 made %d cycles with %d unacked, want 3 and 3", s.CycleCounter, s.Unacked)
	}

	// A wrong acknowledgement is ignored.
	if st, err := writeAck(t.Context(), c, w01.Nodes[TagAckCounter], uint32(2)); err != nil || st != ua.StatusOK {
		t.Fatalf("write ack 2: %v %v", st, err)
	}
	// The right one frees a slot: W01 finishes its held cycle 4 and then
	// blocks again.
	if st, err := writeAck(t.Context(), c, w01.Nodes[TagAckCounter], uint32(1)); err != nil || st != ua.StatusOK {
		t.Fatalf("write ack 1: %v %v", st, err)
	}
	waitFor(t, 10*time.Second, "W01 cycle 4", func() bool { return p.Stats().Stations[0].CycleCounter == 4 })
	dvs, err := readValues(t.Context(), c, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if got := dvs[3].Value.Value(); got != uint32(2) {
		t.Errorf("after ack 1 CycleCounter shown %v, want 2 (ack 2 before it must have been ignored)", got)
	}
	if s := p.Stats().Stations[0]; s.Unacked != 3 {
		t.Errorf("W01 has %d unacked, want 3", s.Unacked)
	}
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
	checkAgainstTruth(t, truth, all)

	// The same seed without the restart builds the same cars.
	straight, _ := runToEnd(t, Config{Seed: 11, Speed: 600, Cars: 6, TruthPath: filepath.Join(dir, "straight.jsonl")})
	if !sameTruth(truth, straight) {
		t.Errorf("a restarted run built other cars than a straight run with the same seed")
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

func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, _ := runToEnd(t, Config{Seed: 5, Speed: 600, Cars: 3, TruthPath: filepath.Join(dir, "a.jsonl")})
	b, _ := runToEnd(t, Config{Seed: 5, Speed: 600, Cars: 3, TruthPath: filepath.Join(dir, "b.jsonl")})
	if len(a) != 3 || !sameTruth(a, b) {
		t.Errorf("same seed, different truth:\n%v\n%v", a, b)
	}
	// Another seed builds other cars (compare the plans; no need to run).
	pa, pb := newPlanner(5, WMIDefault), newPlanner(6, WMIDefault)
	differ := false
	for k := 1; k <= 3; k++ {
		ca, _ := pa.plan(k)
		cb, _ := pb.plan(k)
		la, _ := truthLine(ca)
		lb, _ := truthLine(cb)
		differ = differ || !bytes.Equal(la, lb)
	}
	if !differ {
		t.Errorf("seeds 5 and 6 build the same cars")
	}
}

func TestTagsOverOPCUA(t *testing.T) {
	p := startPlant(t, Config{Seed: 1, Speed: 1, Cars: 1})
	sts := p.Stations()
	c04 := sts[stationIndex["C04"]]
	ctx := t.Context()
	c := connect(t, ctx, c04.Endpoint)

	// Data types and access levels.
	cases := []struct {
		tag    string
		dt     uint32
		access byte
		zero   any
	}{
		{TagHeartbeat, id.Int32, 1, int32(0)},
		{TagState, id.String, 1, ""},
		{TagFaultCode, id.Int32, 1, int32(0)},
		{TagAndon, id.Boolean, 1, false},
		{TagStateCounter, id.UInt32, 1, uint32(0)},
		{TagCycleCounter, id.UInt32, 1, uint32(0)},
		{TagAckCounter, id.UInt32, 3, uint32(0)},
		{"Result.StartTime", id.Int64, 1, int64(0)},
		{"Joint16.TorqueNm", id.Double, 1, float64(0)},
		{"Joint16.OK", id.Boolean, 1, false},
		{"Part1.Lot", id.String, 1, ""},
	}
	for _, tc := range cases {
		nid := ua.MustParseNodeID(c04.Nodes[tc.tag])
		resp, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
			{NodeID: nid, AttributeID: ua.AttributeIDDataType},
			{NodeID: nid, AttributeID: ua.AttributeIDAccessLevel},
			{NodeID: nid, AttributeID: ua.AttributeIDValue},
			{NodeID: nid, AttributeID: ua.AttributeIDNodeClass},
		}})
		if err != nil {
			t.Fatal(err)
		}
		dt, ok := resp.Results[0].Value.Value().(*ua.NodeID)
		if !ok || dt.IntID() != tc.dt {
			t.Errorf("%s: DataType %v, want i=%d", tc.tag, resp.Results[0].Value.Value(), tc.dt)
		}
		if got := resp.Results[1].Value.Value(); got != tc.access {
			t.Errorf("%s: AccessLevel %v, want %d", tc.tag, got, tc.access)
		}
		if got := resp.Results[2].Value.Value(); reflect.TypeOf(got) != reflect.TypeOf(tc.zero) {
			t.Errorf("%s: value %v of type %T, want %T", tc.tag, got, got, tc.zero)
		}
		if got := resp.Results[3].Value.Value(); got != int32(ua.NodeClassVariable) {
			t.Errorf("%s: NodeClass %v", tc.tag, got)
		}
	}

	// Writes: only AckCounter, only UInt32; no crash on odd namespaces.
	for _, tc := range []struct {
		name string
		node string
		v    any
		want ua.StatusCode
	}{
		{"ack uint32", c04.Nodes[TagAckCounter], uint32(0), ua.StatusOK},
		{"ack int32", c04.Nodes[TagAckCounter], int32(1), ua.StatusBadTypeMismatch},
		{"ack int64", c04.Nodes[TagAckCounter], int64(1), ua.StatusBadTypeMismatch},
		{"read-only tag", c04.Nodes[TagState], "running", ua.StatusBadNotWritable},
		{"namespace 0", "i=2258", uint32(1), ua.StatusBadNotWritable},
		{"unknown namespace", "ns=7;s=C04.AckCounter", uint32(1), ua.StatusBadNodeIDUnknown},
		{"other station", sts[0].Nodes[TagAckCounter], uint32(1), ua.StatusBadNodeIDUnknown},
	} {
		st, err := writeAck(ctx, c, tc.node, tc.v)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if st != tc.want {
			t.Errorf("%s: write status %v, want %v", tc.name, st, tc.want)
		}
	}

	// A station sees only its own tags.
	resp, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.MustParseNodeID(sts[0].Nodes[TagState]), AttributeID: ua.AttributeIDValue},
		{NodeID: ua.MustParseNodeID("ns=9;s=x"), AttributeID: ua.AttributeIDValue},
		{NodeID: ua.NewNumericNodeID(0, id.Server_NamespaceArray), AttributeID: ua.AttributeIDValue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Results[0].Status != ua.StatusBadNodeIDUnknown || resp.Results[1].Status != ua.StatusBadNodeIDUnknown {
		t.Errorf("read of W01 tag / unknown namespace through C04: %v %v", resp.Results[0].Status, resp.Results[1].Status)
	}
	if ns, _ := resp.Results[2].Value.Value().([]string); len(ns) != 2 || ns[1] != NamespaceURI {
		t.Errorf("namespace array %v", resp.Results[2].Value.Value())
	}

	// Browse: Objects -> C04 folder -> its tags; and a browse that crashes
	// plain gopcua (IncludeSubtypes false) does not crash the plant.
	br, err := c.Browse(ctx, &ua.BrowseRequest{NodesToBrowse: []*ua.BrowseDescription{
		{NodeID: ua.NewNumericNodeID(0, id.ObjectsFolder), BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true},
		{NodeID: ua.NewStringNodeID(1, "C04"), BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: true},
		{NodeID: ua.NewNumericNodeID(0, id.RootFolder), BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences), IncludeSubtypes: false},
	}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range br.Results[0].References {
		if r.NodeID.NodeID.String() == "ns=1;s=C04" {
			found = true
		}
	}
	if !found {
		t.Errorf("Objects has no reference to the C04 folder")
	}
	if got, want := len(br.Results[1].References), len(c04.Nodes); got != want {
		t.Errorf("C04 folder has %d references, want %d", got, want)
	}
	if _, err := readValues(ctx, c, []string{c04.Nodes[TagState]}); err != nil {
		t.Errorf("plant unreachable after browse: %v", err)
	}
}

func TestInjectFaultAndRestartStation(t *testing.T) {
	p := startPlant(t, Config{Seed: 2, Speed: 60, Cars: 2})
	t02 := p.Stations()[stationIndex["T02"]]
	ctx := t.Context()
	c := connect(t, ctx, t02.Endpoint)

	if err := p.InjectFault("T02", 201, "tool fault: test", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	nodes := []string{t02.Nodes[TagState], t02.Nodes[TagFaultCode], t02.Nodes[TagFaultText], t02.Nodes[TagStateCounter]}
	var dvs []*ua.DataValue
	waitFor(t, 5*time.Second, "T02 fault", func() bool {
		var err error
		dvs, err = readValues(ctx, c, nodes)
		if err != nil {
			t.Fatal(err)
		}
		return dvs[0].Value.String() == StateFault
	})
	if dvs[1].Value.Value() != int32(201) || dvs[2].Value.String() != "tool fault: test" {
		t.Errorf("fault %v %q", dvs[1].Value.Value(), dvs[2].Value.String())
	}
	sc := dvs[3].Value.Value().(uint32)
	if sc == 0 {
		t.Errorf("StateCounter did not count the fault")
	}
	if err := p.InjectFault("X99", 1, "", time.Second); err == nil {
		t.Errorf("fault on unknown station accepted")
	}
	if err := p.InjectFault("T02", 0, "", time.Second); err == nil {
		t.Errorf("fault code 0 accepted")
	}

	// Power-cycle T02: the old connection drops, the endpoint comes back on
	// the same port with its retentive values.
	if err := p.RestartStation(ctx, "T02"); err != nil {
		t.Fatal(err)
	}
	if _, err := readValues(ctx, c, nodes); err == nil {
		t.Errorf("old connection still works after the restart")
	}
	if got := p.Stations()[stationIndex["T02"]].Endpoint; got != t02.Endpoint {
		t.Errorf("endpoint %s after restart, want %s", got, t02.Endpoint)
	}
	c2 := connect(t, ctx, t02.Endpoint)
	dvs, err := readValues(ctx, c2, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if got := dvs[3].Value.Value().(uint32); got < sc {
		t.Errorf("StateCounter %d after restart, was %d", got, sc)
	}
	c2.Close(ctx)

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := p.RestartStation(ctx, "T02"); err == nil {
		t.Errorf("restart of a stopped plant succeeded")
	}
	if err := p.Start(ctx); err == nil {
		t.Errorf("start of a stopped plant succeeded")
	}
}

func TestStopBeforeStart(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestFixedPorts(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	// Any free run of 23 ports will do; try from a free one upwards.
	var p *Plant
	for base := port; base < port+2000 && p == nil; base += 23 {
		q, err := New(Config{BasePort: base, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Start(t.Context()); err != nil {
			continue
		}
		p = q
		t.Cleanup(func() { p.Stop() })
	}
	if p == nil {
		t.Skip("no run of 23 free ports")
	}
	sts := p.Stations()
	for i, s := range sts {
		want := fmt.Sprintf("opc.tcp://127.0.0.1:%d", mustPort(t, sts[0].Endpoint)+i)
		if s.Endpoint != want {
			t.Errorf("station %s endpoint %s, want %s", s.ID, s.Endpoint, want)
		}
	}
	c := connect(t, t.Context(), sts[22].Endpoint)
	if _, err := readValues(t.Context(), c, []string{sts[22].Nodes[TagState]}); err != nil {
		t.Fatal(err)
	}
}

func mustPort(t *testing.T, url string) int {
	var port int
	if _, err := fmt.Sscanf(url[len("opc.tcp://127.0.0.1:"):], "%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}
