package cli

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/simulator"
)

// simConfig starts the simulated plant and writes its line config into a
// temporary directory; edit changes the config first.
func simConfig(t *testing.T, edit func(*line.Config)) (string, *line.Config) {
	t.Helper()
	dir := t.TempDir()
	plant, err := simulator.New(simulator.Config{Dir: filepath.Join(dir, "plant"), Seed: 1, Cars: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plant.Stop() })
	lc, err := defaultLine(plant, 100*time.Millisecond, false)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(lc)
	}
	b, err := lc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "line.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, lc
}

func TestPLCCheckCommand(t *testing.T) {
	path, _ := simConfig(t, nil)
	var out bytes.Buffer
	if err := plcCheck(t.Context(), []string{"--config", path}, &out); err != nil {
		t.Fatalf("check of the simulator's own config: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "plc check: 23 station(s), ") {
		t.Errorf("output:\n%s", out.String())
	}

	path, _ = simConfig(t, func(l *line.Config) {
		f01, _ := l.Station("F01")
		f01.Nodes["FaultText"] = line.NodeTag("ns=1;s=F01.FaultTxt")
	})
	out.Reset()
	err := plcCheck(t.Context(), []string{"--config", path, "--station", "F01,W01"}, &out)
	if err == nil || err.Error() != "plc check: 1 problem(s) in 1 of 2 station(s)" {
		t.Errorf("check with a wrong node = %v, want a failure", err)
	}
	// The problem names the config file line of the tag, the station,
	// the tag and the node.
	if want := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:\d+: station F01: tag FaultText: node ns=1;s=F01\.FaultTxt: does not exist \(BadNodeIDUnknown\); ` + "`keiline plc browse`" + ` lists the PLC's nodes\n$`); !want.MatchString(out.String()) {
		t.Errorf("output:\n%s\nwant it to match:\n%s", out.String(), want)
	}
	if line := configLine(t, path, "FaultTxt"); !strings.HasPrefix(out.String(), fmt.Sprintf("%s:%d: ", path, line)) {
		t.Errorf("output %q does not name line %d, where the node is written", out.String(), line)
	}
}

func TestPLCBrowseEmitsAStationThatChecks(t *testing.T) {
	path, lc := simConfig(t, nil)
	p02, _ := lc.Station("P02")
	skel := filepath.Join(t.TempDir(), "p02.yaml")
	var out bytes.Buffer
	if err := plcBrowse(t.Context(), []string{p02.Endpoint, "--emit-station", "P02", "--out", skel}, &out); err != nil {
		t.Fatal(err)
	}
	n, absent := len(p02.Tags()), 0
	for _, tag := range p02.Tags() {
		if !p02.Nodes[tag].IsRead() {
			absent++ // the simulator has no body numbers
		}
	}
	if want := fmt.Sprintf("station P02: %d of %d tags matched, %d absent, 0 to write; written to %s\n", n-absent, n, absent, skel); out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	item, err := os.ReadFile(skel)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(filepath.Dir(path), "p02-line.yaml")
	if err := os.WriteFile(cfg, append([]byte("version: 1\nplant: US1\nline: L1\nstations:\n"), item...), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := plcCheck(t.Context(), []string{"--config", cfg}, &out); err != nil {
		t.Errorf("check of the emitted station: %v\n%s\n%s", err, out.String(), item)
	}

	out.Reset()
	if err := plcBrowse(t.Context(), []string{p02.Endpoint, "--depth", "1"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ns=1;s=P02  P02          Object") || !strings.Contains(out.String(), "(incomplete: depth limit 1 reached)") {
		t.Errorf("browse to depth 1:\n%s", out.String())
	}
}

func TestPLCWatchOnce(t *testing.T) {
	path, _ := simConfig(t, nil)
	var out bytes.Buffer
	if err := plcWatch(t.Context(), []string{"--config", path, "--station", "W01", "--once"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`station W01  opc\.tcp://`, `handshake  `, `\nAckCounter +ns=1;s=W01\.AckCounter +0\n`, `\nResult\.BodyNo +absent +\(absent\)\n`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("watch screen does not show %q:\n%s", want, out.String())
		}
	}
}

func TestPLCCertCommand(t *testing.T) {
	pki := filepath.Join(t.TempDir(), "pki")
	var out bytes.Buffer
	if err := plcCert([]string{"--pki", pki, "--uri", "urn:line1-agent:keiline"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "application instance certificate made: "+filepath.Join(pki, "own", "cert.der")) ||
		!strings.Contains(out.String(), "URI urn:line1-agent:keiline") {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	if err := plcCert([]string{"--pki", pki}, &out); err != nil || !strings.Contains(out.String(), "certificate exists") {
		t.Errorf("second run: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := plcCert([]string{"--pki", pki, "--list"}, &out); err != nil || !strings.Contains(out.String(), "trusted ("+filepath.Join(pki, "trusted")+"): 0") {
		t.Errorf("list: %v\n%s", err, out.String())
	}
	if err := plcCert([]string{"--pki", pki, "--trust", "ABCDEF"}, &out); err == nil || !strings.Contains(err.Error(), "no rejected certificate") {
		t.Errorf("trust of an unknown thumbprint = %v", err)
	}
}

// configLine is the number of the first line of the file at path that
// contains s.
func configLine(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", path, s)
	return 0
}
