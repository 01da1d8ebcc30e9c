// Package chaos is keiline's fault campaign: it runs a shift with every part
// as its own process (simulated PLCs, station agents, nats-server, tracker,
// PostgreSQL), injects seeded faults — kill -9 of each part, cut
// connections, PLC restarts, a full spool — and then proves that the record
// equals what the simulator really built: nothing lost, doubled or changed,
// and the event log's hash chain whole.
package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgserver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Fault classes.
const (
	KillAgent    = "kill -9 agent"
	KillTracker  = "kill -9 tracker"
	KillNATS     = "kill -9 nats-server"
	KillPostgres = "kill -9 postmaster"
	CutPLC       = "cut PLC-agent link"
	CutNATS      = "cut agent-NATS link"
	RestartPLC   = "PLC restart"
	SpoolFull    = "spool disk full"
)

// Classes lists every fault class in report order.
var Classes = []string{KillAgent, KillTracker, KillNATS, KillPostgres, CutPLC, CutNATS, RestartPLC, SpoolFull}

// Defaults.
const (
	SpeedDefault          = 120
	FaultsPerClassDefault = 3
	agents                = 3
	smallSpool            = 12 << 10 // the "disk" of a spool-full fault
	drainTimeout          = 5 * time.Minute
)

// Config configures a campaign.
type Config struct {
	// Dir holds every part's state and logs. Required.
	Dir string
	// Seed makes the plant and the fault schedule repeatable.
	Seed int64
	// Duration of the fault phase. Defaults to 2 minutes.
	Duration time.Duration
	// FaultsPerClass defaults to FaultsPerClassDefault.
	FaultsPerClass int
	// Speed of the simulated line. Defaults to SpeedDefault.
	Speed float64
	// Command returns a command that runs `keiline ARGS...`. Required.
	Command func(args ...string) *exec.Cmd
	// Logger defaults to slog.Default(); Out receives progress lines.
	Logger *slog.Logger
	Out    io.Writer
}

// ClassReport is what happened to one fault class.
type ClassReport struct {
	Class       string
	Injected    int
	Survived    int
	MaxRecovery time.Duration
}

// Report is the campaign's outcome.
type Report struct {
	Seed                    int64
	Cars                    int
	Visits                  int
	Lost, Doubled, Changed  int
	Differences             []string // the first few, for people
	ChainRows               int64
	ChainProblem            string
	Classes                 []ClassReport
	Crashes                 map[string]int // parts that exited on their own
	Duration, DrainDuration time.Duration
}

// OK reports whether the record equals the truth and the chain is whole.
func (r *Report) OK() bool {
	return r.Lost == 0 && r.Doubled == 0 && r.Changed == 0 && r.ChainProblem == "" && r.Cars > 0
}

// Print writes the summary for people.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "FAULT CLASS\tINJECTED\tSURVIVED\tMAX RECOVERY\n")
	for _, c := range r.Classes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", c.Class, c.Injected, c.Survived, c.MaxRecovery.Round(10*time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ncars %d, station visits %d: lost %d, doubled %d, changed %d\n", r.Cars, r.Visits, r.Lost, r.Doubled, r.Changed)
	for _, d := range r.Differences {
		fmt.Fprintf(w, "  %s\n", d)
	}
	if r.ChainProblem == "" {
		fmt.Fprintf(w, "event log: %d rows, hash chain whole\n", r.ChainRows)
	} else {
		fmt.Fprintf(w, "event log: CHAIN BROKEN: %s\n", r.ChainProblem)
	}
	var crashed []string
	for name, n := range r.Crashes {
		if n > 0 {
			crashed = append(crashed, fmt.Sprintf("%s %d", name, n))
		}
	}
	sort.Strings(crashed)
	if len(crashed) > 0 {
		fmt.Fprintf(w, "parts that exited on their own and were restarted: %s\n", strings.Join(crashed, ", "))
	}
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s: seed %d, faults for %s, drained in %s\n", verdict, r.Seed, r.Duration.Round(time.Second), r.DrainDuration.Round(time.Second))
}

// campaign is one run.
type campaign struct {
	cfg   Config
	log   *slog.Logger
	rng   *rand.Rand
	store *schema.Store
	pg    *pgserver.Server
	pgCfg pgserver.Config

	nats          *proc
	sim           *proc
	tracker       *proc
	agents        []*proc
	agentArgs     [][]string
	agentStations [][]string

	plcProxies  map[string]*toxiproxy.Proxy
	natsProxies []*toxiproxy.Proxy

	mu       sync.Mutex
	recovery map[string][]time.Duration
	injected map[string]int
	wg       sync.WaitGroup
}

// Run runs a campaign and returns its report. The error is for campaigns
// that could not run; a run that lost records returns a report with OK()
// false and no error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Dir == "" || cfg.Command == nil {
		return nil, errors.New("chaos: Dir and Command are required")
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 2 * time.Minute
	}
	if cfg.FaultsPerClass <= 0 {
		cfg.FaultsPerClass = FaultsPerClassDefault
	}
	if cfg.Speed <= 0 {
		cfg.Speed = SpeedDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	c := &campaign{cfg: cfg, log: cfg.Logger, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6b65696c696e65)),
		recovery: map[string][]time.Duration{}, injected: map[string]int{}}
	return c.run(ctx)
}

func (c *campaign) say(format string, a ...any) {
	fmt.Fprintf(c.cfg.Out, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func (c *campaign) run(ctx context.Context) (*Report, error) {
	dir := c.cfg.Dir
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	takt := time.Duration(float64(time.Minute) / c.cfg.Speed)
	cars := int(c.cfg.Duration/takt) + 40 // the warm-up takes about 25 takts
	truthPath := filepath.Join(dir, "truth.jsonl")

	// PostgreSQL, in this process so its postmaster can be killed and
	// started again on the same port.
	pgPort, err := freePort()
	if err != nil {
		return nil, err
	}
	c.pgCfg = pgserver.Config{Dir: filepath.Join(dir, "pg"), Port: pgPort, Logger: c.log}
	if c.pg, err = pgserver.Start(ctx, c.pgCfg); err != nil {
		return nil, err
	}
	defer func() { _ = c.pg.Stop(context.WithoutCancel(ctx)) }()
	if err := c.pg.CreateDatabase(ctx, "keiline"); err != nil {
		return nil, err
	}
	dbURL := c.pg.URL("keiline")
	// The tracker logs in as the writer, with its password in the
	// cluster's password file (named by dbURL).
	if err := schema.ProvisionLogins(ctx, dbURL, c.pg.PassFile()); err != nil {
		return nil, err
	}
	if c.store, err = schema.Open(ctx, dbURL); err != nil {
		return nil, err
	}
	defer c.store.Close()

	runCtx, stopParts := context.WithCancel(ctx)
	var parts sync.WaitGroup
	defer func() { stopParts(); parts.Wait() }()
	start := func(p *proc) { parts.Go(func() { p.supervise(runCtx) }) }
	logPath := func(name string) string { return filepath.Join(dir, "logs", name+".log") }

	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	natsAddr := fmt.Sprintf("127.0.0.1:%d", natsPort)
	// Every part on NATS has an identity of its own (mutual TLS, an nkey,
	// least-privilege permissions), as in a plant.
	sec := filepath.Join(dir, "nats-sec")
	def := line.Default()
	if _, err := broker.ProvisionLine(sec, broker.LineParts(def, agents)); err != nil {
		return nil, err
	}
	c.nats = newProc("nats", c.cfg.Command, logPath("nats"), c.log, "nats", "--store", filepath.Join(dir, "nats"), "--port", strconv.Itoa(natsPort), "--secure", sec)
	start(c.nats)
	if err := waitTCP(ctx, natsAddr, time.Minute); err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}

	basePort, err := freePortRange(23)
	if err != nil {
		return nil, err
	}
	simConfig := filepath.Join(dir, "sim-line.yaml")
	c.sim = newProc("simulate", c.cfg.Command, logPath("simulate"), c.log, "simulate", "--state", filepath.Join(dir, "plant"),
		"--port", strconv.Itoa(basePort), "--cars", strconv.Itoa(cars), "--seed", strconv.FormatInt(c.cfg.Seed, 10),
		"--speed", strconv.FormatFloat(c.cfg.Speed, 'f', -1, 64), "--truth", truthPath, "--emit-config", simConfig, "--poll", "50ms")
	start(c.sim)
	lc, err := waitConfig(ctx, simConfig, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}

	// Proxies: one per PLC link and one per agent's NATS link.
	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	c.plcProxies = map[string]*toxiproxy.Proxy{}
	for i := range lc.Stations {
		st := &lc.Stations[i]
		upstream := strings.TrimPrefix(st.Endpoint, "opc.tcp://")
		p := toxiproxy.NewProxy(tp, "plc-"+st.ID, "127.0.0.1:0", upstream)
		if err := p.Start(); err != nil {
			return nil, fmt.Errorf("proxy for %s: %w", st.ID, err)
		}
		defer p.Stop()
		c.plcProxies[st.ID] = p
		st.Endpoint = "opc.tcp://" + p.Listen
	}
	agentConfig := filepath.Join(dir, "line.yaml")
	b, err := lc.Marshal()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(agentConfig, b, 0o644); err != nil {
		return nil, err
	}

	c.tracker = newProc("tracker", c.cfg.Command, logPath("tracker"), c.log, "tracker", "--config", agentConfig, "--nats", "tls://"+natsAddr, "--db", dbURL,
		"--creds", broker.CredsFile(sec, broker.TrackerPart(def)))
	start(c.tracker)

	for k := range agents {
		var ids []string
		for i, st := range lc.Stations {
			if i%agents == k {
				ids = append(ids, st.ID)
			}
		}
		p := toxiproxy.NewProxy(tp, fmt.Sprintf("nats-%d", k), "127.0.0.1:0", natsAddr)
		if err := p.Start(); err != nil {
			return nil, err
		}
		defer p.Stop()
		c.natsProxies = append(c.natsProxies, p)
		args := []string{"agent", "--config", agentConfig, "--station", strings.Join(ids, ","), "--nats", "tls://" + p.Listen,
			"--creds", broker.CredsFile(sec, broker.AgentPart(def, k)),
			"--spool", filepath.Join(dir, fmt.Sprintf("spool-%d.db", k)), "--publish-timeout", "500ms"}
		c.agentArgs = append(c.agentArgs, args)
		c.agentStations = append(c.agentStations, ids)
		ap := newProc(fmt.Sprintf("agent-%d", k), c.cfg.Command, logPath(fmt.Sprintf("agent-%d", k)), c.log, args...)
		c.agents = append(c.agents, ap)
		start(ap)
	}
	c.say("line up: %d stations, takt %s, %d cars, %d agents, logs in %s", len(lc.Stations), takt, cars, agents, filepath.Join(dir, "logs"))
	// Warm up: faults start once the line is full and the first car is out.
	for warm := time.Now(); time.Since(warm) < 2*time.Minute; {
		if t, err := readTruth(truthPath); err == nil && len(t) > 0 {
			break
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	c.say("line full; faults start")

	// The fault phase: every class FaultsPerClass times, in a seeded order,
	// one fault at a time, spread over Duration.
	var schedule []string
	for _, cl := range Classes {
		for range c.cfg.FaultsPerClass {
			schedule = append(schedule, cl)
		}
	}
	c.rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
	slot := c.cfg.Duration / time.Duration(len(schedule))
	faultStart := time.Now()
	for i, cl := range schedule {
		at := faultStart.Add(time.Duration(i) * slot)
		if !sleepCtx(ctx, time.Until(at)) {
			return nil, ctx.Err()
		}
		if err := c.inject(ctx, cl, slot, lc); err != nil {
			return nil, err
		}
	}
	c.wg.Wait()
	faultPhase := time.Since(faultStart)

	// Drain: every car out and every visit recorded, then compare.
	c.say("faults over; waiting for the line to finish %d cars and the record to catch up", cars)
	drainStart := time.Now()
	if err := c.drain(ctx, truthPath, cars); err != nil {
		c.say("drain: %v", err)
	}
	rep, err := c.compare(ctx, truthPath)
	if err != nil {
		return nil, err
	}
	rep.Seed, rep.Duration, rep.DrainDuration = c.cfg.Seed, faultPhase, time.Since(drainStart)
	rep.Crashes = map[string]int{}
	for _, p := range append([]*proc{c.nats, c.sim, c.tracker}, c.agents...) {
		_, crashes := p.stats()
		rep.Crashes[p.name] = crashes
	}
	for _, cl := range Classes {
		cr := ClassReport{Class: cl, Injected: c.injected[cl]}
		for _, d := range c.recovery[cl] {
			if d >= 0 {
				cr.Survived++
				cr.MaxRecovery = max(cr.MaxRecovery, d)
			}
		}
		rep.Classes = append(rep.Classes, cr)
	}
	return rep, nil
}

// inject runs one fault of class cl within a slot of time, restores it,
// and starts measuring the recovery.
func (c *campaign) inject(ctx context.Context, cl string, slot time.Duration, lc *line.Config) error {
	// A fault lasts between a fifth and three fifths of its slot.
	d := slot/5 + time.Duration(c.rng.Int64N(int64(slot*2/5)+1))
	affected := []string{}
	var restore func() error
	var detail string
	switch cl {
	case KillAgent:
		k := c.rng.IntN(len(c.agents))
		detail = c.agents[k].name
		affected = c.agentStations[k]
		if err := c.agents[k].kill9(); err != nil {
			return err
		}
		restore = func() error { c.agents[k].up(); return nil }
	case KillTracker:
		detail = "tracker"
		if err := c.tracker.kill9(); err != nil {
			return err
		}
		restore = func() error { c.tracker.up(); return nil }
	case KillNATS:
		detail = "nats-server"
		if err := c.nats.kill9(); err != nil {
			return err
		}
		restore = func() error { c.nats.up(); return nil }
	case KillPostgres:
		detail = "postmaster"
		if err := c.killPostgres(); err != nil {
			return err
		}
		restore = func() error { return c.startPostgres(ctx) }
	case CutPLC:
		st := lc.Stations[c.rng.IntN(len(lc.Stations))].ID
		detail = st
		affected = []string{st}
		c.plcProxies[st].Stop()
		restore = func() error { return c.plcProxies[st].Start() }
	case CutNATS:
		k := c.rng.IntN(len(c.natsProxies))
		detail = c.agents[k].name
		affected = c.agentStations[k]
		c.natsProxies[k].Stop()
		restore = func() error { return c.natsProxies[k].Start() }
	case RestartPLC:
		detail = "every station PLC (simulate process)"
		if err := c.sim.kill9(); err != nil {
			return err
		}
		d = min(d, 2*time.Second)
		restore = func() error { c.sim.up(); return nil }
	case SpoolFull:
		// The agent's spool gets a small disk while its NATS link is cut:
		// the spool fills, the agent stops acknowledging, the line stops.
		k := c.rng.IntN(len(c.agents))
		detail = c.agents[k].name
		affected = c.agentStations[k]
		if err := c.agents[k].kill9(); err != nil {
			return err
		}
		c.natsProxies[k].Stop()
		c.agents[k].up(append(append([]string(nil), c.agentArgs[k]...), "--spool-max-bytes", strconv.Itoa(smallSpool))...)
		d = max(d, slot/2)
		logPath := c.agents[k].logPath
		fullBefore := countInFile(logPath, "SPOOL FULL")
		restore = func() error {
			if countInFile(logPath, "SPOOL FULL") == fullBefore {
				c.say("warning: %s never reported its spool full", c.agents[k].name)
			} else {
				c.say("%s: spool full, line stopped; giving the disk back", c.agents[k].name)
			}
			if err := c.natsProxies[k].Start(); err != nil {
				return err
			}
			// The disk gets its space back at the agent's next start.
			c.mu.Lock()
			args := c.agentArgs[k]
			c.mu.Unlock()
			c.wg.Go(func() {
				if sleepCtx(ctx, slot/5) {
					_ = c.agents[k].kill9()
					c.agents[k].up(args...)
				}
			})
			return nil
		}
	default:
		return fmt.Errorf("chaos: unknown fault class %q", cl)
	}
	c.say("fault: %-22s %-38s for %s", cl, detail, d.Round(time.Millisecond))
	c.mu.Lock()
	c.injected[cl]++
	c.mu.Unlock()
	if !sleepCtx(ctx, d) {
		return ctx.Err()
	}
	if err := restore(); err != nil {
		return fmt.Errorf("restore %s (%s): %w", cl, detail, err)
	}
	restored := time.Now()
	c.wg.Go(func() { c.measure(ctx, cl, restored, affected) })
	return nil
}

// measure waits until a cycle a PLC finished after restored (at one of the
// affected stations, or any station) is committed in Postgres, and records
// the time it took: the pipeline flows end to end again.
func (c *campaign) measure(ctx context.Context, cl string, restored time.Time, affected []string) {
	deadline := restored.Add(3 * time.Minute)
	rec := time.Duration(-1)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := c.store.CyclesSince(ctx, restored, affected)
		if err == nil && n > 0 {
			rec = time.Since(restored)
			break
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			break
		}
	}
	c.mu.Lock()
	c.recovery[cl] = append(c.recovery[cl], rec)
	c.mu.Unlock()
	if rec < 0 {
		c.say("NOT RECOVERED within 3 minutes: %s", cl)
	}
}

func (c *campaign) killPostgres() error {
	b, err := os.ReadFile(filepath.Join(c.pgCfg.Dir, "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("postmaster.pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return fmt.Errorf("postmaster.pid: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill -9 postmaster %d: %w", pid, err)
	}
	select {
	case <-c.pg.Done():
	case <-time.After(30 * time.Second):
		return errors.New("postmaster did not die")
	}
	return nil
}

func (c *campaign) startPostgres(ctx context.Context) error {
	_ = c.pg.Stop(ctx) // reaps the dead child
	var err error
	for range 3 {
		if c.pg, err = pgserver.Start(ctx, c.pgCfg); err == nil {
			return nil
		}
		if !sleepCtx(ctx, time.Second) {
			break
		}
	}
	return fmt.Errorf("restart postgres: %w", err)
}

// drain waits until the truth has every car and the record every visit.
func (c *campaign) drain(ctx context.Context, truthPath string, cars int) error {
	deadline := time.Now().Add(drainTimeout)
	last := time.Now()
	for time.Now().Before(deadline) {
		truth, err := readTruth(truthPath)
		if err == nil && len(truth) >= cars {
			want := 0
			for _, t := range truth {
				want += len(t.Stations)
			}
			counts, err := c.store.Counts(ctx)
			if err == nil && counts.Visits >= int64(want) {
				return nil
			}
			if time.Since(last) > 10*time.Second && err == nil {
				c.say("drain: %d of %d visits recorded", counts.Visits, want)
				last = time.Now()
			}
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("not drained after %s", drainTimeout)
}

type truthCar struct {
	VIN      string            `json:"vin"`
	Stations []json.RawMessage `json:"stations"`
	raw      []byte
}

func readTruth(path string) ([]truthCar, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []truthCar
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var t truthCar
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return nil, fmt.Errorf("truth file: %w", err)
		}
		t.raw = append([]byte(nil), sc.Bytes()...)
		out = append(out, t)
	}
	return out, nil
}

// canonical re-encodes JSON with sorted keys.
func canonical(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// compare counts what the record lost, doubled or changed against the
// truth, station visit by station visit, and verifies the hash chain.
func (c *campaign) compare(ctx context.Context, truthPath string) (*Report, error) {
	truth, err := readTruth(truthPath)
	if err != nil {
		return nil, err
	}
	got := map[string][]string{}
	err = c.store.Export(ctx, func(r schema.CarRecord) error {
		for _, s := range r.Stations {
			b, _ := json.Marshal(s)
			got[r.VIN] = append(got[r.VIN], canonical(b))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep := &Report{Cars: len(truth)}
	note := func(format string, a ...any) {
		if len(rep.Differences) < 10 {
			rep.Differences = append(rep.Differences, fmt.Sprintf(format, a...))
		}
	}
	seen := map[string]bool{}
	for _, t := range truth {
		seen[t.VIN] = true
		want := map[string]int{}
		for _, s := range t.Stations {
			want[canonical(s)]++
			rep.Visits++
		}
		have := map[string]int{}
		for _, s := range got[t.VIN] {
			have[s]++
		}
		var missing, extra int
		for s, n := range want {
			if have[s] < n {
				missing += n - have[s]
			}
		}
		for s, n := range have {
			if want[s] < n {
				extra += n - want[s]
			}
		}
		// A visit present with other values counts once as changed.
		changed := min(missing, extra)
		rep.Changed += changed
		rep.Lost += missing - changed
		rep.Doubled += extra - changed
		if missing+extra > 0 {
			note("VIN %s: %d visits missing, %d extra", t.VIN, missing, extra)
		}
	}
	for vin, visits := range got {
		if !seen[vin] {
			rep.Doubled += len(visits)
			note("VIN %s is in the record but was never built", vin)
		}
	}
	n, problem, err := c.store.VerifyChain(ctx)
	if err != nil {
		return nil, err
	}
	rep.ChainRows = n
	if problem != nil {
		rep.ChainProblem = problem.Error()
	}
	return rep, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePortRange finds n consecutive free ports.
func freePortRange(n int) (int, error) {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for range 50 {
		base := 20000 + r.IntN(30000)
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("no range of free ports found")
}

func waitTCP(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not reachable: %w", addr, err)
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func waitConfig(ctx context.Context, path string, d time.Duration) (*line.Config, error) {
	deadline := time.Now().Add(d)
	for {
		cfg, err := line.Load(path)
		if err == nil {
			return cfg, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// countInFile counts the lines of path that contain s.
func countInFile(path, s string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(s))
}
