package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/internal/testplc"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// The foreign PLC's line config as docs/line-config.md writes it.
const foreignExample = "../../docs/examples/s7-wheel-nuts.yaml"

// foreignConfig writes the docs' example config for the foreign PLC at
// endpoint into dir, with edit applied to its text, and returns its path.
func foreignConfig(t *testing.T, dir, endpoint string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(foreignExample)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "opc.tcp://127.0.0.1:4840", endpoint)
	if edit != nil {
		s = edit(s)
	}
	path := filepath.Join(dir, "line.yaml")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// part is a keiline process of the test, stopped at the end.
type part struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (p *part) output() string { return p.out.String() }

func startPart(t *testing.T, args ...string) *part {
	t.Helper()
	p := &part{out: &syncBuffer{}}
	p.cmd = keiline(context.WithoutCancel(t.Context()), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("keiline %v: %v", args, err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(os.Interrupt)
			_ = p.cmd.Wait()
		}
	})
	return p
}

// kill9 kills the part at once, as a power cut would.
func (p *part) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// until polls cond every 50 ms until it holds, failing the test with what
// after a generous guard (never reached when all is well).
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestForeignPLCEndToEnd commissions a PLC keiline never shaped (an S7-1500
// look-alike with Int16 codes, body numbers, a structure array of nuts, an
// angle array, one tool tag, no times, a read limit of 10) from the docs'
// example config alone, and runs it through separate processes: nats,
// tracker, agent. Every cycle the PLC made is recorded exactly once with
// its values converted, through a kill -9 of the agent between its publish
// and its acknowledgement; a cycle with a bad body number is not
// acknowledged and is recorded once the PLC fixes it; an unreadable torque
// is recorded as unknown, never 0 and never OK.
func TestForeignPLCEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const cars = 10
	plc := testplc.StartForeign(t, "--cycle-ms", "300", "--cycles", strconv.Itoa(cars), "--seed", "5", "--nok-rate", "0.15", "--paused")
	dir := t.TempDir()

	// Commissioning: the map the docs write checks clean; a misspelled
	// node is named with its config line, station, tag and node.
	bad := foreignConfig(t, filepath.Join(dir), plc.Endpoint, func(s string) string {
		return strings.Replace(s, `"DB201"."Nut"[2]."Nm"`, `"DB201"."Nut"[2]."NM"`, 1)
	})
	var out bytes.Buffer
	cmd := keiline(t.Context(), "plc", "check", "--config", bad)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatalf("plc check of a misspelled node passed:\n%s", out.String())
	}
	if want := regexp.MustCompile(regexp.QuoteMeta(bad) + `:\d+: station NR: tag Joint2\.TorqueNm: node ns=3;s="DB201"\."Nut"\[2\]\."NM": does not exist`); !want.MatchString(out.String()) {
		t.Errorf("plc check output does not name the line, station, tag and node:\n%s", out.String())
	}
	cfg := foreignConfig(t, dir, plc.Endpoint, nil)
	out.Reset()
	cmd = keiline(t.Context(), "plc", "check", "--config", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("plc check of the docs' config: %v\n%s", err, out.String())
	}

	state := filepath.Join(dir, "state")
	// The plant's NATS as a plant runs it: every part its own identity.
	sec := filepath.Join(dir, "nats-sec")
	out.Reset()
	cmd = keiline(t.Context(), "nats", "provision", "--config", cfg, "--dir", sec)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("nats provision: %v\n%s", err, out.String())
	}
	credsOf := func(role string) string {
		m := regexp.MustCompile(`(?m)^\S+\s+` + role + `\s+(\S+)$`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("nats provision lists no %s:\n%s", role, out.String())
		}
		return m[1]
	}
	trackerCreds, agentCreds := credsOf("tracker"), credsOf("agent")
	natsPart := startPart(t, "nats", "--store", filepath.Join(dir, "nats"), "--port", "0", "--secure", sec)
	var natsURL string
	until(t, "nats-server ready", func() bool {
		m := regexp.MustCompile(`nats-server ready" url=(tls://\S+)`).FindStringSubmatch(natsPart.output())
		if m != nil {
			natsURL = m[1]
		}
		return natsURL != ""
	})
	tracker := startPart(t, "tracker", "--config", cfg, "--nats", natsURL, "--creds", trackerCreds, "--state", state)
	agentArgs := []string{"agent", "--config", cfg, "--nats", natsURL, "--creds", agentCreds, "--spool", filepath.Join(dir, "spool.db")}
	agent := startPart(t, agentArgs...)
	plc.Command(t, map[string]any{"cmd": "resume"})
	// A kill -9 of the agent between its publish and its acknowledgement.
	until(t, "FR acknowledged twice", func() bool { return len(plc.Acked()["FR"]) >= 2 })
	plc.Command(t, map[string]any{"cmd": "ack-hang", "station": "FR"})
	held := plc.WaitEvent(t, "ack-held", nil)
	agent.kill9(t)
	plc.Command(t, map[string]any{"cmd": "ack-normal", "station": "FR"})
	agent = startPart(t, agentArgs...)
	until(t, "the held cycle acknowledged by the new agent", func() bool {
		for _, c := range plc.Acked()["FR"] {
			if float64(c) == held["value"].(float64) {
				return true
			}
		}
		return false
	})

	// The dashboard, once the tracker has made the record; the PLC waits
	// meanwhile (a line may stop: it keeps its results).
	plc.Command(t, map[string]any{"cmd": "pause"})
	first := plc.WaitEvent(t, "cycle", func(ev map[string]any) bool { return ev["station"] == "FR" })
	var lastTrace []byte
	defer func() {
		if t.Failed() {
			t.Logf("last trace vin:\n%s\ntracker:\n%s\nagent:\n%s", lastTrace, tracker.out, agent.out)
		}
	}()
	until(t, "the first car in the record", func() bool {
		out, err := keiline(t.Context(), "trace", "vin", first["vin"].(string), "--json", "--state", state).CombinedOutput()
		lastTrace = out
		return err == nil
	})
	web := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	serve := startPart(t, "serve", "--state", state, "--config", cfg, "--http", web)
	defer func() {
		if t.Failed() {
			t.Logf("keiline serve:\n%s\ntracker:\n%s", serve.out, tracker.out)
		}
	}()

	plc.Command(t, map[string]any{"cmd": "resume"})

	// An unreadable torque, and a cycle with a body number of 0.
	plc.Command(t, map[string]any{"cmd": "bad-quality", "station": "FR", "node": `"DB101"."Nut"[2]."Nm"`, "status": "BadSensorFailure"})
	plc.Command(t, map[string]any{"cmd": "bad-identity", "station": "NR", "fields": []string{"BodyNo"}})
	refused := plc.WaitEvent(t, "shown", func(ev map[string]any) bool {
		if ev["station"] != "NR" {
			return false
		}
		tr := plc.TruthOf(t, "NR", int32(ev["counter"].(float64)))
		return tr.BadIdentity != nil
	})
	counter := int(refused["counter"].(float64))
	until(t, "the agent's refusal in its log", func() bool {
		return strings.Contains(agent.out.String(), fmt.Sprintf("cycle %d not acknowledged", counter))
	})
	// The line supervisor sees the refusal as NR's alarm on the dashboard.
	shown := time.Now()
	until(t, "NR's alarm on the dashboard", func() bool {
		a := stationAlarm(t, web, "NR")
		return a != nil && a.Code == event.AlarmRefused && a.Cycle == int64(counter) && strings.Contains(a.Text, "no car identity")
	})
	t.Logf("the refused cycle %d showed as NR's alarm on the dashboard %s after the agent logged it", counter, time.Since(shown).Round(time.Millisecond))
	for _, c := range plc.Acked()["NR"] {
		if c == counter {
			t.Fatalf("NR cycle %d with body number 0 was acknowledged", counter)
		}
	}
	if !strings.Contains(strings.ReplaceAll(agent.out.String(), `\"`, `"`), `no car identity: neither a VIN nor a body number; Result.BodyNo = "" (PLC value 0) (node ns=3;s="DB200"."BodyNo" at `+cfg+`:`) {
		t.Errorf("the refusal does not name the tag, its value, node and config line:\n%s", agent.out.String())
	}
	plc.Command(t, map[string]any{"cmd": "fix-identity", "station": "NR"})
	until(t, "NR's alarm cleared once the PLC's data is fixed", func() bool { return stationAlarm(t, web, "NR") == nil })

	until(t, "every car through both stations", func() bool {
		a := plc.Acked()
		return len(a["FR"]) == cars && len(a["NR"]) == cars
	})
	truth := plc.Truth(t)
	if len(truth) != 2*cars {
		t.Fatalf("truth has %d results, want %d", len(truth), 2*cars)
	}
	vins := map[int]string{} // car -> VIN, from FR
	for _, tr := range truth {
		if tr.Station == "FR" {
			vins[tr.Car] = tr.VIN
		}
	}
	records := map[string]schema.BirthRecord{}
	until(t, "the tracker has recorded every cycle", func() bool {
		n := 0
		for car, v := range vins {
			var b schema.BirthRecord
			c := keiline(t.Context(), "trace", "vin", v, "--json", "--state", state)
			o, err := c.Output()
			if err != nil || json.Unmarshal(o, &b) != nil {
				return false
			}
			records[v] = b
			_ = car
			n += len(b.Visits)
		}
		return n >= 2*cars
	})
	tracker.cmd.Process.Signal(os.Interrupt)
	unknown := 0
	for _, tr := range truth {
		v := vins[tr.Car]
		id := event.EventID("US1", "L1", tr.Station, event.KindCycle, 0, uint64(tr.Counter))
		var got []schema.BirthVisit
		for _, x := range records[v].Visits {
			if x.EventID == id {
				got = append(got, x)
			}
		}
		if len(got) != 1 {
			t.Errorf("car %d (%s) %s cycle %d: recorded %d times, want once", tr.Car, v, tr.Station, tr.Counter, len(got))
			continue
		}
		x := got[0]
		want := map[int16]string{1: "OK", 2: "NOK"}[tr.Verdict]
		if x.Result != want || len(x.Joints) != 4 || len(x.Tests) != 1 || len(x.Parts) != 1 || x.Parts[0].Lot != tr.NutLot {
			t.Errorf("%s: result %s, %d joints, %d tests, parts %+v; truth %s, lot %s", id, x.Result, len(x.Joints), len(x.Tests), x.Parts, want, tr.NutLot)
			continue
		}
		badNut := map[int]bool{}
		for _, b := range tr.Bad {
			if m := regexp.MustCompile(`"Nut"\[(\d)\]\."Nm"`).FindStringSubmatch(b.Node); m != nil {
				n, _ := strconv.Atoi(m[1])
				badNut[n] = true
			}
		}
		for i, n := range tr.Nuts {
			j := x.Joints[i]
			if j.Joint != fmt.Sprintf("wheel nut %d", n.Nut) || j.Tool != tr.ToolID {
				t.Errorf("%s joint %d: %q tool %q, truth nut %d tool %q", id, i, j.Joint, j.Tool, n.Nut, tr.ToolID)
			}
			if badNut[n.Nut] {
				unknown++
				if j.TorqueNm != nil || j.OK != nil {
					t.Errorf("%s %s: an unreadable torque recorded as %s %s, want unknown", id, j.Joint, event.Num(j.TorqueNm, "%.2f", "Nm"), event.Verdict(j.OK))
				}
				continue
			}
			if j.TorqueNm == nil || math.Abs(*j.TorqueNm-n.TorqueNm) > 1e-9 || j.AngleDeg == nil || math.Abs(*j.AngleDeg-n.AngleDeg) > 1e-9 || event.IsOK(j.OK) != n.OK {
				t.Errorf("%s %s: %s %s, truth %.2f Nm %.1f° OK=%v", id, j.Joint, j.Describe(), event.Verdict(j.OK), n.TorqueNm, n.AngleDeg, n.OK)
			}
		}
		if len(tr.Bad) > 0 && !slices.ContainsFunc(records[v].Holds, func(h schema.BirthHold) bool {
			return h.Kind == schema.HoldUnknown && h.OpenedEventID == id && strings.Contains(h.Reason, "torque")
		}) {
			t.Errorf("%s: an unreadable torque put no unknown hold on car %s: holds %+v", id, v, records[v].Holds)
		}
		if c := x.Tests[0]; c.Value == nil || math.Abs(*c.Value-tr.ClampForceKN) > 1e-5 || !event.IsOK(c.OK) {
			t.Errorf("%s clamp force %s, truth %g kN", id, c.Describe(), tr.ClampForceKN)
		}
	}
	if unknown != 1 {
		t.Errorf("%d joints recorded unknown, want the one injected", unknown)
	}
}

// stationAlarm is station's current alarm as the dashboard's line API at
// addr shows it, or nil.
func stationAlarm(t *testing.T, addr, station string) *dashboard.AlarmView {
	t.Helper()
	res, err := http.Get("http://" + addr + "/api/v1/line")
	if err != nil {
		return nil // not listening yet
	}
	defer res.Body.Close()
	var doc dashboard.LineView
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatalf("line API: %v", err)
	}
	for _, s := range doc.Stations {
		if s.ID == station {
			return s.Alarm
		}
	}
	return nil
}
