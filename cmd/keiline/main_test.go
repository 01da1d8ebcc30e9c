package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keiline/keiline/cmd/keiline/cli"
	"github.com/keiline/keiline/schema/pgtest"
)

// The test binary doubles as the keiline command: run with KEILINE_AS_MAIN=1
// it runs the CLI, so the end-to-end tests drive real keiline processes
// (and can kill -9 them) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("KEILINE_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	// The tests that need a PostgreSQL of their own get one (pgtest.NewDB);
	// the others start none.
	os.Exit(pgtest.Main(m))
}

// keiline returns a command running keiline with args.
func keiline(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KEILINE_AS_MAIN=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	return cmd
}

// canonical maps each car's VIN to its record with keys sorted.
func canonical(t *testing.T, name string, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		var car map[string]any
		if err := json.Unmarshal(sc.Bytes(), &car); err != nil {
			t.Fatalf("%s line %d: %v", name, n, err)
		}
		vin, _ := car["vin"].(string)
		norm, _ := json.Marshal(car) // map keys come out sorted
		if _, dup := out[vin]; dup {
			t.Errorf("%s: VIN %s appears twice", name, vin)
		}
		out[vin] = string(norm)
	}
	return out
}

// compareTruth checks that the export equals the truth, both ways.
func compareTruth(t *testing.T, truth, export []byte, cars int) {
	t.Helper()
	want, got := canonical(t, "truth", truth), canonical(t, "export", export)
	if len(want) != cars {
		t.Errorf("truth has %d cars, want %d", len(want), cars)
	}
	var vins []string
	for v := range want {
		vins = append(vins, v)
	}
	sort.Strings(vins)
	bad := 0
	for _, v := range vins {
		switch g, ok := got[v]; {
		case !ok:
			t.Errorf("VIN %s: in the truth, missing from the export", v)
			bad++
		case g != want[v]:
			t.Errorf("VIN %s differs: %s", v, firstDifference(want[v], g))
			bad++
		}
		if bad > 3 {
			t.FailNow()
		}
	}
	for v := range got {
		if _, ok := want[v]; !ok {
			t.Errorf("VIN %s: in the export, not in the truth", v)
		}
	}
}

func export(t *testing.T, state string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := keiline(t.Context(), "trace", "export", "--jsonl", "--state", state)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("trace export: %v\n%s", err, errb.String())
	}
	return out.Bytes()
}

func TestUpExportEqualsTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	for _, seed := range []string{"7", "11"} {
		t.Run("seed "+seed, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			truth := filepath.Join(t.TempDir(), "t.jsonl")
			var out bytes.Buffer
			cmd := keiline(t.Context(), "up", "--cars", "40", "--seed", seed, "--speed", "200", "--truth", truth, "--state", state, "--http", "127.0.0.1:0")
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("up: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "done in") {
				t.Errorf("up printed no summary:\n%s", out.String())
			}
			tb, err := os.ReadFile(truth)
			if err != nil {
				t.Fatal(err)
			}
			compareTruth(t, tb, export(t, state), 40)
			verify := keiline(t.Context(), "audit", "verify", "--state", state)
			if b, err := verify.CombinedOutput(); err != nil {
				t.Errorf("audit verify: %v\n%s", err, b)
			}
		})
	}
}

func TestUpSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	state := filepath.Join(t.TempDir(), "state")
	truth := filepath.Join(t.TempDir(), "t.jsonl")
	args := []string{"up", "--cars", "40", "--seed", "3", "--speed", "200", "--truth", truth, "--state", state, "--http", "127.0.0.1:0"}

	var out bytes.Buffer
	first := keiline(t.Context(), args...)
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once some cars have left the line and others are still on it.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if b, _ := os.ReadFile(truth); bytes.Count(b, []byte("\n")) >= 5 {
			break
		}
		if time.Now().After(deadline) {
			_ = first.Process.Kill()
			t.Fatalf("no car left the line in time:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()

	var out2 bytes.Buffer
	second := keiline(t.Context(), args...)
	second.Stdout, second.Stderr = &out2, &out2
	if err := second.Run(); err != nil {
		t.Fatalf("up after kill -9: %v\n%s", err, out2.String())
	}
	tb, err := os.ReadFile(truth)
	if err != nil {
		t.Fatal(err)
	}
	compareTruth(t, tb, export(t, state), 40)
}

func TestRunRejectsUnknownCommand(t *testing.T) {
	err := cli.Run(t.Context(), []string{"frobnicate"})
	if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("Run(frobnicate) = %v", err)
	}
}

// firstDifference names the first station where two car records differ.
func firstDifference(truth, export string) string {
	type car struct {
		Stations []json.RawMessage `json:"stations"`
	}
	var a, b car
	_ = json.Unmarshal([]byte(truth), &a)
	_ = json.Unmarshal([]byte(export), &b)
	for i := 0; i < max(len(a.Stations), len(b.Stations)); i++ {
		var x, y string
		if i < len(a.Stations) {
			x = string(a.Stations[i])
		}
		if i < len(b.Stations) {
			y = string(b.Stations[i])
		}
		if x != y {
			return fmt.Sprintf("station #%d:\n truth  %s\n export %s", i+1, x, y)
		}
	}
	return "car fields:\n truth  " + truth[:min(len(truth), 200)] + "\n export " + export[:min(len(export), 200)]
}

// TestChaosShort is the short fault campaign CI runs on every change: each
// part a separate process, two faults of every class, then the record must
// equal the truth (keiline chaos exits non-zero otherwise).
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("fault campaign")
	}
	dir := filepath.Join(t.TempDir(), "chaos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := keiline(t.Context(), "chaos", "--seed", "1", "--duration", "48s", "--faults-per-class", "2", "--dir", dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("keiline chaos: %v\n%s", err, out.String())
	}
	for _, want := range []string{"lost 0, doubled 0, changed 0", "hash chain whole", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("chaos summary does not say %q:\n%s", want, out.String())
		}
	}
	t.Log(out.String())
}
