// Package simulator simulates the PLCs of a keiline assembly line: one OPC
// UA endpoint per station, exposing the tags of docs/plc-tags.md, building
// the default line of LINE.md from a seed.
//
// The simulator is a plant, reached only over OPC UA: it knows nothing of
// the MES. What it builds into each car is a deterministic function of the
// seed, the car and the station, so a run can be checked against the truth
// file it writes (one JSON line per car leaving the line), and a cycle redone
// after a crash reports the same values.
//
// Like a real PLC it keeps each finished cycle's result until the MES
// acknowledges it (AckCounter = CycleCounter), and stops the line when too
// many results wait. With a state directory its memory is retentive: every
// change that must survive a crash is written to disk before the OPC UA
// nodes show it, and the next Start continues where the last one stopped.
//
// In manifest mode (Config.Manifest) the framing station W01 builds exactly
// the cars the MES writes into its manifest slots, in sequence order, and
// nothing while its manifest is empty (see manifest.go).
//
// In JIS mode (Config.JIS) the install stations of the just-in-sequence
// parts install what the suppliers delivered (Plant.Deliver) and wait for
// it (see jis.go).
package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"
)

// Defaults and limits of Config.
const (
	PlantDefault      = "US1"
	LineDefault       = "L1"
	HostDefault       = "127.0.0.1"
	WMIDefault        = "7KL"
	SpeedDefault      = 1.0
	SpeedMax          = 100000.0
	MaxUnackedDefault = 3
	MaxUnackedMax     = 1000
	// CarsMax is the most cars a plant frames: the VIN serial has 6 digits.
	CarsMax = 999999
	// Takt is the line's takt at Speed 1.
	Takt = 60 * time.Second
	// FaultCodeUnacked is the fault code of a station that holds its car
	// because MaxUnacked results wait for acknowledgement.
	FaultCodeUnacked = 900
	// FaultTextUnacked is its fault text.
	FaultTextUnacked = "MES not acknowledging"
	// ManifestSlotsDefault and ManifestSlotsMax are the default and the
	// largest number of manifest slots of the framing station.
	ManifestSlotsDefault = 8
	ManifestSlotsMax     = 32
	// BadValueRateMax bounds Config.BadValueRate.
	BadValueRateMax = 0.5
	// FaultCodeManifest is the fault code of the framing station when the
	// next manifest entry is not a car of the line; its fault text names
	// the slot, the sequence number and the reason.
	FaultCodeManifest = 910
	// FaultTextWaitingManifest is the framing station's fault text (with
	// fault code 0, state starved) while its manifest holds no car to frame.
	FaultTextWaitingManifest = "waiting for manifest"
)

// Station states (the State tag).
const (
	StateRunning     = "running"
	StateBlocked     = "blocked"
	StateStarved     = "starved"
	StateFault       = "fault"
	StateMaintenance = "maintenance"
)

// ErrStopped is returned by the methods of a Plant that has been stopped.
var ErrStopped = errors.New("simulator: plant stopped")

// Config configures a Plant.
type Config struct {
	// Plant and Line name the plant and line. Letters, digits, '-' and '_'.
	// Default "US1" and "L1".
	Plant, Line string
	// Dir is the state directory for the PLCs' retentive memory. Empty means
	// no persistence: every Start begins with an empty line.
	Dir string
	// Seed makes the plant deterministic. A resumed plant keeps the seed it
	// was started with.
	Seed int64
	// Speed compresses time: the takt is 60 s / Speed. Default 1; at most
	// SpeedMax.
	Speed float64
	// Cars is the number of cars to frame in all, counting those framed by
	// earlier runs on the same Dir. 0 means unlimited (up to CarsMax).
	Cars int
	// TruthPath, when set, is a file that gets one JSON line per car leaving
	// the line: what the plant really built into it. A fresh plant (no saved
	// state) truncates it.
	TruthPath string
	// Host is the address the station endpoints listen on and advertise.
	// Default 127.0.0.1.
	Host string
	// BasePort, when set, is the port of the first station; station i
	// (in line order) listens on BasePort+i. 0 means ephemeral ports.
	BasePort int
	// MaxUnacked is the number of unacknowledged results a station keeps
	// before it holds its car and reports fault 900. Default 3.
	MaxUnacked int
	// WMI is the world manufacturer identifier stamped into VINs: three
	// VIN characters (digits and capitals except I, O, Q). Default "7KL".
	WMI string
	// Manifest turns on manifest mode: the framing station W01 builds
	// exactly the cars the MES writes into its manifest tags, in sequence
	// order, and frames nothing while its manifest is empty. Default off:
	// the plant makes up each car from the seed.
	Manifest bool
	// ManifestSlots is the number of manifest slots of W01: its PLC
	// always has them, and reads them in manifest mode. Default
	// ManifestSlotsDefault (8); at most ManifestSlotsMax.
	ManifestSlots int
	// JIS turns on just-in-sequence mode: the cockpit (T03), EV battery
	// (C01, model KE) and seats (F01) come from racks filled by Deliver,
	// and an install station waits for its car's part (see jis.go).
	// Default off: the stations install parts of their own.
	JIS bool
	// BadValueRate is the share of station results with joints in which
	// one joint's torque reads with bad quality (a sensor fault) while
	// the result is shown; the rework bay redoes that joint, and the
	// truth names the tag (TruthStation.Unreadable). Default 0; at most
	// BadValueRateMax.
	BadValueRate float64
	// Torque turns on the tightening controllers (torque.go): the wheel
	// nuts at C04 and the seat bolts at F01 are tightened by simulated
	// Open Protocol controllers the MES must set for each car (VIN,
	// parameter set, tool enable); the stations' PLCs leave their joint
	// slots empty. Default off: the PLCs report the joints.
	Torque bool
	// TorqueTruthPath, when set with Torque, is a file that gets one JSON
	// line per tightening a controller makes (TruthTightening).
	TorqueTruthPath string
	// Drift, when set, plants a drift in the torque of one joint
	// (TorqueDrift). Default none: every joint's process is stable.
	Drift *TorqueDrift
	// Logger receives the plant's log. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Plant == "" {
		c.Plant = PlantDefault
	}
	if c.Line == "" {
		c.Line = LineDefault
	}
	if c.Speed == 0 {
		c.Speed = SpeedDefault
	}
	if c.Host == "" {
		c.Host = HostDefault
	}
	if c.MaxUnacked == 0 {
		c.MaxUnacked = MaxUnackedDefault
	}
	if c.WMI == "" {
		c.WMI = WMIDefault
	}
	if c.ManifestSlots == 0 {
		c.ManifestSlots = ManifestSlotsDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// manifestSlots is the framing station's number of manifest slots: 0
// unless in manifest mode.
func (c Config) manifestSlots() int {
	if c.ManifestSlots == 0 {
		return ManifestSlotsDefault
	}
	return c.ManifestSlots
}

// Validate checks c, treating zero fields as their defaults. The error names
// the first bad field and the values it allows.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, f := range []struct{ name, v string }{{"Plant", c.Plant}, {"Line", c.Line}} {
		if len(f.v) > 32 || strings.IndexFunc(f.v, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) >= 0 {
			return fmt.Errorf("simulator: %s %q: want 1-32 letters, digits, '-' or '_'", f.name, f.v)
		}
	}
	if math.IsNaN(c.Speed) || c.Speed <= 0 || c.Speed > SpeedMax {
		return fmt.Errorf("simulator: Speed %v: want 0 (default %v) or more than 0 up to %v", c.Speed, SpeedDefault, SpeedMax)
	}
	if c.Cars < 0 || c.Cars > CarsMax {
		return fmt.Errorf("simulator: Cars %d: want 0 (unlimited) to %d", c.Cars, CarsMax)
	}
	ports := len(line)
	if c.Torque {
		ports += len(torqueDefs)
	}
	if maxPort := 65535 - (ports - 1); c.BasePort < 0 || c.BasePort > maxPort {
		return fmt.Errorf("simulator: BasePort %d: want 0 (ephemeral) or 1 to %d (%d stations and controllers)", c.BasePort, maxPort, ports)
	}
	if c.MaxUnacked < 1 || c.MaxUnacked > MaxUnackedMax {
		return fmt.Errorf("simulator: MaxUnacked %d: want 0 (default %d) or 1 to %d", c.MaxUnacked, MaxUnackedDefault, MaxUnackedMax)
	}
	if len(c.WMI) != 3 || strings.IndexFunc(c.WMI, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') || r == 'I' || r == 'O' || r == 'Q'
	}) >= 0 {
		return fmt.Errorf("simulator: WMI %q: want 3 of 0-9 and A-Z except I, O, Q", c.WMI)
	}
	if c.ManifestSlots < 1 || c.ManifestSlots > ManifestSlotsMax {
		return fmt.Errorf("simulator: ManifestSlots %d: want 0 (default %d) or 1 to %d", c.ManifestSlots, ManifestSlotsDefault, ManifestSlotsMax)
	}
	if !(c.BadValueRate >= 0 && c.BadValueRate <= BadValueRateMax) {
		return fmt.Errorf("simulator: BadValueRate %g: want 0 to %g", c.BadValueRate, BadValueRateMax)
	}
	if err := c.Drift.validate(c.Torque); err != nil {
		return err
	}
	if strings.ContainsAny(c.Host, "/ ") {
		return fmt.Errorf("simulator: Host %q: want a host name or IP address", c.Host)
	}
	return nil
}

// StationInfo describes one station PLC.
type StationInfo struct {
	ID, Name, Zone string
	// Endpoint is the station's OPC UA endpoint URL, known once the plant
	// has started ("" before).
	Endpoint string
	// Nodes maps each logical tag name ("CycleCounter", "Joint3.TorqueNm")
	// to its node id ("ns=1;s=C04.CycleCounter").
	Nodes map[string]string
	// Parts, Joints and Tests are the station's slot counts. In JIS mode
	// the install stations T03, C01 and F01 have a test slot more (the
	// "JIS <supplier> variant" check) and R01 a part slot and a test slot
	// more per JIS supplier (replacement and re-test).
	Parts, Joints, Tests int
	// Optional is true for the off-line rework bay R01, which only cars
	// with a NOK visit.
	Optional bool
	// Manifest is the number of manifest slots: Config.ManifestSlots for
	// the framing station W01 in manifest mode, else 0.
	Manifest int
}

// Stats is a snapshot of the plant for progress reports.
type Stats struct {
	Framed   int // cars framed so far (all runs)
	Out      int // cars that left the line
	OnLine   int // cars on the line
	Stations []StationStats
}

// StationStats is one station's part of Stats.
type StationStats struct {
	ID           string
	State        string
	FaultCode    int32
	FaultText    string
	Andon        bool
	VIN          string // car in the station, "" when none
	CycleCounter uint32 // counter of the station's last finished cycle
	Unacked      int    // results waiting for acknowledgement
	StateCounter uint32
}

// Plant is a simulated line of station PLCs. Make it with New, run it with
// Start, end it with Stop. Its methods are safe for concurrent use.
type Plant struct {
	cfg   Config
	log   *slog.Logger
	space *tagSpace
	done  chan struct{}

	mu       sync.Mutex // lifecycle
	started  bool
	stopped  bool
	core     *core
	eps      []*endpoint
	urls     []string
	cancel   context.CancelFunc
	loopDone chan struct{}
	loopErr  error
	// idle is closed when the plant loop stops stepping (halted or
	// stopped): no command is applied after.
	idle chan struct{}

	cmdMu sync.Mutex
	cmds  []command

	statsMu sync.Mutex
	stats   Stats

	// Owned by the plant loop (and by Start before the loop runs).
	eng *engine
	// tools are the tightening controllers (Config.Torque), set by Start.
	tools []*tool
}

// New makes a plant from cfg. It returns an error if cfg is invalid. The
// plant does nothing until Start.
func New(cfg Config) (*Plant, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Plant{
		cfg:   cfg,
		log:   cfg.Logger.With("plant", cfg.Plant, "line", cfg.Line),
		space: newTagSpace(cfg.manifestSlots(), cfg.JIS),
		done:  make(chan struct{}),
		urls:  make([]string, len(line)),
	}
	p.stats = Stats{Stations: make([]StationStats, len(line))}
	for i, s := range line {
		p.stats.Stations[i] = StationStats{ID: s.ID, State: StateStarved}
	}
	return p, nil
}

// Start loads the retentive state from Dir (if any), opens one OPC UA
// endpoint per station and starts the plant loop. The plant runs until Stop;
// if ctx is done first, the plant halts and saves its state, and its
// endpoints keep serving the frozen values until Stop. Start returns an
// error if the plant was started or stopped before, if the state cannot be
// loaded, or if a port cannot be opened; on error nothing is left running.
func (p *Plant) Start(ctx context.Context) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return ErrStopped
	}
	if p.started {
		return errors.New("simulator: plant already started")
	}

	eng, err := newEngine(p.cfg, p.log, p.space)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			eng.close()
		}
	}()

	eps := make([]*endpoint, len(line))
	public := make([]hostPort, len(line))
	defer func() {
		if err != nil {
			for _, e := range eps {
				if e != nil {
					e.close()
				}
			}
		}
	}()
	for i := range line {
		hp := hostPort{host: p.cfg.Host}
		if p.cfg.BasePort != 0 {
			hp.port = p.cfg.BasePort + i
		}
		e := &endpoint{station: i, hp: hp, space: p.space, log: p.log}
		if err := e.listen(ctx); err != nil {
			return err
		}
		eps[i] = e
		public[i] = e.hp
	}
	if err := eng.startTools(ctx); err != nil {
		return err
	}
	c, err := startCore(ctx, p.space, public, p.log)
	if err != nil {
		return err
	}
	eng.publishAll(time.Now(), nil) // nodes hold the loaded state before any client sees them
	for i, e := range eps {
		e.core = c.addr
		e.serve(ctx)
		p.urls[i] = e.hp.url()
	}

	p.started = true
	p.core = c
	p.eps = eps
	p.eng = eng
	eng.notify = c.srv.ChangeNotification
	p.setStats(eng.stats())
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.tools = eng.tools
	eng.ctx = lctx
	p.loopDone = make(chan struct{})
	p.idle = make(chan struct{})
	// Logged before the loop runs: from then on the loop owns the state.
	p.log.Info("plant started", "stations", len(line), "framed", eng.st.Framed, "out", eng.st.Out,
		"seed", eng.st.Seed, "speed", p.cfg.Speed)
	go p.run(lctx, ctx.Done())
	return nil
}

// run is the plant loop: the only writer of plant state.
func (p *Plant) run(ctx context.Context, startDone <-chan struct{}) {
	defer close(p.loopDone)
	tick := time.Duration(float64(Takt) / p.cfg.Speed / 20)
	tick = max(time.Millisecond, min(10*time.Millisecond, tick))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.loopErr = p.eng.save()
			close(p.idle)
			return
		case <-startDone:
			p.log.Info("start context done: plant halted")
			p.loopErr = p.eng.save()
			close(p.idle)
			startDone = nil
			<-ctx.Done()
			return
		case now := <-t.C:
			p.eng.step(now, p.takeCmds())
			p.setStats(p.eng.stats())
			if p.eng.done() {
				p.closeDone()
			}
		}
	}
}

func (p *Plant) closeDone() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
}

// Stop halts the plant loop, saves the state, and closes every endpoint
// and client connection. It is safe to call twice or before Start; a
// stopped plant cannot be started again. It returns the error of the final
// save, if any.
func (p *Plant) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	if !p.started {
		return nil
	}
	p.cancel()
	<-p.loopDone
	for _, e := range p.eps {
		e.close()
	}
	p.core.close()
	p.eng.close()
	if p.loopErr != nil {
		return fmt.Errorf("simulator: save state on stop: %w", p.loopErr)
	}
	p.log.Info("plant stopped", "framed", p.eng.st.Framed, "out", p.eng.st.Out)
	return nil
}

// Stations describes the stations in line order.
func (p *Plant) Stations() []StationInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]StationInfo, len(line))
	for i, s := range line {
		parts, joints, tests := stationSlots(i, p.cfg.JIS)
		out[i] = StationInfo{
			ID: s.ID, Name: s.Name, Zone: s.Zone, Endpoint: p.urls[i],
			Nodes: p.space.nodeIDs(i),
			Parts: parts, Joints: joints, Tests: tests, Optional: s.Optional,
		}
		if s.ID == framingStation {
			out[i].Manifest = p.cfg.manifestSlots()
		}
	}
	return out
}

// Done returns a channel that is closed when Cars > 0, all Cars cars have
// left the line and every station's results are acknowledged. It is never
// closed when Cars is 0.
func (p *Plant) Done() <-chan struct{} {
	return p.done
}

// Stats returns a snapshot of the plant as of the last loop tick.
func (p *Plant) Stats() Stats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	s := p.stats
	s.Stations = append([]StationStats(nil), s.Stations...)
	return s
}

func (p *Plant) setStats(s Stats) {
	p.statsMu.Lock()
	p.stats = s
	p.statsMu.Unlock()
}

// command is an operator action or a JIS delivery applied by the plant
// loop.
type command struct {
	station int
	code    int32
	text    string
	d       time.Duration

	reset bool // ResetCounters

	deliver *JISPart   // a JIS delivery
	res     chan error // answers a delivery once saved (buffered)
	err     error      // the delivery's own error
}

func (p *Plant) takeCmds() []command {
	p.cmdMu.Lock()
	defer p.cmdMu.Unlock()
	c := p.cmds
	p.cmds = nil
	return c
}

// InjectFault puts station into fault with code and text for d of wall
// time, replacing any fault it has. A faulted station does not work, take
// or release cars. The fault takes effect at the next loop tick. It returns
// an error for an unknown station, a zero code, a d that is not positive or
// a stopped plant.
func (p *Plant) InjectFault(station string, code int32, text string, d time.Duration) error {
	i, ok := stationIndex[station]
	if !ok {
		return fmt.Errorf("simulator: inject fault: unknown station %q (want one of %s)", station, stationIDs())
	}
	if code == 0 {
		return fmt.Errorf("simulator: station %s: inject fault: code must not be 0", station)
	}
	if d <= 0 {
		return fmt.Errorf("simulator: station %s: inject fault: duration %v must be positive", station, d)
	}
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped {
		return fmt.Errorf("simulator: station %s: inject fault: %w", station, ErrStopped)
	}
	p.cmdMu.Lock()
	p.cmds = append(p.cmds, command{station: i, code: code, text: text, d: d})
	p.cmdMu.Unlock()
	return nil
}

// ResetCounters resets station's PLC counters as a CPU swap or a cleared
// retentive memory would: CycleCounter and StateCounter go back to 0 at
// the next loop tick, and the next finished cycle is counter 1 again.
// Everything else the PLC keeps: the car in the station, and the results
// waiting for acknowledgement, which are shown with their old counters
// first. The truth file lists every cycle as before: it records cars, not
// counters. It returns an error for an unknown station or a stopped
// plant.
//
// A reset the MES cannot notice by the counter alone: one made when the
// station's last acknowledged cycle was counter 1 (the new cycle 1 looks
// like the old one).
func (p *Plant) ResetCounters(station string) error {
	i, ok := stationIndex[station]
	if !ok {
		return fmt.Errorf("simulator: reset counters: unknown station %q (want one of %s)", station, stationIDs())
	}
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped {
		return fmt.Errorf("simulator: station %s: reset counters: %w", station, ErrStopped)
	}
	p.cmdMu.Lock()
	p.cmds = append(p.cmds, command{station: i, reset: true})
	p.cmdMu.Unlock()
	return nil
}

// Deliver is the plant's receiving dock in JIS mode (Config.JIS): it puts
// the part d on its supplier's rack at the install station, after the parts
// delivered before. It returns once the part is saved with the plant state
// (with Config.Dir) and so survives a crash. A part whose Seq is not above
// the highest Seq its supplier delivered before is a redelivery: it is
// ignored and Deliver returns nil. It returns an error when not in JIS
// mode, for an unknown supplier (want JISSupplierCockpit,
// JISSupplierBattery or JISSupplierSeats), a Seq below 1, an empty VIN,
// strings over 256 bytes, a full rack (JISRackMax), a plant not running,
// or when the state cannot be saved.
func (p *Plant) Deliver(d JISPart) error {
	if !p.cfg.JIS {
		return errors.New("simulator: deliver: the plant is not in JIS mode (Config.JIS)")
	}
	if err := d.check(); err != nil {
		return fmt.Errorf("simulator: deliver: %w", err)
	}
	p.mu.Lock()
	stopped, started, idle := p.stopped, p.started, p.idle
	p.mu.Unlock()
	if stopped {
		return fmt.Errorf("simulator: deliver %s seq %d: %w", d.Supplier, d.Seq, ErrStopped)
	}
	if !started {
		return fmt.Errorf("simulator: deliver %s seq %d: plant not started", d.Supplier, d.Seq)
	}
	res := make(chan error, 1)
	p.cmdMu.Lock()
	p.cmds = append(p.cmds, command{station: stationIndex[jisSupplierByName(d.Supplier).Station], deliver: &d, res: res})
	p.cmdMu.Unlock()
	select {
	case err := <-res:
		return err
	case <-idle:
		select {
		case err := <-res:
			return err
		default:
			return fmt.Errorf("simulator: deliver %s seq %d: plant halted: %w", d.Supplier, d.Seq, ErrStopped)
		}
	}
}

// RestartStation power-cycles a station's PLC: it closes the station's
// endpoint, dropping its client connections, and reopens it on the same
// port. The retentive data (counters, unacknowledged results, the car in
// the station) survives; the rest of the line runs on. It returns an error
// for an unknown station, a plant that is not running, or when the port
// cannot be reopened before ctx is done.
func (p *Plant) RestartStation(ctx context.Context, station string) error {
	i, ok := stationIndex[station]
	if !ok {
		return fmt.Errorf("simulator: restart: unknown station %q (want one of %s)", station, stationIDs())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return fmt.Errorf("simulator: station %s: restart: %w", station, ErrStopped)
	}
	if !p.started {
		return fmt.Errorf("simulator: station %s: restart: plant not started", station)
	}
	e := p.eps[i]
	e.close()
	if err := e.reopen(ctx); err != nil {
		return fmt.Errorf("simulator: restart: %w", err)
	}
	p.log.Info("station restarted", "station", station, "endpoint", p.urls[i])
	return nil
}

func stationIDs() string {
	ids := make([]string, len(line))
	for i, s := range line {
		ids[i] = s.ID
	}
	return strings.Join(ids, " ")
}
