package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/simulator/torque"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestTorqueAgentKill9 runs the agent as its own process against the
// simulated plant's tightening controllers and kills it (-9) while a
// tightening it made durable waits for its acknowledgement (MID 0062) —
// the controller drops the agent's acknowledges, as if the agent had died
// before sending one — and while the tools go on tightening. The agent
// started again acknowledges what the controller sends again without a
// second record, fetches what was made while it was away (MID 0064), and
// every tightening the controllers made is in the stream once. Meanwhile
// C04-NR3's link is cut in the middle of a car's batch and F01-NR1 is
// restarted after a car's first bolt. A tracker records the stream: every
// tightening is in the record (trace export) once, with the controller's
// values, those made while the agent was away fetched with MID 0064, and
// the audit finds the record intact (issue 15's acceptance, line 1).
func TestTorqueAgentKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	dir := t.TempDir()
	db := pgtest.NewDB(t) // before the plant starts: the database is ready when its cars come
	plant, err := simulator.New(simulator.Config{Dir: filepath.Join(dir, "plant"), Seed: 3, Speed: 150, Cars: 4, Torque: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plant.Stop() })
	b, err := broker.Start(broker.Config{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	nc, err := nats.Connect(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	rec := startRecord(t, db, js, line.Default())
	cfg := torqueLineConfig(t, plant, dir)
	args := []string{"agent", "--config", cfg, "--nats", b.URL(), "--spool", filepath.Join(dir, "spool.db")}

	nr1 := plant.Controller("C04-NR1")
	agent := startAgentProcess(t, args)
	faults := faultsMidBatch(t, plant)
	// Wait for a car's batch to begin (the tool enabled for it, no joint
	// made yet): the tightening held next is not the batch's last, so the
	// car still has joints for the operator to make while the agent is away
	// (after the last one the interlock disables the tool, and without the
	// agent no next car is set on it: the station rightly waits).
	waitUntil(t, agent, "C04-NR1's first results in the stream", func() bool {
		return len(nr1.Truth()) >= 2 && len(streamTightenings(t, js)) >= 2
	})
	// Only the controller's own state from here: reading the stream takes
	// longer than the moment between a tool enabled and its first joint.
	waitUntil(t, agent, "C04-NR1's results acknowledged and a new batch begun", func() bool {
		return nr1.Stats().Unacknowledged == 0 && nr1.Enabled() && nr1.BatchCounter() == 0
	})
	// The controller no longer hears the agent's acknowledges: the next
	// tightening is made durable and stays unacknowledged.
	nr1.SetFaults(torque.Faults{DropAcks: true})
	made := len(nr1.Truth())
	var held torque.Tightening
	waitUntil(t, agent, "a tightening durable and not acknowledged", func() bool {
		ts := nr1.Truth()
		if len(ts) <= made {
			return false
		}
		held = ts[made]
		_, durable := streamTightenings(t, js)[event.TighteningEventID("US1", "L1", "C04", "C04-NR1", held.ID)]
		return durable && nr1.Stats().Unacknowledged > 0
	})
	agent.kill9(t)
	nr1.SetFaults(torque.Faults{})
	// The tools go on while the agent is away.
	waitUntil(t, agent, "a tightening made while the agent is away", func() bool { return len(nr1.Truth()) > made+1 })

	agent = startAgentProcess(t, args)
	select {
	case <-plant.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("plant not done: %+v\nagent:\n%s", plant.Stats(), agent.out.String())
	}
	if err := faults(); err != nil {
		t.Fatalf("%v\nagent:\n%s", err, agent.out.String())
	}
	var truth []torque.Tightening
	for _, c := range plant.Controllers() {
		truth = append(truth, plant.Controller(c.ID).Truth()...)
	}
	waitUntil(t, agent, "every tightening in the stream", func() bool { return len(streamTightenings(t, js)) >= len(truth) })
	got := streamTightenings(t, js)
	if len(got) != len(truth) {
		t.Errorf("stream has %d tightenings, the controllers made %d", len(got), len(truth))
	}
	stationOf := map[string]string{}
	for _, c := range plant.Controllers() {
		stationOf[c.ID] = c.Station
	}
	for _, x := range truth {
		td, ok := got[event.TighteningEventID("US1", "L1", stationOf[x.Controller], x.Controller, x.ID)]
		if !ok || td.VIN != x.VIN || td.BatchCounter != x.BatchCounter || (td.Result == "OK") != x.OK {
			t.Errorf("%s tightening %d: stream %+v, truth %+v", x.Controller, x.ID, td, x)
		}
	}
	for _, c := range plant.Controllers() {
		waitUntil(t, agent, c.ID+" with every result acknowledged", func() bool { return plant.Controller(c.ID).Stats().Unacknowledged == 0 })
	}
	if td := got[event.TighteningEventID("US1", "L1", "C04", "C04-NR1", held.ID)]; td == nil || td.VIN != held.VIN {
		t.Errorf("the held tightening %d: %+v, want it recorded once", held.ID, td)
	}
	recorded := checkRecord(t, agent, rec, plant)
	fetched := 0
	for _, x := range recorded {
		if x.MID == 65 {
			fetched++
		}
	}
	if fetched == 0 {
		t.Errorf("no tightening in the record was fetched with MID 0064 (made while the agent was away)")
	}
	t.Logf("the record has every one of the %d tightenings once, %d of them fetched with MID 0064", len(recorded), fetched)
	checkTraceQuestions(t, rec, plant)
	if x := recorded[event.TighteningEventID("US1", "L1", "C04", "C04-NR1", held.ID)]; x.VIN != held.VIN {
		t.Errorf("the tightening durable before the kill: record %+v, want it once", x)
	}
}

// faultsMidBatch cuts C04-NR3's link while it is half way through a car's
// nuts and restarts F01-NR1 after a car's first bolt, each on its own
// goroutine so that neither misses its car; the returned func waits for
// both and says what went wrong.
func faultsMidBatch(t *testing.T, plant *simulator.Plant) func() error {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wait := func(what string, cond func() bool) bool {
		deadline := time.Now().Add(2 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				errs <- fmt.Errorf("gave up waiting: %s", what)
				return false
			}
			time.Sleep(time.Millisecond)
		}
		return true
	}
	midBatch := func(c *torque.Controller, n int) func() bool {
		return func() bool { return c.BatchCounter() == n && c.Stats().Subscribed }
	}
	nr3, seat := plant.Controller("C04-NR3"), plant.Controller("F01-NR1")
	wg.Go(func() {
		for !t.Failed() {
			if !wait("C04-NR3 half way through a batch", midBatch(nr3, 2)) || nr3.CutLink() {
				return
			}
			time.Sleep(time.Millisecond) // the client went away meanwhile: the next moment
		}
	})
	wg.Go(func() {
		if !wait("F01-NR1 after a first bolt", midBatch(seat, 1)) {
			return
		}
		if err := seat.Stop(); err != nil {
			errs <- err
		}
		if err := seat.Start(context.WithoutCancel(t.Context())); err != nil {
			errs <- err
		}
	})
	return func() error {
		wg.Wait()
		close(errs)
		return <-errs
	}
}

// torqueLineConfig writes the default line for plant into dir.
func torqueLineConfig(t *testing.T, plant *simulator.Plant, dir string) string {
	t.Helper()
	lc := line.Default()
	eps, addrs := map[string]string{}, map[string]string{}
	for _, s := range plant.Stations() {
		eps[s.ID] = s.Endpoint
	}
	for _, c := range plant.Controllers() {
		addrs[c.ID] = c.Address
	}
	if err := lc.SetEndpoints(eps); err != nil {
		t.Fatal(err)
	}
	if err := lc.SetControllerAddresses(addrs); err != nil {
		t.Fatal(err)
	}
	lc.PollInterval = 20 * time.Millisecond
	lc.Sequencing.Station = ""
	y, err := lc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "line.yaml")
	if err := os.WriteFile(path, y, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// streamTightenings returns the stream's tightening events by id, failing
// on one stored twice.
func streamTightenings(t *testing.T, js jetstream.JetStream) map[string]*event.Tightening {
	t.Helper()
	s, err := js.Stream(t.Context(), event.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*event.Tightening{}
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		if ev.Kind != event.KindTightening {
			continue
		}
		if _, dup := out[ev.ID]; dup {
			t.Fatalf("event %s is in the stream twice", ev.ID)
		}
		out[ev.ID], _ = ev.Tightening()
	}
	return out
}

// agentProcess is a keiline agent run as its own process.
type agentProcess struct {
	cmd *exec.Cmd
	out *lockedBuffer
}

// lockedBuffer is a process's output the test reads while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startAgentProcess(t *testing.T, args []string) *agentProcess {
	t.Helper()
	p := &agentProcess{out: &lockedBuffer{}}
	p.cmd = keiline(context.WithoutCancel(t.Context()), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(os.Interrupt)
			_ = p.cmd.Wait()
		}
	})
	return p
}

func (p *agentProcess) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// waitUntil polls cond until it holds, failing with what after a generous
// guard (never reached when all is well).
func waitUntil(t *testing.T, p *agentProcess, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s\nagent:\n%s", what, p.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
