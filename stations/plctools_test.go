package stations_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/stations"
	"go.yaml.in/yaml/v3"
)

// simLine starts the simulated plant (no cars) and returns its line config.
func simLine(t *testing.T) *line.Config {
	t.Helper()
	plant, err := simulator.New(simulator.Config{Plant: "US1", Line: "L1", Dir: filepath.Join(t.TempDir(), "plant"), Seed: 1, Cars: 1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plant.Stop() })
	lc := &line.Config{Version: 1, Plant: "US1", Line: "L1"}
	for _, s := range plant.Stations() {
		lc.Stations = append(lc.Stations, line.Station{ID: s.ID, Endpoint: s.Endpoint, Optional: s.Optional,
			Parts: s.Parts, Joints: s.Joints, Tests: s.Tests, Manifest: s.Manifest, Nodes: line.NodeTags(s.Nodes)})
	}
	lc.SetDir(t.TempDir())
	if err := lc.Validate(); err != nil {
		t.Fatal(err)
	}
	return lc
}

// closedPort returns a loopback endpoint nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "opc.tcp://" + addr
}

func TestCheckLineFindsEveryProblemOnce(t *testing.T) {
	lc := simLine(t)
	probs, err := stations.CheckLine(t.Context(), lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 0 {
		t.Fatalf("the simulator's own config has problems: %v", probs)
	}

	c04, _ := lc.Station("C04")
	swap := func(a, b string) { c04.Nodes[a], c04.Nodes[b] = c04.Nodes[b], c04.Nodes[a] }
	c04.Nodes["Result.Colour"] = line.NodeTag("ns=1;s=C04.Result.Color") // a wrong node id
	swap("Joint1.TorqueNm", "Joint1.Name")                               // wrong types, both ways
	swap("AckCounter", "CycleCounter")                                   // AckCounter on a read-only node
	w01, _ := lc.Station("W01")
	w01.Endpoint = closedPort(t)
	probs, err = stations.CheckLine(t.Context(), lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	want := []string{
		"station W01: plc " + w01.Endpoint + ": connect: ",
		"station C04: tag AckCounter: node ns=1;s=C04.CycleCounter: not writable (user access level: read); the agent writes AckCounter to acknowledge a cycle",
		"station C04: tag Result.Colour: node ns=1;s=C04.Result.Color: does not exist (BadNodeIDUnknown)",
		"station C04: tag Joint1.Name: node ns=1;s=C04.Joint1.TorqueNm: data type Double, want String",
		"station C04: tag Joint1.TorqueNm: node ns=1;s=C04.Joint1.Name: data type String, want a number (Double, Float or an integer type",
	}
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d (one per mistake):\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no problem says %q; got:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func TestBrowseListsAndMatchesTheStationsTags(t *testing.T) {
	lc := simLine(t)
	c04, _ := lc.Station("C04")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	plc, err := stations.DialPLC(ctx, stations.Connection{Endpoint: c04.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	defer plc.Close(ctx)
	res, err := stations.Browse(ctx, plc, stations.BrowseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Truncated != "" {
		t.Errorf("browse truncated: %s", res.Truncated)
	}
	var out bytes.Buffer
	if err := stations.PrintBrowse(&out, res); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`ns=1;s=C04\.AckCounter +C04/AckCounter +UInt32 +read/write`,
		`ns=1;s=C04\.Joint3\.TorqueNm +C04/Joint3\.TorqueNm +Double +read\n`,
		`ns=1;s=C04\.Result\.StartTime +C04/Result\.StartTime +Int64 +read\n`,
		`ns=1;s=C04 +C04 +Object`,
		fmt.Sprintf(`\d+ nodes, %d variables\n$`, len(c04.Tags())-len(stations.AbsentTags(c04))),
	} {
		if !matches(re, out.String()) {
			t.Errorf("browse output does not match %q:\n%s", re, out.String())
		}
	}

	// The skeleton matches the simulator's own map, and is a valid config.
	st, ms := stations.MatchStation(res, "C04", c04.Endpoint)
	if st.Parts != c04.Parts || st.Joints != c04.Joints || st.Tests != c04.Tests {
		t.Errorf("slots %d/%d/%d, want %d/%d/%d", st.Parts, st.Joints, st.Tests, c04.Parts, c04.Joints, c04.Tests)
	}
	for _, m := range ms {
		if c04.Nodes[m.Tag].Absent {
			// The simulator has no body numbers: drafted absent.
			if m.Node != nil || !m.Spec.Absent {
				t.Errorf("tag %s (absent on the PLC) matched %+v", m.Tag, m)
			}
			continue
		}
		if m.Node == nil || m.Node.NodeID != c04.Node(m.Tag) || m.Problem != "" || len(m.Others) > 0 {
			t.Errorf("tag %s matched %+v", m.Tag, m)
		}
	}
	var emitted bytes.Buffer
	if err := stations.EmitStation(&emitted, st, ms); err != nil {
		t.Fatal(err)
	}
	cfg := "version: 1\nplant: US1\nline: L1\nstations:\n" + emitted.String()
	parsed, err := line.Parse("emitted.yaml", []byte(cfg))
	if err != nil {
		t.Fatalf("emitted station is not a valid config: %v\n%s", err, cfg)
	}
	if got := parsed.Stations[0].Nodes; !mapsEqual(got, c04.Nodes) {
		t.Errorf("emitted nodes differ from the simulator's:\n%s", emitted.String())
	}
}

func TestEmitStationMarksWhatItCouldNotMatch(t *testing.T) {
	res := &stations.BrowseResult{Nodes: []stations.BrowsedNode{
		{NodeID: "ns=3;s=\"DB_T07\".\"CycleCounter\"", Path: []string{"PLC_1", "DB_T07", "CycleCounter"}, NodeClass: 2, ValueRank: -1, AccessLevel: 1, UserAccessLevel: 1},
		{NodeID: "ns=3;s=\"DB_T08\".\"CycleCounter\"", Path: []string{"PLC_1", "DB_T08", "CycleCounter"}, NodeClass: 2, ValueRank: -1, AccessLevel: 1, UserAccessLevel: 1},
		{NodeID: "ns=3;s=T07.result_vin", Path: []string{"T07", "result_vin"}, NodeClass: 2, ValueRank: -1, AccessLevel: 1, UserAccessLevel: 1},
		{NodeID: "ns=3;s=Andon", Path: []string{"PLC_1", "Andon"}, NodeClass: 2, ValueRank: -1, AccessLevel: 1, UserAccessLevel: 1},
		{NodeID: "ns=3;s=HMI.Andon", Path: []string{"PLC_1", "HMI", "Andon"}, NodeClass: 2, ValueRank: -1, AccessLevel: 1, UserAccessLevel: 1},
	}}
	st, ms := stations.MatchStation(res, "T07", "opc.tcp://plc:4840")
	if st.Node("CycleCounter") != "ns=3;s=\"DB_T07\".\"CycleCounter\"" {
		t.Errorf("CycleCounter = %q, want the node under the station's own block", st.Node("CycleCounter"))
	}
	if st.Node("Result.Vin") != "ns=3;s=T07.result_vin" {
		t.Errorf("Result.Vin = %q: result_vin should match", st.Node("Result.Vin"))
	}
	var b bytes.Buffer
	if err := stations.EmitStation(&b, st, ms); err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	if err := yaml.Unmarshal(b.Bytes(), &items); err != nil {
		t.Fatalf("emitted YAML does not parse: %v\n%s", err, b.String())
	}
	for _, want := range []string{
		"3 of 18 tags found on the PLC, 12 absent, 3 not matched",
		"Not matched (write them): State, DataReady, AckCounter.",
		`CycleCounter: "ns=3;s=\"DB_T07\".\"CycleCounter\""` + "\n",
		`Andon: "ns=3;s=Andon" # also matched: ns=3;s=HMI.Andon`,
		`Heartbeat: {absent: true} # absent: no liveness check of the PLC`,
		`DataReady: "" # TODO: no node matched; write the node id (or a const)`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("emitted station does not say %q:\n%s", want, b.String())
		}
	}
}

func matches(re, s string) bool {
	return regexp.MustCompile(re).MatchString(s)
}

// mapsEqual reports whether two tag maps give every tag the same source.
func mapsEqual(a, b map[string]line.Tag) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w.Where() != v.Where() {
			return false
		}
	}
	return true
}

// TestCheckManifestTags: plc check knows the framing station's manifest
// tags: their types, and that the MES must be able to write the slots.
func TestCheckManifestTags(t *testing.T) {
	plant, err := simulator.New(simulator.Config{Plant: "US1", Line: "L1", Dir: filepath.Join(t.TempDir(), "plant"), Seed: 1, Cars: 1,
		Manifest: true, ManifestSlots: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plant.Stop() })
	lc := &line.Config{Version: 1, Plant: "US1", Line: "L1"}
	for _, s := range plant.Stations()[:1] {
		lc.Stations = append(lc.Stations, line.Station{ID: s.ID, Endpoint: s.Endpoint, Parts: s.Parts, Joints: s.Joints,
			Tests: s.Tests, Nodes: line.NodeTags(s.Nodes), Manifest: s.Manifest})
	}
	lc.SetDir(t.TempDir())
	if err := lc.Validate(); err != nil {
		t.Fatal(err)
	}
	if probs, err := stations.CheckLine(t.Context(), lc, nil); err != nil || len(probs) != 0 {
		t.Fatalf("the simulator's manifest config: %v %v", probs, err)
	}
	w01 := &lc.Stations[0]
	w01.Nodes["Manifest2.Seq"], w01.Nodes["Manifest.LastSeq"] = w01.Nodes["Manifest.LastSeq"], w01.Nodes["Manifest2.Seq"] // Seq on a read-only node
	w01.Nodes["Manifest1.Vin"], w01.Nodes["Manifest1.Seq"] = w01.Nodes["Manifest1.Seq"], w01.Nodes["Manifest1.Vin"]       // types
	probs, err := stations.CheckLine(t.Context(), lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	for _, w := range []string{
		"station W01: tag Manifest2.Seq: node ns=1;s=W01.Manifest.LastSeq: not writable",
		"station W01: tag Manifest1.Vin: node ns=1;s=W01.Manifest1.Seq: data type Int64, want String",
		"station W01: tag Manifest1.Seq: node ns=1;s=W01.Manifest1.Vin: data type String, want",
	} {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no problem says %q; got:\n%s", w, strings.Join(got, "\n"))
		}
	}
}
