package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Rates of the seeded incidents, per cycle.
const (
	faultRate       = 0.005  // a short fault of 1-3 takts
	andonRate       = 0.01   // an andon call of 1-2 takts
	maintenanceRate = 0.0005 // maintenance of 2-5 takts before the cycle
	// maxStep bounds the wall time one loop tick advances the plant by, so
	// a stalled loop does not jump the plant.
	maxStep = time.Second
)

// seededFaults are the faults a station may have on its own.
var seededFaults = []struct {
	code   int32
	text   string
	joints bool // only at stations with joints
}{
	{101, "emergency stop pressed", false},
	{102, "safety light curtain interrupted", false},
	{201, "tool fault: nutrunner controller error", true},
	{202, "tool fault: torque transducer out of calibration", true},
	{301, "part shortage", false},
	{302, "wrong part presented", false},
	{401, "quality stop: operator pulled the andon cord", false},
	{501, "conveyor drive fault", false},
}

// plantState is the retentive memory of the line: everything that must
// survive a crash. It is saved as JSON.
type plantState struct {
	Version     int             `json:"version"`
	Plant       string          `json:"plant"`
	Line        string          `json:"line"`
	Seed        int64           `json:"seed"`
	WMI         string          `json:"wmi"`
	Framed      int             `json:"framed"`
	Out         int             `json:"out"`
	TruthOffset int64           `json:"truth_offset"`
	Stations    []*stationState `json:"stations"`
	// Manifest is the framing station's manifest (manifest mode).
	Manifest *manifestState `json:"manifest,omitempty"`
	// ManifestCars are the manifest identities of the cars framed from the
	// manifest that a station still holds or has a result of, by car index.
	ManifestCars map[int]manifestCar `json:"manifest_cars,omitempty"`
	// JIS holds the JIS racks and installed parts (JIS mode).
	JIS *jisState `json:"jis,omitempty"`
}

// stateVersion is the version of the state file. Versions 1 (before the
// manifest) and 2 (before JIS) are still read.
const stateVersion = 3

// stationState is one station PLC's retentive memory. Durations are plant
// time (wall time × Speed).
type stationState struct {
	ID           string          `json:"id"`
	CycleCounter uint32          `json:"cycle_counter"` // last finished cycle
	LastAck      uint32          `json:"last_ack"`      // last acknowledged cycle
	StateCounter uint32          `json:"state_counter"`
	State        string          `json:"state"`
	FaultCode    int32           `json:"fault_code"`
	FaultText    string          `json:"fault_text"`
	Andon        bool            `json:"andon"`
	Car          *carState       `json:"car,omitempty"`
	Pending      []pendingResult `json:"pending"`
	Fault        *faultState     `json:"fault,omitempty"`
	MaintLeft    time.Duration   `json:"maintenance_left,omitempty"`
	AndonLeft    time.Duration   `json:"andon_left,omitempty"`
	// Resets counts the resets of the counters (Plant.ResetCounters);
	// AckResets is Resets when the cycle LastAck was made.
	Resets    uint32 `json:"resets,omitempty"`
	AckResets uint32 `json:"ack_resets,omitempty"`
}

// carState is a car in a station.
type carState struct {
	Index   int           `json:"index"`
	Work    time.Duration `json:"work"` // work done on the cycle
	Need    time.Duration `json:"need"` // cycle time
	StartMs int64         `json:"start_ms"`
	Stored  bool          `json:"stored"` // result stored: the car waits to move on

	FaultAt    float64       `json:"fault_at"` // share of the cycle; <0 none
	FaultFired bool          `json:"fault_fired,omitempty"`
	FaultCode  int32         `json:"fault_code,omitempty"`
	FaultText  string        `json:"fault_text,omitempty"`
	FaultFor   time.Duration `json:"fault_for,omitempty"`
	AndonAt    float64       `json:"andon_at"` // share of the cycle; <0 none
	AndonFired bool          `json:"andon_fired,omitempty"`
	AndonFor   time.Duration `json:"andon_for,omitempty"`
	// ToolsDone are the tightening controllers whose batch for the car is
	// complete (Config.Torque).
	ToolsDone []string `json:"tools_done,omitempty"`
}

// pendingResult is a finished cycle waiting for acknowledgement. Its data
// is the car plan's, rebuilt from the seed.
type pendingResult struct {
	Counter uint32 `json:"counter"`
	Resets  uint32 `json:"resets,omitempty"` // the station's Resets when it was made
	Car     int    `json:"car"`
	StartMs int64  `json:"start_ms"`
	EndMs   int64  `json:"end_ms"`
}

// faultState is an active fault.
type faultState struct {
	Code int32         `json:"code"`
	Text string        `json:"text"`
	Left time.Duration `json:"left"`
}

// header is what a station's header tags show.
type header struct {
	state, faultText, vin string
	faultCode             int32
	andon, dataReady      bool
	stateCounter, cycle   uint32
	heartbeat             int32
}

// engine is the plant's state machine. It is owned by one goroutine.
type engine struct {
	cfg     Config
	log     *slog.Logger
	space   *tagSpace
	st      *plantState
	planner *planner
	plans   map[int]*carPlan
	takt    time.Duration // plant time

	truth    *os.File
	truthBuf [][]byte
	unsaved  bool // state changed since the last successful save
	failing  bool // the last save failed

	lastTick  time.Time
	lastBeat  time.Time
	heartbeat int32
	ackSeen   []uint64
	shown     []int64 // counter shown in each result block; -1 unknown, 0 empty
	headers   []header
	published []bool
	notify    func(*ua.NodeID)
	changed   []*ua.NodeID

	// Tightening controllers (Config.Torque), in torqueDefs order.
	tools       []*tool
	torqueTruth *os.File
	toolWait    []string        // per station: the controller its car waits for
	ctx         context.Context // the plant loop's, for the controllers

	// Manifest mode.
	waiting         bool   // W01 is free but its manifest holds no car
	manifestApplied uint64 // number of the last manifest write applied
	manifestDirty   bool   // the manifest tags need publishing
}

// newEngine loads the retentive state (or makes a fresh one) and prepares
// the truth file.
func newEngine(cfg Config, log *slog.Logger, space *tagSpace) (*engine, error) {
	e := &engine{
		cfg: cfg, log: log, space: space,
		plans:     make(map[int]*carPlan),
		takt:      Takt,
		ackSeen:   make([]uint64, len(line)),
		shown:     make([]int64, len(line)),
		headers:   make([]header, len(line)),
		published: make([]bool, len(line)),
		toolWait:  make([]string, len(line)),
	}
	st, err := loadState(cfg)
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = &plantState{Version: stateVersion, Plant: cfg.Plant, Line: cfg.Line, Seed: cfg.Seed, WMI: cfg.WMI}
		for _, s := range line {
			st.Stations = append(st.Stations, &stationState{ID: s.ID, State: StateStarved})
		}
	} else {
		if st.Seed != cfg.Seed {
			log.Warn("state was made with another seed: keeping it", "state_seed", st.Seed, "config_seed", cfg.Seed)
		}
		if st.WMI != cfg.WMI {
			log.Warn("state was made with another WMI: keeping it", "state_wmi", st.WMI, "config_wmi", cfg.WMI)
		}
		log.Info("retentive state loaded", "framed", st.Framed, "out", st.Out)
	}
	// W01's PLC always has its manifest area; it frames from it only in
	// manifest mode.
	if st.Manifest == nil {
		st.Manifest = &manifestState{}
	}
	if err := st.Manifest.resize(cfg.manifestSlots()); err != nil {
		return nil, fmt.Errorf("simulator: state: %w", err)
	}
	switch {
	case cfg.JIS:
		if st.JIS == nil {
			st.JIS = &jisState{}
		}
		if st.JIS.From == 0 { // cars on the line keep the parts they got
			st.JIS.From = st.Framed + 1
		}
		st.JIS.init()
	case st.JIS != nil:
		st.JIS.From = 0 // racks kept for the next run in JIS mode
	}
	e.manifestDirty = true
	e.st = st
	e.planner = newPlanner(st.Seed, st.WMI)
	e.planner.badRate = cfg.BadValueRate
	e.planner.torque = cfg.Torque
	e.planner.drift = cfg.Drift
	if cfg.Torque {
		if e.tools, err = newTools(cfg); err != nil {
			return nil, err
		}
	}
	if cfg.JIS {
		e.planner.jisFrom = st.JIS.From
		e.planner.jisInstalls = func(index int) []JISPart { return e.st.JIS.Installed[index] }
	}
	for i, s := range st.Stations {
		if s.Car != nil {
			if _, err := e.plan(s.Car.Index); err != nil {
				return nil, fmt.Errorf("simulator: station %s: %w", s.ID, err)
			}
		}
		for _, pr := range s.Pending {
			if _, err := e.plan(pr.Car); err != nil {
				return nil, fmt.Errorf("simulator: station %s: %w", s.ID, err)
			}
		}
		e.shown[i] = -1
	}
	if err := e.openTruth(); err != nil {
		return nil, err
	}
	for i := range e.ackSeen {
		_, e.ackSeen[i] = space.ack(i)
	}
	return e, nil
}

// plan returns car index's plan.
func (e *engine) plan(index int) (*carPlan, error) {
	if c, ok := e.plans[index]; ok {
		return c, nil
	}
	var c *carPlan
	var err error
	if mc, ok := e.st.ManifestCars[index]; ok {
		c, err = e.planner.planManifest(index, mc)
	} else {
		c, err = e.planner.plan(index)
	}
	if err != nil {
		return nil, err
	}
	e.plans[index] = c
	return c, nil
}

// mustPlan returns the plan of a car already on the line, whose plan was
// made when it was framed or loaded.
func (e *engine) mustPlan(index int) *carPlan {
	c, err := e.plan(index)
	if err != nil {
		panic(fmt.Sprintf("simulator: car %d: %v", index, err))
	}
	return c
}

// prunePlans forgets plans and manifest identities of cars no station
// refers to.
func (e *engine) prunePlans() {
	installed := 0
	if e.st.JIS != nil {
		installed = len(e.st.JIS.Installed)
	}
	if len(e.plans) < 4*len(line) && len(e.st.ManifestCars) < 2*len(line) && installed < 2*len(line) {
		return
	}
	keep := make(map[int]bool)
	for _, s := range e.st.Stations {
		if s.Car != nil {
			keep[s.Car.Index] = true
		}
		for _, pr := range s.Pending {
			keep[pr.Car] = true
		}
	}
	for k := range e.plans {
		if !keep[k] {
			delete(e.plans, k)
		}
	}
	for k := range e.st.ManifestCars {
		if !keep[k] {
			delete(e.st.ManifestCars, k)
		}
	}
	if e.st.JIS != nil {
		for k := range e.st.JIS.Installed {
			if !keep[k] {
				delete(e.st.JIS.Installed, k)
			}
		}
	}
}

// step advances the plant to now: it applies operator commands and
// acknowledgements, moves the line on, makes the changes retentive and only
// then publishes them.
func (e *engine) step(now time.Time, cmds []command) {
	if e.lastTick.IsZero() {
		e.lastTick = now
		e.lastBeat = now
	}
	wall := min(max(now.Sub(e.lastTick), 0), maxStep)
	e.lastTick = now
	dt := time.Duration(float64(wall) * e.cfg.Speed)
	nowMs := now.UnixMilli()
	durable := false

	var delivered []command
	for _, c := range cmds {
		if c.deliver != nil {
			changed, err := e.st.JIS.deliver(*c.deliver)
			if changed {
				e.log.Debug("JIS part delivered", "supplier", c.deliver.Supplier, "seq", c.deliver.Seq, "vin", c.deliver.VIN)
				durable = true
			}
			c.err = err
			delivered = append(delivered, c)
			continue
		}
		s := e.st.Stations[c.station]
		if c.reset {
			e.resetCounters(s)
			durable = true
			continue
		}
		s.Fault = &faultState{Code: c.code, Text: c.text, Left: time.Duration(float64(c.d) * e.cfg.Speed)}
		e.log.Info("fault injected", "station", s.ID, "code", c.code, "text", c.text, "for", c.d)
		durable = true
	}

	// 1. Acknowledgements written by clients.
	for i, s := range e.st.Stations {
		v, seq := e.space.ack(i)
		if seq == e.ackSeen[i] {
			continue
		}
		e.ackSeen[i] = seq
		switch {
		case len(s.Pending) > 0 && v == s.Pending[0].Counter:
			s.LastAck, s.AckResets = v, s.Pending[0].Resets
			s.Pending = s.Pending[1:]
			durable = true
		case v <= s.LastAck:
			e.log.Debug("stale acknowledgement ignored", "station", s.ID, "ack", v, "last_ack", s.LastAck)
		default:
			shown := uint32(0)
			if len(s.Pending) > 0 {
				shown = s.Pending[0].Counter
			}
			e.log.Warn("acknowledgement of a cycle not shown ignored", "station", s.ID, "ack", v, "shown", shown)
		}
	}

	// Manifest entries written by clients.
	if e.cfg.Manifest {
		for _, w := range e.space.takeWrites(0) {
			if e.st.Manifest.apply(w.offset, w.value) {
				durable = true
			}
			e.manifestApplied = w.seq
			e.manifestDirty = true
		}
	}

	// 2. The line moves, downstream first, so a car leaving a station frees
	// it for the car behind in the same tick.
	for i := len(line) - 1; i >= 0; i-- {
		if e.advance(i, dt, nowMs) {
			durable = true
		}
	}
	for i := range e.st.Stations {
		if e.updateState(i) {
			durable = true
		}
	}
	if durable {
		e.unsaved = true
		e.prunePlans()
	}

	// 3. Make it retentive; nothing is shown that is not. A delivery is
	// answered once it is saved.
	if e.unsaved {
		if err := e.persist(); err != nil {
			if !e.failing {
				e.log.Error("saving the retentive state failed: outputs frozen until it succeeds", "err", err)
			}
			e.failing = true
			for _, c := range delivered {
				c.res <- errors.Join(c.err, fmt.Errorf("simulator: deliver %s seq %d: %w", c.deliver.Supplier, c.deliver.Seq, err))
			}
			return
		}
		if e.failing {
			e.log.Info("saving the retentive state works again")
			e.failing = false
		}
	}
	for _, c := range delivered {
		c.res <- c.err
	}

	// 4. Publish.
	if d := now.Sub(e.lastBeat); d >= time.Second {
		e.heartbeat++
		e.lastBeat = e.lastBeat.Add(time.Second)
		if d >= 2*time.Second {
			e.lastBeat = now
		}
	}
	e.publishAll(now, e.notify)
}

// resetCounters puts station s's CycleCounter and StateCounter back to 0,
// as a replaced CPU or cleared counters would (Plant.ResetCounters). The
// results waiting for acknowledgement keep their counters; the next cycle
// is counter 1.
func (e *engine) resetCounters(s *stationState) {
	e.log.Info("counters reset", "station", s.ID, "cycle_counter", s.CycleCounter, "state_counter", s.StateCounter, "unacked", len(s.Pending))
	s.Resets++
	s.CycleCounter, s.StateCounter = 0, 0
	if len(s.Pending) == 0 {
		s.LastAck, s.AckResets = 0, s.Resets
	}
}

// advance moves station i on by dt of plant time. It reports whether
// anything retentive changed.
func (e *engine) advance(i int, dt time.Duration, nowMs int64) bool {
	s := e.st.Stations[i]
	changed := false
	if s.Fault != nil {
		if s.Fault.Left -= dt; s.Fault.Left <= 0 {
			s.Fault = nil
			changed = true
		}
	}
	if s.MaintLeft > 0 {
		if s.MaintLeft -= dt; s.MaintLeft <= 0 {
			s.MaintLeft = 0
			changed = true
		}
	}
	if s.AndonLeft > 0 {
		if s.AndonLeft -= dt; s.AndonLeft <= 0 {
			s.AndonLeft = 0
			changed = true
		}
	}
	if s.Fault != nil || s.MaintLeft > 0 {
		return changed
	}
	if s.Car == nil {
		if i == 0 && e.frame(nowMs) {
			changed = true
		}
		return changed
	}
	car := s.Car
	if !car.Stored {
		if car.Work < car.Need {
			car.Work += dt
			if car.FaultAt >= 0 && !car.FaultFired {
				at := time.Duration(car.FaultAt * float64(car.Need))
				if car.Work >= at {
					car.Work = at
					car.FaultFired = true
					s.Fault = &faultState{Code: car.FaultCode, Text: car.FaultText, Left: car.FaultFor}
					return true
				}
			}
			if car.AndonAt >= 0 && !car.AndonFired && car.Work >= time.Duration(car.AndonAt*float64(car.Need)) {
				car.AndonFired = true
				s.AndonLeft = car.AndonFor
				changed = true
			}
		}
		if len(e.tools) > 0 && torqueStations[line[i].ID] {
			wait, tightened := e.tighten(i, car)
			e.toolWait[i] = wait
			changed = changed || tightened
			if e.toolsPending(i, car) {
				car.Work = min(car.Work, car.Need-1) // the cycle ends with the last batch
				return changed
			}
		}
		if car.Work < car.Need {
			return changed
		}
		if sup := e.jisNeed(i, car.Index); sup != nil {
			if !e.jisInstall(i, car.Index, sup) {
				return changed // waiting for the part
			}
			changed = true
		}
		if len(s.Pending) >= e.cfg.MaxUnacked {
			return changed // held: blocked, fault 900
		}
		s.CycleCounter++
		s.Pending = append(s.Pending, pendingResult{Counter: s.CycleCounter, Resets: s.Resets, Car: car.Index, StartMs: car.StartMs, EndMs: nowMs})
		car.Stored = true
		changed = true
	}
	plan := e.mustPlan(car.Index)
	next := plan.route(i)
	if next == len(line) {
		e.leave(plan)
		s.Car = nil
		return true
	}
	n := e.st.Stations[next]
	if n.Car != nil || n.Fault != nil || n.MaintLeft > 0 {
		return changed
	}
	s.Car = nil
	e.arrive(next, car.Index, nowMs)
	if i == 0 {
		e.frame(nowMs)
	}
	return true
}

// frame starts a new car at W01 if Cars allows and, in manifest mode, the
// manifest holds the next car. It reports whether anything retentive
// changed.
func (e *engine) frame(nowMs int64) bool {
	e.waiting = false
	if e.cfg.Cars > 0 && e.st.Framed >= e.cfg.Cars || e.st.Framed >= CarsMax {
		return false
	}
	index := e.st.Framed + 1
	if e.cfg.Manifest {
		return e.frameManifest(index, nowMs)
	}
	c, err := e.plan(index)
	if err != nil {
		e.log.Error("cannot frame car", "car", index, "err", err)
		return false
	}
	e.st.Framed = index
	e.log.Debug("car framed", "station", framingStation, "vin", c.VIN, "model", c.Model, "variant", c.Variant, "colour", c.Colour)
	e.arrive(0, index, nowMs)
	return true
}

// frameManifest frames car index as the next manifest entry says, puts W01
// in fault if that entry is not a car of the line, or waits. It reports
// whether anything retentive changed.
func (e *engine) frameManifest(index int, nowMs int64) bool {
	m := e.st.Manifest
	if m.Fault != nil {
		return false // until the slot's Seq is written again
	}
	slot, changed := m.next()
	if changed {
		e.manifestDirty = true
	}
	if slot == 0 {
		e.waiting = true
		return changed
	}
	mc := m.Slots[slot-1]
	c, err := e.planner.planManifest(index, mc)
	if err != nil {
		var reason error = err
		if cerr := mc.check(); cerr != nil {
			reason = cerr
		}
		m.Fault = &manifestFault{Slot: slot, Seq: mc.Seq, Text: fmt.Sprintf("manifest slot %d seq %d: %v", slot, mc.Seq, reason)}
		e.log.Warn("bad manifest entry: framing stopped until the slot is written again",
			"station", framingStation, "slot", slot, "seq", mc.Seq, "vin", mc.VIN, "err", reason)
		return true
	}
	e.plans[index] = c
	if e.st.ManifestCars == nil {
		e.st.ManifestCars = make(map[int]manifestCar)
	}
	e.st.ManifestCars[index] = mc
	m.LastSeq = mc.Seq
	m.Slots[slot-1] = manifestCar{}
	e.manifestDirty = true
	e.st.Framed = index
	e.log.Debug("car framed", "station", framingStation, "seq", mc.Seq, "slot", slot, "vin", c.VIN,
		"model", c.Model, "variant", c.Variant, "colour", c.Colour)
	e.arrive(0, index, nowMs)
	return true
}

// arrive puts car index into station i and draws its cycle: cycle time and
// incidents, all from the seed.
func (e *engine) arrive(i, index int, nowMs int64) {
	s := e.st.Stations[i]
	r := rngFor(e.st.Seed, "cycle", index, s.ID)
	car := &carState{
		Index:   index,
		Need:    time.Duration((0.70 + 0.25*r.Float64()) * float64(e.takt)),
		StartMs: nowMs,
		FaultAt: -1,
		AndonAt: -1,
	}
	fault, at, dur := r.Float64(), r.Float64(), r.Float64()
	if fault < faultRate {
		var fs []int
		for k, f := range seededFaults {
			if !f.joints || line[i].Joints > 0 {
				fs = append(fs, k)
			}
		}
		f := seededFaults[fs[r.IntN(len(fs))]]
		car.FaultAt = 0.1 + 0.8*at
		car.FaultCode, car.FaultText = f.code, f.text
		car.FaultFor = time.Duration((1 + 2*dur) * float64(e.takt))
	}
	andon, at, dur := r.Float64(), r.Float64(), r.Float64()
	if andon < andonRate {
		car.AndonAt = 0.9 * at
		car.AndonFor = time.Duration((1 + dur) * float64(e.takt))
	}
	if maint, dur := r.Float64(), r.Float64(); maint < maintenanceRate {
		s.MaintLeft = time.Duration((2 + 3*dur) * float64(e.takt))
	}
	s.Car = car
}

// leave takes a car off the line after S01 and queues its truth line.
func (e *engine) leave(plan *carPlan) {
	e.st.Out++
	e.log.Debug("car left the line", "vin", plan.VIN, "out", e.st.Out)
	if e.truth == nil {
		return
	}
	b, err := truthLine(plan)
	if err != nil { // cannot happen: plain structs
		panic(err)
	}
	e.truthBuf = append(e.truthBuf, b)
}

// updateState works out station i's state and counts its changes. It
// reports whether anything changed.
func (e *engine) updateState(i int) bool {
	s := e.st.Stations[i]
	state, code, text := StateRunning, int32(0), ""
	switch {
	case s.Fault != nil:
		state, code, text = StateFault, s.Fault.Code, s.Fault.Text
	case s.MaintLeft > 0:
		state = StateMaintenance
	case i == 0 && s.Car == nil && e.cfg.Manifest && e.st.Manifest.Fault != nil:
		state, code, text = StateFault, FaultCodeManifest, e.st.Manifest.Fault.Text
	case s.Car == nil:
		state = StateStarved
		if i == 0 && e.waiting {
			text = FaultTextWaitingManifest
		}
	case !s.Car.Stored && e.toolWait[i] != "":
		state, text = StateBlocked, fmt.Sprintf(FaultTextWaitingTool, e.toolWait[i])
	case !s.Car.Stored && s.Car.Work >= s.Car.Need && e.jisNeed(i, s.Car.Index) != nil:
		state, text = StateStarved, fmt.Sprintf(FaultTextWaitingJIS, e.jisNeed(i, s.Car.Index).Name)
	case !s.Car.Stored && s.Car.Work >= s.Car.Need:
		state, code, text = StateBlocked, FaultCodeUnacked, FaultTextUnacked
	case s.Car.Stored:
		state = StateBlocked
	}
	andon := s.AndonLeft > 0
	changed := false
	if state != s.State || code != s.FaultCode || andon != s.Andon {
		s.StateCounter++
		if code != s.FaultCode && code != 0 {
			e.log.Info("station fault", "station", s.ID, "code", code, "text", text)
		}
		changed = true
	}
	if text != s.FaultText {
		changed = true
	}
	s.State, s.FaultCode, s.FaultText, s.Andon = state, code, text, andon
	return changed
}

// done reports whether all Cars cars (and any framed beyond them by an
// earlier run with a higher Cars) are out and acknowledged.
func (e *engine) done() bool {
	if e.cfg.Cars == 0 || e.st.Framed < e.cfg.Cars || e.st.Out < e.st.Framed {
		return false
	}
	for _, s := range e.st.Stations {
		if len(s.Pending) > 0 {
			return false
		}
	}
	return true
}

// publishAll shows the state in the tags: the header of every station and,
// when the oldest pending result changed, its result block. A station's
// block and header change under one lock, the block first, so no client
// sees a CycleCounter with another cycle's block (docs/plc-tags.md). notify,
// if not nil, is told each changed node after the tags are unlocked.
func (e *engine) publishAll(now time.Time, notify func(*ua.NodeID)) {
	e.changed = e.changed[:0]
	for i, s := range e.st.Stations {
		h := header{
			state: s.State, faultText: s.FaultText, faultCode: s.FaultCode, andon: s.Andon,
			stateCounter: s.StateCounter, cycle: s.LastAck, heartbeat: e.heartbeat,
		}
		if s.Car != nil {
			h.vin = e.mustPlan(s.Car.Index).VIN
		}
		var pr *pendingResult
		if len(s.Pending) > 0 {
			pr = &s.Pending[0]
			h.cycle = pr.Counter
			h.dataReady = true
		}
		var segs []segment
		key := int64(0)
		if pr != nil {
			key = int64(pr.Resets)<<32 | int64(pr.Counter)
		}
		if key != e.shown[i] {
			var b *blockResult
			if pr != nil {
				plan := e.mustPlan(pr.Car)
				res := &plan.results[i]
				b = &blockResult{
					VIN: plan.VIN, Model: plan.Model, Variant: plan.Variant, Colour: plan.Colour,
					Status: res.status(), Start: pr.StartMs, End: pr.EndMs, Res: res,
				}
			}
			parts, joints, tests := stationSlots(i, e.cfg.JIS)
			segs = append(segs, segment{from: len(headerTags), vals: blockValues(parts, joints, tests, b)})
			e.shown[i] = key
		}
		if !e.published[i] || h != e.headers[i] {
			segs = append(segs, segment{from: 0, vals: []any{
				h.heartbeat, h.state, h.faultCode, h.faultText, h.andon, h.stateCounter, h.vin, h.cycle, h.dataReady,
			}})
			e.headers[i] = h
		}
		if !e.published[i] {
			segs = append(segs, segment{from: publishedHeader, vals: []any{s.LastAck}})
			e.published[i] = true
		}
		if from := e.space.manifestFrom(i); from > 0 && e.manifestDirty {
			segs = append(segs, segment{from: from, vals: e.st.Manifest.values(), applied: e.manifestApplied})
			e.manifestDirty = false
		}
		if len(segs) > 0 {
			e.changed = e.space.set(i, now, e.changed, segs...)
		}
	}
	if notify != nil {
		for _, n := range e.changed {
			notify(n)
		}
	}
}

// stats summarises the plant.
func (e *engine) stats() Stats {
	st := Stats{Framed: e.st.Framed, Out: e.st.Out, OnLine: e.st.Framed - e.st.Out}
	st.Stations = make([]StationStats, len(e.st.Stations))
	for i, s := range e.st.Stations {
		ss := StationStats{
			ID: s.ID, State: s.State, FaultCode: s.FaultCode, FaultText: s.FaultText, Andon: s.Andon,
			CycleCounter: s.CycleCounter, Unacked: len(s.Pending), StateCounter: s.StateCounter,
		}
		if s.Car != nil {
			ss.VIN = e.mustPlan(s.Car.Index).VIN
		}
		st.Stations[i] = ss
	}
	return st
}

// save makes the current state retentive (on stop).
func (e *engine) save() error {
	return e.persist()
}

// close closes the truth file and stops the tightening controllers.
func (e *engine) close() {
	e.stopTools(len(e.tools))
	if e.truth != nil {
		e.truth.Close()
		e.truth = nil
	}
}
