package simulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/keiline/keiline/simulator/torque"
)

// Tightening controllers (Config.Torque). The wheel nuts (C04) and seat
// bolts (F01) are tightened by nutrunners whose controllers speak the Open
// Protocol (simulator/torque): one controller per wheel, a batch of 4 nuts
// each, and two for the seats. The plant's tool engineering (torqueDefs)
// says which parameter set a car's model needs.
//
// The operator of such a station tightens each joint when its share of the
// cycle has passed, the joint the tool's batch counter says is next; a
// tool disabled, with another VIN downloaded or another parameter set
// selected does not tighten, and the car waits (state blocked, fault text
// "waiting for tool <id>") until the MES sets it right. A NOK tightening is done again
// at once: the batch counts OK tightenings only, so the car leaves with
// every joint OK and the NOK ones in the record. The cycle ends when every
// controller's batch for the car is complete.
//
// The station's PLC keeps its joint slots (one line config fits the plant
// in every mode) and leaves them empty: the controllers' results are the
// joints. Every tightening goes to Config.TorqueTruthPath as it is made
// (TruthTightening), and the controllers keep theirs (with Config.Dir, on
// disk: a restarted plant's controllers go on where they stopped).

// Plant tool engineering.
const (
	// torqueNOKRate is the share of NOK tightenings of the plant's tools.
	torqueNOKRate = 0.01
	// FaultTextWaitingTool is the fault text format (with the controller
	// id) of a station whose car waits for a tool the MES has not set for
	// it; the state is blocked and the fault code 0.
	FaultTextWaitingTool = "waiting for tool %s"
)

// torqueDef is one simulated tightening controller of the plant.
type torqueDef struct {
	ID, Station string
	Serial      string
	// Joints are the joints the tool makes on a car, in batch order.
	Joints []string
	Psets  map[int]torque.Pset
	// psetFor is the parameter set a car of model needs.
	psetFor func(model string) int
}

func wheelTool(n int, wheel string) torqueDef {
	var joints []string
	for k := 1; k <= 4; k++ {
		joints = append(joints, fmt.Sprintf("lug_%s_%d", wheel, k))
	}
	return torqueDef{
		ID: fmt.Sprintf("C04-NR%d", n), Station: "C04", Serial: fmt.Sprintf("NR-C04-%d", n), Joints: joints,
		Psets: map[int]torque.Pset{
			1: {Name: "wheel nut M12 108Nm", TorqueMin: 97.2, TorqueMax: 118.8, TorqueTarget: 108, AngleMin: 15, AngleMax: 75, AngleTarget: 45, BatchSize: 4},
			2: {Name: "wheel nut M12 LT 95Nm", TorqueMin: 85.5, TorqueMax: 104.5, TorqueTarget: 95, AngleMin: 15, AngleMax: 75, AngleTarget: 45, BatchSize: 4},
		},
		psetFor: func(model string) int {
			if model == "KT" { // the truck's 12-inch light-truck wheels
				return 2
			}
			return 1
		},
	}
}

func seatTool(n, first int) torqueDef {
	var joints []string
	for k := first; k < first+4; k++ {
		joints = append(joints, fmt.Sprintf("seat_m10_%d", k))
	}
	return torqueDef{
		ID: fmt.Sprintf("F01-NR%d", n), Station: "F01", Serial: fmt.Sprintf("NR-F01-%d", n), Joints: joints,
		Psets: map[int]torque.Pset{
			1: {Name: "seat bolt M10 45Nm", TorqueMin: 40.5, TorqueMax: 49.5, TorqueTarget: 45, AngleMin: 15, AngleMax: 75, AngleTarget: 45, BatchSize: 4},
		},
		psetFor: func(string) int { return 1 },
	}
}

// torqueDefs are the plant's tightening controllers.
var torqueDefs = []torqueDef{
	wheelTool(1, "fl"), wheelTool(2, "fr"), wheelTool(3, "rl"), wheelTool(4, "rr"),
	seatTool(1, 1), seatTool(2, 5),
}

// torqueStations is the set of stations whose joints the controllers make.
var torqueStations = func() map[string]bool {
	m := map[string]bool{}
	for _, d := range torqueDefs {
		m[d.Station] = true
	}
	return m
}()

// ControllerInfo describes one simulated tightening controller.
type ControllerInfo struct {
	ID, Station string
	// Address is where it listens (host:port), known once the plant has
	// started.
	Address string
	// Joints are the joints it makes on a car, in batch order.
	Joints []string
	// Psets maps each model code to the parameter set its cars need.
	Psets map[string]int
}

// TruthTightening is one line of the torque truth file: a tightening a
// controller made, the station and the joint the operator tightened.
type TruthTightening struct {
	Station string `json:"station"`
	Joint   string `json:"joint"`
	torque.Tightening
}

// tool is a running simulated controller.
type tool struct {
	def  torqueDef
	ctl  *torque.Controller
	last uint32 // newest tightening id in the truth file
}

// newTools makes the plant's controllers (not started).
func newTools(cfg Config) ([]*tool, error) {
	var out []*tool
	for k, d := range torqueDefs {
		h := fnv.New64a()
		h.Write([]byte(d.ID))
		tc := torque.Config{
			Name: d.ID, Addr: net.JoinHostPort(cfg.Host, "0"), CellID: 4,
			Tools: []torque.Tool{{Channel: 1, Serial: d.Serial, Psets: d.Psets}},
			Seed:  uint64(cfg.Seed) ^ h.Sum64(), NOKRate: torqueNOKRate, Logger: cfg.Logger,
		}
		if cfg.BasePort != 0 {
			tc.Addr = net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.BasePort+len(line)+k))
		}
		if cfg.Dir != "" {
			tc.StateDir = filepath.Join(cfg.Dir, "torque", d.ID)
		}
		c, err := torque.New(tc)
		if err != nil {
			return nil, fmt.Errorf("simulator: controller %s: %w", d.ID, err)
		}
		out = append(out, &tool{def: d, ctl: c})
	}
	return out, nil
}

// startTools starts the controllers and brings the torque truth file up to
// what they made (a plant that stopped between a tightening and its truth
// line). On error the started ones are stopped again.
func (e *engine) startTools(ctx context.Context) error {
	for i, t := range e.tools {
		if err := t.ctl.Start(ctx); err != nil {
			e.stopTools(i)
			return fmt.Errorf("simulator: %w", err)
		}
	}
	if err := e.openTorqueTruth(); err != nil {
		e.stopTools(len(e.tools))
		return err
	}
	return nil
}

// stopTools stops the first n controllers.
func (e *engine) stopTools(n int) {
	for _, t := range e.tools[:n] {
		if err := t.ctl.Stop(); err != nil {
			e.log.Error("stop tightening controller", "controller", t.def.ID, "err", err)
		}
	}
	if e.torqueTruth != nil {
		e.torqueTruth.Close()
		e.torqueTruth = nil
	}
}

// openTorqueTruth opens the torque truth file and appends the tightenings
// the controllers made that it lacks.
func (e *engine) openTorqueTruth() error {
	if e.cfg.TorqueTruthPath == "" || len(e.tools) == 0 {
		return nil
	}
	b, err := os.ReadFile(e.cfg.TorqueTruthPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("simulator: torque truth: %w", err)
	}
	newest := map[string]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var t TruthTightening
		if json.Unmarshal(sc.Bytes(), &t) == nil {
			newest[t.Controller] = max(newest[t.Controller], t.ID)
		}
	}
	f, err := os.OpenFile(e.cfg.TorqueTruthPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("simulator: torque truth: %w", err)
	}
	e.torqueTruth = f
	for _, t := range e.tools {
		t.last = newest[t.def.ID]
		for _, tg := range t.ctl.Truth() {
			if tg.ID > t.last {
				if err := e.writeTightening(t, tg); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// writeTightening appends tg's truth line.
func (e *engine) writeTightening(t *tool, tg torque.Tightening) error {
	if e.torqueTruth == nil {
		return nil
	}
	b, err := json.Marshal(TruthTightening{Station: t.def.Station, Joint: t.def.jointOf(tg), Tightening: tg})
	if err != nil {
		return err
	}
	if _, err := e.torqueTruth.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("simulator: torque truth: %w", err)
	}
	t.last = tg.ID
	return nil
}

// jointOf is the joint a tightening was made on: the batch counts OK
// tightenings, so an OK one is the joint its counter names, a NOK one the
// joint being worked (the counter's next).
func (d torqueDef) jointOf(tg torque.Tightening) string {
	pos := tg.BatchCounter
	if !tg.OK {
		pos++
	}
	if pos < 1 || pos > len(d.Joints) {
		return ""
	}
	return d.Joints[pos-1]
}

// tighten has the operator of station i work the car's joints with the
// station's controllers, one tightening per controller and step: the joint
// the tool's batch counter says is next, once its share of the cycle has
// passed. The other tools go on while one is not set for the car; the
// cycle ends when every batch is complete. It returns the controller the car waits for ("" when none) and whether
// anything retentive changed.
func (e *engine) tighten(i int, car *carState) (waitFor string, changed bool) {
	plan := e.mustPlan(car.Index)
	for _, t := range e.tools {
		if t.def.Station != line[i].ID || car.toolDone(t.def.ID) {
			continue
		}
		if last, ok := t.ctl.Last(); ok && last.VIN == plan.VIN && last.BatchStatus == 1 {
			car.ToolsDone = append(car.ToolsDone, t.def.ID) // done before a crash
			changed = true
			continue
		}
		pset := t.def.psetFor(plan.Model)
		n := len(t.def.Joints)
		pos := t.ctl.BatchCounter()
		if t.ctl.VIN() != plan.VIN || t.ctl.Pset() != pset {
			pos = 0
		}
		due := car.Need * time.Duration(pos+1) / time.Duration(n+1)
		if car.Work < due {
			continue
		}
		if !t.ctl.Enabled() || t.ctl.VIN() != plan.VIN || t.ctl.Pset() != pset {
			if waitFor == "" {
				waitFor = t.def.ID
			}
			continue
		}
		tg, err := t.ctl.Tighten(e.ctx, 1)
		if err != nil {
			if waitFor == "" {
				waitFor = t.def.ID
			}
			continue
		}
		if err := e.writeTightening(t, tg); err != nil {
			e.log.Error("torque truth line not written", "controller", t.def.ID, "tightening_id", tg.ID, "err", err)
		}
		if tg.BatchStatus == 1 {
			car.ToolsDone = append(car.ToolsDone, t.def.ID)
			changed = true
		}
	}
	return waitFor, changed
}

// toolDone reports whether the car's batch at controller id is complete.
func (c *carState) toolDone(id string) bool {
	for _, d := range c.ToolsDone {
		if d == id {
			return true
		}
	}
	return false
}

// toolsPending reports whether station i's car still needs a controller.
func (e *engine) toolsPending(i int, car *carState) bool {
	for _, t := range e.tools {
		if t.def.Station == line[i].ID && !car.toolDone(t.def.ID) {
			return true
		}
	}
	return false
}

// Controllers describes the plant's tightening controllers (none without
// Config.Torque).
func (p *Plant) Controllers() []ControllerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ControllerInfo
	for k, d := range torqueDefs {
		if !p.cfg.Torque {
			break
		}
		ci := ControllerInfo{ID: d.ID, Station: d.Station, Joints: append([]string(nil), d.Joints...), Psets: map[string]int{}}
		for _, m := range models {
			ci.Psets[m.Code] = d.psetFor(m.Code)
		}
		if p.tools != nil {
			ci.Address = p.tools[k].ctl.Addr()
		}
		out = append(out, ci)
	}
	return out
}

// Controller returns the simulated controller with id, for tests and the
// fault campaign to cut its link or restart it; nil when there is none.
func (p *Plant) Controller(id string) *torque.Controller {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.tools {
		if t.def.ID == id {
			return t.ctl
		}
	}
	return nil
}
