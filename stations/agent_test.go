package stations_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/testplc"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a log sink the test can read while the agent writes.
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

// rig is a simulated plant (real OPC UA servers), an embedded nats-server
// and an agent for every station.
type rig struct {
	plant  *simulator.Plant
	lc     *line.Config
	js     jetstream.JetStream
	broker *broker.Broker
	nats   broker.Config
	spool  *stations.Spool
	truth  string
	logs   *syncBuffer
}

func newRig(t *testing.T, cars int, edit func(*line.Config)) *rig {
	return newRigWith(t, rigOptions{cars: cars, edit: edit})
}

type rigOptions struct {
	cars  int
	speed float64
	edit  func(*line.Config)
	spool *stations.SpoolConfig
	// natsStore is the JetStream store directory; defaults to one in
	// t.TempDir().
	natsStore string
	// noAgent leaves starting agents to the test (rig.startAgent).
	noAgent bool
}

func newRigWith(t *testing.T, o rigOptions) *rig {
	t.Helper()
	cars, edit := o.cars, o.edit
	if o.speed == 0 {
		o.speed = 600
	}
	dir := t.TempDir()
	r := &rig{truth: filepath.Join(dir, "truth.jsonl"), logs: &syncBuffer{}}
	plant, err := simulator.New(simulator.Config{Plant: "US1", Line: "L1", Dir: filepath.Join(dir, "plant"), Seed: 5, Speed: o.speed,
		Cars: cars, TruthPath: r.truth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plant.Stop() })
	r.plant = plant
	r.lc = testplc.SimLine(t, plant)
	r.lc.PollInterval = 20 * time.Millisecond
	if edit != nil {
		edit(r.lc)
	}
	if err := r.lc.Validate(); err != nil {
		t.Fatal(err)
	}
	r.nats = broker.Config{StoreDir: filepath.Join(dir, "nats"), Logger: slog.New(slog.NewTextHandler(r.logs, nil))}
	if o.natsStore != "" {
		r.nats.StoreDir = o.natsStore
	}
	b, err := broker.Start(r.nats)
	if err != nil {
		t.Fatal(err)
	}
	r.broker, r.nats.Port = b, b.Port()
	t.Cleanup(func() { r.broker.Shutdown() })
	nc, err := nats.Connect(b.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(t.Context(), r.js, 1); err != nil {
		t.Fatal(err)
	}
	if o.spool != nil {
		r.openSpool(t, *o.spool)
	}
	if !o.noAgent {
		t.Cleanup(r.startAgent(t))
	}
	return r
}

// openSpool opens the spool of cfg as the rig's (closed at the test's end).
func (r *rig) openSpool(t *testing.T, cfg stations.SpoolConfig) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	}
	spool, err := stations.OpenSpool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = spool.Close() })
	r.spool = spool
}

// startAgent starts an agent for every station with the rig's spool, if
// any, and returns what stops it.
func (r *rig) startAgent(t *testing.T) (stop func()) {
	t.Helper()
	agent, err := stations.NewAgent(stations.AgentConfig{Line: r.lc, Publisher: streams.NewPublisher(r.js),
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)), Spool: r.spool, PublishTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

// waitDone waits until every car has left the line and every event is in
// NATS (none left in the spool).
func (r *rig) waitDone(t *testing.T) {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	select {
	case <-r.plant.Done():
	case <-deadline:
		t.Fatalf("plant not done: %+v\nagent log:\n%s", r.plant.Stats(), r.logs.String())
	}
	for r.spool != nil && r.spool.Len() > 0 {
		select {
		case <-deadline:
			t.Fatalf("spool still holds %d events\nagent log:\n%s", r.spool.Len(), r.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// cycles returns every cycle event in the stream by id.
func (r *rig) cycles(t *testing.T) map[string]*event.Event {
	t.Helper()
	s, err := r.js.Stream(t.Context(), event.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*event.Event{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		if ev.Kind != event.KindCycle {
			continue
		}
		if _, dup := out[ev.ID]; dup {
			t.Errorf("event %s is in the stream twice", ev.ID)
		}
		out[ev.ID] = ev
	}
	return out
}

type truthCar struct {
	VIN      string `json:"vin"`
	Stations []struct {
		Station string        `json:"station"`
		Result  string        `json:"result"`
		Parts   []event.Part  `json:"parts"`
		Joints  []event.Joint `json:"joints"`
		Tests   []event.Test  `json:"tests"`
	} `json:"stations"`
}

func readTruth(t *testing.T, path string) []truthCar {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cars []truthCar
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var c truthCar
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cars = append(cars, c)
	}
	return cars
}

// checkAgainstTruth checks that each station cycle of the truth is in the
// stream once, with the same values.
func checkAgainstTruth(t *testing.T, r *rig, cars int) {
	t.Helper()
	truth := readTruth(t, r.truth)
	if len(truth) != cars {
		t.Fatalf("truth has %d cars, want %d", len(truth), cars)
	}
	byCar := map[string]*event.Cycle{}
	for _, ev := range r.cycles(t) {
		c, err := ev.Cycle()
		if err != nil {
			t.Fatal(err)
		}
		key := ev.VIN + "/" + ev.Station
		if _, dup := byCar[key]; dup {
			t.Errorf("car %s has two cycles at %s", ev.VIN, ev.Station)
		}
		byCar[key] = c
	}
	visits := 0
	for _, car := range truth {
		for _, st := range car.Stations {
			visits++
			c, ok := byCar[car.VIN+"/"+st.Station]
			if !ok {
				t.Errorf("car %s: no event for %s", car.VIN, st.Station)
				continue
			}
			got, _ := json.Marshal([]any{c.Result, c.Parts, c.Joints, c.Tests})
			want, _ := json.Marshal([]any{st.Result, st.Parts, st.Joints, st.Tests})
			if !bytes.Equal(got, want) {
				t.Errorf("car %s at %s:\n event %s\n truth %s", car.VIN, st.Station, got, want)
			}
		}
	}
	if len(byCar) != visits {
		t.Errorf("stream has %d cycles, truth %d station visits", len(byCar), visits)
	}
}

func TestAgentPublishesEveryCycleOnce(t *testing.T) {
	r := newRig(t, 6, nil)
	r.waitDone(t)
	checkAgainstTruth(t, r, 6)
}

func TestAgentSurvivesPLCRestarts(t *testing.T) {
	r := newRig(t, 8, nil)
	// Power-cycle two PLCs a few times while cars flow.
	for i := range 4 {
		deadline := time.Now().Add(time.Minute)
		for r.plant.Stats().Framed < 2*(i+1) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		for _, st := range []string{"C04", "F01"} {
			if err := r.plant.RestartStation(t.Context(), st); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.waitDone(t)
	checkAgainstTruth(t, r, 8)
	if !strings.Contains(r.logs.String(), "PLC connected") {
		t.Errorf("agent never logged a connection")
	}
}

func TestAgentReportsBadValuesAndKeepsTheLineRunning(t *testing.T) {
	r := newRig(t, 3, func(l *line.Config) {
		c04, _ := l.Station("C04")
		// Wrong type: a torque mapped onto a String node of the PLC.
		c04.Nodes["Joint1.TorqueNm"] = c04.Nodes["Joint1.Name"]
		w01, _ := l.Station("W01")
		// A node the PLC lacks.
		w01.Nodes["Part1.Lot"] = line.NodeTag("ns=1;s=W01.NoSuchTag")
	})
	r.waitDone(t)
	var c04, w01 int
	for _, ev := range r.cycles(t) {
		c, _ := ev.Cycle()
		switch ev.Station {
		case "C04":
			c04++
			if len(c.Bad) != 1 || c.Bad[0].Tag != "Joint1.TorqueNm" || c.Bad[0].NodeID != "ns=1;s=C04.Joint1.Name" ||
				!strings.Contains(c.Bad[0].Reason, "wrong type: String, want number") {
				t.Errorf("C04 event %s bad values = %+v", ev.ID, c.Bad)
			}
			if c.Joints[0].TorqueNm != nil || c.Joints[0].OK != nil {
				t.Errorf("C04 event %s used a bad value as torque: %+v, want it unknown (nil torque, nil OK)", ev.ID, c.Joints[0])
			}
		case "W01":
			w01++
			if len(c.Bad) != 1 || c.Bad[0].Tag != "Part1.Lot" || c.Bad[0].NodeID != "ns=1;s=W01.NoSuchTag" ||
				!strings.Contains(c.Bad[0].Reason, "bad quality") {
				t.Errorf("W01 event %s bad values = %+v", ev.ID, c.Bad)
			}
		}
	}
	if c04 != 3 || w01 != 3 {
		t.Errorf("cycles: C04 %d, W01 %d, want 3 each", c04, w01)
	}
}

func TestAgentNamesStationAndNodeOfAMissingHandshakeTag(t *testing.T) {
	r := newRig(t, 0, func(l *line.Config) {
		p02, _ := l.Station("P02")
		p02.Nodes["CycleCounter"] = line.NodeTag("ns=1;s=P02.Missing")
	})
	deadline := time.Now().Add(30 * time.Second)
	// The message names the station, the tag with its config line, and the node.
	want := regexp.MustCompile(`station P02: tag CycleCounter at line/default\.yaml:\d+: node ns=1;s=P02\.Missing: bad quality`)
	for !want.MatchString(r.logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("agent log never said %q:\n%s", want, r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
