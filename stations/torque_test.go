package stations_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/simulator/torque"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// torqueRig is the simulated plant with its tightening controllers, the
// default line config pointed at it, an embedded nats-server and an agent
// for every station with a spool.
type torqueRig struct {
	plant  *simulator.Plant
	lc     *line.Config
	js     jetstream.JetStream
	spool  *stations.Spool
	truth  string // the torque truth file
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type torqueRigOptions struct {
	seed  int64
	cars  int
	speed float64
	// addr, when set, gives a controller's address in the line config
	// (a proxy in front of it).
	addr func(id, real string) string
	edit func(*line.Config)
	// before runs once the plant has started, before the agent starts.
	before func(p *simulator.Plant)
}

func newTorqueRig(t *testing.T, o torqueRigOptions) *torqueRig {
	t.Helper()
	dir := t.TempDir()
	r := &torqueRig{truth: filepath.Join(dir, "torque.jsonl"), logs: &syncBuffer{}}
	plant, err := simulator.New(simulator.Config{Plant: "US1", Line: "L1", Dir: filepath.Join(dir, "plant"), Seed: o.seed, Speed: o.speed,
		Cars: o.cars, Torque: true, TorqueTruthPath: r.truth, Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plant.Stop() })
	r.plant = plant
	if o.before != nil {
		o.before(plant)
	}
	r.lc = defaultLineFor(t, plant, o.addr)
	if o.edit != nil {
		o.edit(r.lc)
		if err := r.lc.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := broker.Start(broker.Config{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
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
	if r.spool, err = stations.OpenSpool(stations.SpoolConfig{Path: filepath.Join(dir, "spool.db")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.spool.Close() })
	agent, err := stations.NewAgent(stations.AgentConfig{Line: r.lc, Publisher: streams.NewPublisher(r.js),
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)), Spool: r.spool, PublishTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- agent.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Error(err)
		}
	})
	return r
}

// defaultLineFor is the default line (line/default.yaml) with the plant's
// endpoints and controller addresses, as keiline up makes it.
func defaultLineFor(t *testing.T, p *simulator.Plant, addr func(id, real string) string) *line.Config {
	t.Helper()
	lc := line.Default()
	eps := map[string]string{}
	for _, s := range p.Stations() {
		eps[s.ID] = s.Endpoint
	}
	addrs := map[string]string{}
	for _, c := range p.Controllers() {
		addrs[c.ID] = c.Address
		if addr != nil {
			addrs[c.ID] = addr(c.ID, c.Address)
		}
	}
	if err := lc.SetEndpoints(eps); err != nil {
		t.Fatal(err)
	}
	if err := lc.SetControllerAddresses(addrs); err != nil {
		t.Fatal(err)
	}
	lc.PollInterval = 20 * time.Millisecond
	lc.Sequencing.Station = ""
	if err := lc.Validate(); err != nil {
		t.Fatal(err)
	}
	return lc
}

// until polls cond until it holds, failing with what after a generous
// guard (never reached when all is well).
func until(t *testing.T, r *torqueRig, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s\nplant %+v\nagent log:\n%s", what, r.plant.Stats(), r.logs.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// events returns the stream's events of kind, failing on a duplicate id.
func (r *torqueRig) events(t *testing.T, kind string) []*event.Event {
	t.Helper()
	s, err := r.js.Stream(t.Context(), event.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := event.Decode(m.Data)
		if err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		if ev.Kind != kind {
			continue
		}
		if seen[ev.ID] {
			t.Errorf("event %s is in the stream twice", ev.ID)
		}
		seen[ev.ID] = true
		out = append(out, ev)
	}
	return out
}

// tightenings maps the stream's tightening events by event id.
func (r *torqueRig) tightenings(t *testing.T) map[string]*event.Tightening {
	t.Helper()
	out := map[string]*event.Tightening{}
	for _, ev := range r.events(t, event.KindTightening) {
		td, err := ev.Tightening()
		if err != nil {
			t.Fatal(err)
		}
		out[ev.ID] = td
	}
	return out
}

func readTorqueTruth(t *testing.T, path string) []simulator.TruthTightening {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []simulator.TruthTightening
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var x simulator.TruthTightening
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// checkTightenings checks that every tightening the controllers made is in
// the stream once, with its values and the joint the plant's operator
// tightened, and that nothing else is; it returns the stream's by id.
func checkTightenings(t *testing.T, r *torqueRig) map[string]*event.Tightening {
	t.Helper()
	truth := readTorqueTruth(t, r.truth)
	var made int
	for _, c := range r.plant.Controllers() {
		made += len(r.plant.Controller(c.ID).Truth())
	}
	if len(truth) != made || made == 0 {
		t.Fatalf("torque truth has %d lines, the controllers made %d", len(truth), made)
	}
	until(t, r, "every tightening in the stream", func() bool { return len(r.tightenings(t)) >= made && r.spool.Len() == 0 })
	got := r.tightenings(t)
	if len(got) != made {
		t.Errorf("stream has %d tightenings, the controllers made %d", len(got), made)
	}
	for _, x := range truth {
		id := event.TighteningEventID("US1", "L1", x.Station, x.Controller, x.ID)
		td, ok := got[id]
		if !ok {
			t.Errorf("tightening %s not in the stream", id)
			continue
		}
		ok = td.VIN == x.VIN && td.Pset == x.Pset && td.BatchCounter == x.BatchCounter && (td.Result == "OK") == x.OK &&
			td.TorqueNm != nil && math.Abs(*td.TorqueNm*100-float64(x.Torque)) < 0.5 && td.AngleDeg != nil && *td.AngleDeg == float64(x.Angle) &&
			td.Joint == x.Joint && td.Class == "A" && td.Channel == x.Channel
		if td.MID == 61 {
			ok = ok && td.TorqueMinNm != nil && math.Abs(*td.TorqueMinNm*100-float64(x.TorqueMin)) < 0.5 && td.ToolSerial == x.ToolSerial
		}
		if !ok {
			t.Errorf("tightening %s:\n stream %+v\n truth  %+v", id, *td, x)
		}
	}
	return got
}

// proxy forwards TCP connections to a controller until cut: while down it
// refuses new connections and has closed the open ones, as a pulled cable
// or a switch off does.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
			p.wg.Go(func() {
				_, _ = io.Copy(pair[0], pair[1])
				pair[0].Close()
				pair[1].Close()
			})
		}
	}
}

// cut takes the link down (true) or up again (false).
func (p *proxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// TestTighteningsOnceThroughFaults: every tightening the plant's
// controllers made reaches the stream exactly once, with its values and
// the joint its batch position names, through a cut link in the middle of
// a batch, a controller restart in the middle of one, and a disconnect so
// long that the rest of a batch is made while it lasts (fetched with MID
// 0064 once the link is back).
func TestTighteningsOnceThroughFaults(t *testing.T) {
	var px *proxy
	r := newTorqueRig(t, torqueRigOptions{seed: 11, cars: 5, speed: 200, addr: func(id, real string) string {
		if id != "C04-NR2" {
			return real
		}
		px = startProxy(t, real)
		return px.addr()
	}})
	ctl := func(id string) *torque.Controller { return r.plant.Controller(id) }
	// Each fault waits for its moment on its own goroutine, so none misses
	// its car while another is under way.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wait := func(what string, cond func() bool) bool {
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				errs <- fmt.Errorf("gave up waiting: %s", what)
				return false
			}
			time.Sleep(time.Millisecond)
		}
		return true
	}
	midBatch := func(id string, n int) func() bool {
		return func() bool { return ctl(id).BatchCounter() == n }
	}
	// A cut link while C04-NR1 is half way through a car's nuts.
	wg.Go(func() {
		if wait("C04-NR1 half way through a batch", midBatch("C04-NR1", 2)) && !ctl("C04-NR1").CutLink() {
			errs <- fmt.Errorf("C04-NR1 had no client to cut")
		}
	})
	// A restart of F01-NR1 after its first bolt.
	wg.Go(func() {
		if !wait("F01-NR1 after a first bolt", midBatch("F01-NR1", 1)) {
			return
		}
		if err := ctl("F01-NR1").Stop(); err != nil {
			errs <- err
		}
		if err := ctl("F01-NR1").Start(t.Context()); err != nil {
			errs <- err
		}
	})
	// C04-NR2's link down after the first nut of a car, until the rest of
	// the car's nuts are tightened: those are fetched with MID 0064.
	var whileDown []uint32
	wg.Go(func() {
		defer px.cut(false)
		if !wait("C04-NR2 after a first nut", midBatch("C04-NR2", 1)) {
			return
		}
		px.cut(true)
		if !wait("C04-NR2's link down", func() bool { return !ctl("C04-NR2").Stats().Connected }) {
			return
		}
		n := len(ctl("C04-NR2").Truth())
		if !wait("C04-NR2's batch complete while disconnected", func() bool {
			last, _ := ctl("C04-NR2").Last()
			return last.BatchStatus == 1 && len(ctl("C04-NR2").Truth()) > n
		}) {
			return
		}
		for _, x := range ctl("C04-NR2").Truth()[n:] {
			whileDown = append(whileDown, x.ID)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v\nagent log:\n%s", err, r.logs.String())
	}

	select {
	case <-r.plant.Done():
	case <-time.After(90 * time.Second):
		t.Fatalf("plant not done: %+v\nagent log:\n%s", r.plant.Stats(), r.logs.String())
	}
	got := checkTightenings(t, r)
	for _, id := range whileDown {
		td := got[event.TighteningEventID("US1", "L1", "C04", "C04-NR2", id)]
		if td == nil || td.MID != 65 || td.TorqueMinNm != nil {
			t.Errorf("C04-NR2 tightening %d, made while disconnected: %+v, want it fetched with MID 0064 (no limits)", id, td)
		}
	}
	for _, c := range r.plant.Controllers() {
		until(t, r, c.ID+" with every result acknowledged", func() bool { return ctl(c.ID).Stats().Unacknowledged == 0 })
		last, _ := ctl(c.ID).Last()
		mark, err := r.spool.LastDurable("US1.L1." + c.Station + "." + c.ID)
		if err != nil || mark != last.ID {
			t.Errorf("%s: last durable id %d (%v), want its newest %d", c.ID, mark, err, last.ID)
		}
	}
	if !strings.Contains(r.logs.String(), "fetched results made while disconnected") {
		t.Errorf("the agent did not log the results it fetched:\n%s", r.logs.String())
	}
}

// resultFrame is a MID 0061 revision 1, as a controller sends it.
func resultFrame(controller, vin string, pset, counter int, id uint32, at time.Time) []byte {
	data := fmt.Sprintf("01%04d02%02d03%-25s04%-25s05%02d06%03d07%04d08%04d09%d10%d11%d12%06d13%06d14%06d15%06d16%05d17%05d18%05d19%05d20%s21%s22%d23%010d",
		4, 1, controller, vin, 0, pset, 4, counter, 1, 1, 1, 9720, 11880, 10800, 10912, 15, 75, 45, 40,
		at.Format("2006-01-02:15:04:05"), at.Format("2006-01-02:15:04:05"), 0, id)
	return fmt.Appendf(nil, "%04d0061001         %s\x00", 20+len(data), data)
}

// TestInterlock: a tool the agent finds enabled with no car in its station
// is disabled; for a car of a build the pset map gives a parameter set the
// controller gets the car's VIN and that set and is enabled, and disabled
// again once the car's batch is complete; a build the map gives none keeps
// it disabled (the car waits). A tightening a controller reports while its
// tool is disabled is recorded, flagged, with an alarm.
func TestInterlock(t *testing.T) {
	const seed = 4 // a KT (parameter set 2), then a KV
	var first, second simulator.TruthCar
	n := 0
	if err := simulator.History(seed, "", 2, func(c simulator.TruthCar) error {
		if n++; n == 1 {
			first = c
		} else {
			second = c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if first.Model == second.Model {
		t.Fatalf("seed %d: the first two cars are both %s; pick a seed with two models", seed, first.Model)
	}
	r := newTorqueRig(t, torqueRigOptions{seed: seed, cars: 2, speed: 100,
		before: func(p *simulator.Plant) {
			// Someone left C04-NR1's tool enabled.
			l, err := net.Dial("tcp", p.Controllers()[0].Address)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			for _, f := range []string{"00200001001         \x00", "00200043001         \x00", "00200003001         \x00"} {
				if _, err := io.WriteString(l, f); err != nil {
					t.Fatal(err)
				}
			}
			_, _ = io.Copy(io.Discard, l) // until the controller closes after MID 0003
			if !p.Controller("C04-NR1").Enabled() {
				t.Fatal("C04-NR1 not enabled by the test")
			}
		},
		edit: func(lc *line.Config) {
			// The second car's model gets no wheel-nut tightening from C04-NR1.
			c04, _ := lc.Station("C04")
			ct := &c04.Controllers[0]
			ct.Psets = append([]line.PsetRule{{Model: second.Model, Pset: 0}}, ct.Psets...)
		}})
	nr1 := r.plant.Controller("C04-NR1")
	c04 := func() simulator.StationStats {
		for _, s := range r.plant.Stats().Stations {
			if s.ID == "C04" {
				return s
			}
		}
		return simulator.StationStats{}
	}
	until(t, r, "C04-NR1 disabled with no car", func() bool { return !nr1.Enabled() && nr1.Stats().Received[42] > 0 })
	if c04().VIN != "" {
		t.Fatalf("a car reached C04 before the test looked: %+v", c04())
	}

	// The first car: its VIN, its model's parameter set, enabled; after its
	// batch, disabled.
	until(t, r, "the first car's batch at C04-NR1", func() bool {
		last, ok := nr1.Last()
		return ok && last.VIN == first.VIN && last.BatchStatus == 1
	})
	wantPset := 1
	if first.Model == "KT" {
		wantPset = 2
	}
	for _, x := range nr1.Truth() {
		if x.VIN != first.VIN || x.Pset != wantPset {
			t.Errorf("C04-NR1 tightening %d: VIN %s pset %d, want %s pset %d", x.ID, x.VIN, x.Pset, first.VIN, wantPset)
		}
	}
	until(t, r, "C04-NR1 disabled after the batch", func() bool { return !nr1.Enabled() })

	// The second car: no parameter set at C04-NR1, so the tool stays
	// disabled while the other wheels are tightened, and the car waits.
	until(t, r, "the second car's other wheels", func() bool {
		for _, id := range []string{"C04-NR2", "C04-NR3", "C04-NR4"} {
			if last, ok := r.plant.Controller(id).Last(); !ok || last.VIN != second.VIN || last.BatchStatus != 1 {
				return false
			}
		}
		return true
	})
	made := len(nr1.Truth())
	if nr1.Enabled() || c04().VIN != second.VIN || c04().FaultText != fmt.Sprintf(simulator.FaultTextWaitingTool, "C04-NR1") {
		t.Fatalf("C04-NR1 for a %s: enabled %v, station %+v", second.Model, nr1.Enabled(), c04())
	}
	if !strings.Contains(r.logs.String(), "gets no tightening from this controller") {
		t.Errorf("the agent did not log why the tool stays disabled:\n%s", r.logs.String())
	}

	// A controller that tightens with its tool disabled (the simulator's
	// cannot): the result is recorded, flagged, with an alarm.
	last, _ := nr1.Last()
	id := last.ID + 1
	if err := nr1.SendRaw(resultFrame("C04-NR1", second.VIN, 1, 1, id, time.Now())); err != nil {
		t.Fatal(err)
	}
	evID := event.TighteningEventID("US1", "L1", "C04", "C04-NR1", id)
	until(t, r, "the flagged tightening in the stream", func() bool { return r.tightenings(t)[evID] != nil })
	td := r.tightenings(t)[evID]
	if !td.WhileDisabled || td.VIN != second.VIN || td.Joint != "lug_fl_1" || td.MID != 61 {
		t.Errorf("tightening made while disabled: %+v", *td)
	}
	until(t, r, "the alarm", func() bool {
		for _, ev := range r.events(t, event.KindAlarm) {
			if a, _ := ev.Alarm(); a.Code == event.AlarmWhileDisabled && a.Active && a.Controller == "C04-NR1" && a.TighteningID == id {
				return true
			}
		}
		return false
	})
	for _, td := range r.tightenings(t) {
		if td.WhileDisabled && td.TighteningID != id {
			t.Errorf("tightening %s %d flagged, made with the tool enabled", td.Controller, td.TighteningID)
		}
	}
	if len(nr1.Truth()) != made {
		t.Errorf("C04-NR1 tightened the second car")
	}
}

// TestControllerDownAlarms: a controller another client holds (MID 0004
// error 96) and one whose link stays down are alarms of their station,
// cleared once the link is back.
func TestControllerDownAlarms(t *testing.T) {
	var px *proxy
	var holder net.Conn
	r := newTorqueRig(t, torqueRigOptions{seed: 1, cars: 1, speed: 50,
		addr: func(id, real string) string {
			if id != "C04-NR3" {
				return real
			}
			px = startProxy(t, real)
			px.cut(true)
			return px.addr()
		},
		before: func(p *simulator.Plant) {
			var err error
			if holder, err = net.Dial("tcp", p.Controllers()[5].Address); err != nil { // F01-NR2
				t.Fatal(err)
			}
			if _, err := io.WriteString(holder, "00200001001         \x00"); err != nil {
				t.Fatal(err)
			}
			for !p.Controller("F01-NR2").Stats().Connected {
				time.Sleep(time.Millisecond)
			}
		}})
	defer holder.Close()
	alarm := func(controller string, active bool, text string) func() bool {
		return func() bool {
			for _, ev := range r.events(t, event.KindAlarm) {
				a, _ := ev.Alarm()
				if ev.Station == "F01" || ev.Station == "C04" {
					if a.Code == event.AlarmControllerDown && a.Controller == controller && a.Active == active && strings.Contains(a.Text, text) {
						return true
					}
				}
			}
			return false
		}
	}
	until(t, r, "F01-NR2's alarm: another client holds it", alarm("F01-NR2", true, "another client holds it (MID 0004 error 96)"))
	until(t, r, "C04-NR3's alarm: no link", alarm("C04-NR3", true, "no link to controller C04-NR3"))
	px.cut(false)
	until(t, r, "C04-NR3's alarm cleared", alarm("C04-NR3", false, "cleared: no link"))
}

// TestDefaultLineControllersMatchPlant: the default line's controllers
// (line/default.yaml) and the simulated plant's agree: ids, stations,
// joints in batch order, and the parameter set of every model.
func TestDefaultLineControllersMatchPlant(t *testing.T) {
	plant, err := simulator.New(simulator.Config{Torque: true, Cars: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer plant.Stop()
	lc := defaultLineFor(t, plant, nil)
	cis := plant.Controllers()
	if len(cis) != len(lc.Controllers()) {
		t.Fatalf("plant has %d controllers, the default line %d", len(cis), len(lc.Controllers()))
	}
	for i, sc := range lc.Controllers() {
		ci, ct := cis[i], sc.Controller
		var names []string
		for _, j := range ct.JointList() {
			names = append(names, j.Name)
		}
		if ct.ID != ci.ID || sc.Station.ID != ci.Station || ct.Address != ci.Address || strings.Join(names, " ") != strings.Join(ci.Joints, " ") {
			t.Errorf("controller %d: line %s at %s %s %v, plant %s at %s %s %v", i, ct.ID, sc.Station.ID, ct.Address, names, ci.ID, ci.Station, ci.Address, ci.Joints)
		}
		for _, m := range lc.Products.Models {
			v, _ := lc.Products.VIN(m.Code, m.Variants[0].Name, 1)
			b, _ := lc.Products.BuildOf(v)
			if p, _ := ct.PsetFor(b); p != ci.Psets[m.Code] || ct.BatchSize(p) != len(ci.Joints) {
				t.Errorf("%s: model %s gets pset %d (batch %d), the plant's tool wants %d (batch %d)", ct.ID, m.Code, p, ct.BatchSize(p), ci.Psets[m.Code], len(ci.Joints))
			}
		}
	}
}
