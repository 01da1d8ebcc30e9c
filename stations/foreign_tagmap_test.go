package stations_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/testplc"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/stations"
)

// foreignLine is the docs' example config for the foreign PLC at endpoint,
// with edit applied to its text, written to a file and loaded.
func foreignLine(t *testing.T, endpoint string, edit func(string) string) *line.Config {
	t.Helper()
	b, err := os.ReadFile("../docs/examples/s7-wheel-nuts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "opc.tcp://127.0.0.1:4840", endpoint)
	if edit != nil {
		s = edit(s)
	}
	path := filepath.Join(t.TempDir(), "line.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	lc, err := line.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

// TestForeignPLCReadLimit: a max_nodes_per_read above the PLC's limit is
// named with the PLC's own limit, the value to set and the station's
// config line, by plc check and by the agent's watch path alike.
func TestForeignPLCReadLimit(t *testing.T) {
	plc := testplc.StartForeign(t, "--paused")
	lc := foreignLine(t, plc.Endpoint, func(s string) string {
		return strings.Replace(s, "max_nodes_per_read: 0", "max_nodes_per_read: 50", 1)
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	probs, err := stations.CheckLine(ctx, lc, []string{"FR"})
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(regexp.QuoteMeta(lc.Path()) + `:\d+: station FR: plc .*the PLC reads at most 10 nodes at once .* refused a Read of 50: set max_nodes_per_read: 10 \(or 0, to ask the PLC\) in ` +
		regexp.QuoteMeta(lc.Path()) + `:\d+: station FR`)
	if len(probs) != 1 || !want.MatchString(probs[0].String()) {
		t.Fatalf("plc check = %v, want one problem naming the PLC's limit, the fix and the config line", probs)
	}
	fr, _ := lc.Station("FR")
	f := stations.NewWatcher(lc, fr, time.Second).Frame(ctx, time.Now())
	if !strings.Contains(f.Err, "the PLC reads at most 10 nodes at once") || !strings.Contains(f.Err, "set max_nodes_per_read: 10") {
		t.Fatalf("watch: %q, want the read limit explained", f.Err)
	}
	// With the docs' value (0: ask the PLC) the same station checks clean.
	if probs, err := stations.CheckLine(ctx, foreignLine(t, plc.Endpoint, nil), nil); err != nil || len(probs) != 0 {
		t.Fatalf("plc check of the docs' config: %v %v", probs, err)
	}
}

// TestForeignPLCEmitStation: plc browse --emit-station drafts the foreign
// PLC's tag map from its S7 names and types: the handshake DB, the nut
// structure array, the angle array by element, the one tool for every nut,
// and says what it could not match and which codes need a map.
func TestForeignPLCEmitStation(t *testing.T) {
	plc := testplc.StartForeign(t, "--paused", "--stations", "FR:100:both")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := stations.DialPLC(ctx, stations.Connection{Endpoint: plc.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	res, err := stations.Browse(ctx, p, stations.BrowseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, ms := stations.MatchStation(res, "FR", plc.Endpoint)
	if st.Joints != 4 {
		t.Errorf("%d joint slots, want the 4 nuts of the structure array", st.Joints)
	}
	for tag, want := range map[string]string{
		"CycleCounter":     `ns=3;s="DB100"."CycleCtr"`,
		"DataReady":        `ns=3;s="DB100"."Ready"`,
		"AckCounter":       `ns=3;s="DB100"."AckCtr"`,
		"Heartbeat":        `ns=3;s="DB100"."LifeCtr"`,
		"FaultCode":        `ns=3;s="DB100"."FaultNo"`,
		"Result.BodyNo":    `ns=3;s="DB100"."BodyNo"`,
		"Result.Vin":       `ns=3;s="DB100"."VIN"`,
		"Result.Status":    `ns=3;s="DB100"."Verdict"`,
		"Joint3.TorqueNm":  `ns=3;s="DB101"."Nut"[3]."Nm"`,
		"Joint3.OK":        `ns=3;s="DB101"."Nut"[3]."Result"`,
		"Joint3.Tool":      `ns=3;s="DB101"."ToolId"`,
		"Joint3.AngleDeg":  `ns=3;s="DB101"."Angle" index 2`,
		"VinPresent":       `ns=3;s="DB100"."BodyNoPresent"`,
		"StateCounter":     "absent",
		"Result.StartTime": "absent",
	} {
		if got := st.Nodes[tag].Where(); got != want {
			t.Errorf("%s drafted as %s, want %s", tag, got, want)
		}
	}
	var out bytes.Buffer
	if err := stations.EmitStation(&out, st, ms); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Result.Status: \"ns=3;s=\\\"DB100\\\".\\\"Verdict\\\"\" # TODO: a verdict code: write its map",
		"State: \"ns=3;s=\\\"DB100\\\".\\\"State\\\"\" # TODO: a state code: write its map",
		"Joint1.TorqueNm: \"ns=3;s=\\\"DB101\\\".\\\"Nut\\\"[1].\\\"Nm\\\"\" # CHECK: an integer torque: give its unit with scale:",
		"Joint1.AngleDeg: {node: \"ns=3;s=\\\"DB101\\\".\\\"Angle\\\"\", index: 0}",
		"StateCounter: {absent: true} # absent: change detection by value",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("emitted station does not say %q:\n%s", want, out.String())
		}
	}
	if !regexp.MustCompile(`drafted by .*: \d+ of \d+ tags found on the PLC, \d+ absent, \d+ not matched`).MatchString(out.String()) {
		t.Errorf("emitted station does not count what it matched:\n%s", out.String())
	}
}
