package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/harness/suppliers"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/orders"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go/jetstream"
)

// The simulated line's plant and line codes (../shared/LINE.md).
const (
	PlantDefault = "US1"
	LineDefault  = "L1"
)

// ProgressInterval is how often `up` looks at the line's progress; it
// prints a line when something changed, and at least every ProgressQuiet.
const (
	ProgressInterval = 2 * time.Second
	ProgressQuiet    = 30 * time.Second
)

func runUp(ctx context.Context, args []string) error {
	fs := newFlags("up")
	state := fs.String("state", StateDirDefault, "state directory (PLC memory, NATS store, PostgreSQL data)")
	db := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL to use instead of a private cluster (env KEILINE_DB)")
	natsURL := fs.String("nats", os.Getenv("KEILINE_NATS"), "NATS URL to use instead of an embedded server (env KEILINE_NATS)")
	natsCreds := fs.String("nats-creds", os.Getenv("KEILINE_NATS_CREDS"), "with --nats: the directory of the parts' NATS identities (keiline nats provision; env KEILINE_NATS_CREDS); without, the NATS must allow anonymous clients")
	speed := fs.Float64("speed", 1, "time compression: the takt is 60 s / speed")
	seed := fs.Int64("seed", 1, "simulator seed (a resumed line keeps its own)")
	cars := fs.Int("cars", 0, "frame this many cars in all, then exit once they have left the line (0 = run until Ctrl-C)")
	truth := fs.String("truth", "", "append what the simulator really built to this JSONL file")
	poll := fs.Duration("poll", line.PollIntervalDefault, "agent poll interval")
	httpAddr := fs.String("http", dashboard.AddrDefault, "dashboard address (empty: no dashboard)")
	jisWrong := fs.Float64("jis-wrong-rate", suppliers.WrongRateDefault, "with --orders: share of JIS parts the simulated suppliers deliver in the wrong variant")
	badRate := fs.Float64("bad-value-rate", 0, "share of station results with joints in which the simulated PLC cannot give one torque (a sensor fault): the record shows it unknown and holds the car until the rework bay redoes it")
	torque := fs.Bool("torque", false, "the wheel nuts (C04) and seat bolts (F01) are tightened by simulated Open Protocol controllers the agent drives (docs/torque.md)")
	torqueTruth := fs.String("torque-truth", "", "with --torque: append every tightening the simulated controllers make to this JSONL file")
	orders := fs.String("orders", "", "build from planned orders: import this CSV or JSON orders `file`, sequence it and download the manifest to W01 (the simulated plant then builds only what was downloaded)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*state, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(*state, "keiline.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	defer logFile.Close()
	// Libraries that log through the standard logger (gopcua's server)
	// write to the log file, not over the progress lines.
	stdlog.SetOutput(logFile)
	defer stdlog.SetOutput(os.Stderr)
	// The terminal shows progress and warnings; the log file has everything.
	log := slog.New(teeHandler{
		slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}),
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
	})
	u := &upRun{state: *state, log: log, out: os.Stdout}
	defer u.close(ctx)
	return u.run(ctx, upOptions{db: *db, nats: *natsURL, natsCreds: *natsCreds, speed: *speed, seed: *seed, cars: *cars, truth: *truth, poll: *poll, http: *httpAddr, orders: *orders, jisWrong: *jisWrong, badRate: *badRate, torque: *torque, torqueTruth: *torqueTruth})
}

type upOptions struct {
	db, nats, truth string
	natsCreds       string
	torque          bool   // simulated tightening controllers
	torqueTruth     string // their truth file
	http            string
	orders          string // orders file: manifest mode
	jisWrong        float64
	badRate         float64
	speed           float64
	seed            int64
	cars            int
	poll            time.Duration
}

// upRun is one `keiline up`: it owns every part it starts and stops them
// in reverse order.
type upRun struct {
	state string
	log   *slog.Logger
	out   io.Writer

	closers []func(context.Context)
}

func (u *upRun) onClose(f func(context.Context)) { u.closers = append(u.closers, f) }

func (u *upRun) close(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for i := len(u.closers) - 1; i >= 0; i-- {
		u.closers[i](cctx)
	}
	u.closers = nil
}

func (u *upRun) run(ctx context.Context, o upOptions) error {
	start := time.Now()
	if o.db != "" {
		sf, err := readState(u.state)
		if err == nil {
			sf.DBURL = o.db
			err = writeState(u.state, sf)
		}
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(u.out, "keiline up: state in %s\n", u.state)
	db, err := openDatabase(ctx, o.db, u.state, u.log)
	if err != nil {
		return err
	}
	u.onClose(func(ctx context.Context) {
		if err := db.Close(ctx); err != nil {
			u.log.Error("stop PostgreSQL", "err", err)
		}
	})
	// The tracker writes as the writer role, which cannot change the log.
	store, err := schema.OpenRole(ctx, db.URL, schema.RoleWriter)
	if err != nil {
		return err
	}
	u.onClose(func(context.Context) { store.Close() })

	// The parts' NATS identities are the default line's (the plant is
	// the simulated default line).
	conns, err := u.startNATS(ctx, o, line.Default())
	if err != nil {
		return err
	}
	js := conns.trackerJS
	plant, err := simulator.New(simulator.Config{
		Plant: PlantDefault, Line: LineDefault, Dir: filepath.Join(u.state, "plant"), Seed: o.seed, Speed: o.speed, Cars: o.cars, TruthPath: o.truth, Logger: u.log,
		Manifest: o.orders != "", ManifestSlots: ManifestSlotsDefault, JIS: o.orders != "", BadValueRate: o.badRate,
		Torque: o.torque, TorqueTruthPath: o.torqueTruth,
	})
	if err != nil {
		return err
	}
	if err := plant.Start(ctx); err != nil {
		return err
	}
	u.onClose(func(context.Context) {
		if err := plant.Stop(); err != nil {
			u.log.Error("stop simulator", "err", err)
		}
	})
	lc, err := defaultLine(plant, o.poll, o.orders != "")
	if err != nil {
		return err
	}
	if o.orders != "" {
		if err := u.importOrders(ctx, store, lc, o.orders); err != nil {
			return err
		}
	}
	if b, err := lc.Marshal(); err == nil {
		_ = os.WriteFile(filepath.Join(u.state, "line.yaml"), b, 0o644)
	}

	tracker, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: routeOf(lc), Identity: lc.Identity, Store: store, JetStream: js, Logger: u.log, Broadcast: broadcastOf(lc), Torque: torqueOf(lc), SPC: &lc.SPC,
		Consumer: broker.TrackerConsumer(lc.Plant, lc.Line), FilterSubject: broker.TrackerFilter(lc.Plant, lc.Line), StreamsReady: true})
	if err != nil {
		return err
	}
	if err := tracker.Setup(ctx); err != nil {
		return err
	}
	spool, err := stations.OpenSpool(stations.SpoolConfig{Path: filepath.Join(u.state, "spool.db"), Logger: u.log})
	if err != nil {
		return err
	}
	u.onClose(func(context.Context) { _ = spool.Close() })
	if o.http != "" {
		// The dashboard reads as the read-only role, on a pool of its own.
		view, err := schema.OpenAs(ctx, db.URL, schema.RoleAuditor)
		if err != nil {
			return err
		}
		u.onClose(func(context.Context) { view.Close() })
		wake, unsubscribe := tracker.Subscribe()
		dcfg := dashboardConfig(lc, view, o.http, o.speed, wake, u.log)
		// The planner's orders API writes orders: the writer's store.
		dcfg.Orders = orders.Handler(store, lc.Products, u.log)
		// People sign in; the station terminals are beside the dashboard.
		ppl, err := startPeople(ctx, db.URL, u.state, lc, view, conns.webJS, u.log, u.onClose)
		if err != nil {
			unsubscribe()
			return err
		}
		dcfg.Front = ppl.front
		dash, err := dashboard.Start(ctx, dcfg)
		if err != nil {
			unsubscribe()
			return err
		}
		u.onClose(func(ctx context.Context) {
			unsubscribe()
			if err := dash.Shutdown(ctx); err != nil {
				u.log.Error("stop dashboard", "err", err)
			}
		})
		fmt.Fprintf(u.out, "keiline up: dashboard at %s, station terminals at %sstation/<ID>\n", dash.URL(), dash.URL())
		fmt.Fprintf(u.out, "keiline up: %s\n", ppl.signInHint(dash.URL()))
	}
	agent, err := stations.NewAgent(stations.AgentConfig{Line: lc, Publisher: streams.NewPublisher(conns.agentJS), Logger: u.log, Spool: spool, Commands: conns.agent})
	if err != nil {
		return err
	}
	var dispatcher *pipeline.Dispatcher
	if o.orders != "" {
		if dispatcher, err = newDispatcher(lc, store, conns.tracker, u.log, u.out); err != nil {
			return err
		}
	}
	wake, unsubscribe := tracker.Subscribe()
	u.onClose(func(context.Context) { unsubscribe() })
	broadcaster := &pipeline.Broadcaster{Plant: lc.Plant, Line: lc.Line, Store: store, JetStream: js, Wake: wake, Logger: u.log, StreamsReady: true}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Go(func() {
		if err := tracker.Run(runCtx); err != nil {
			errc <- fmt.Errorf("tracker: %w", err)
		}
	})
	wg.Go(func() {
		if err := agent.Run(runCtx); err != nil {
			errc <- fmt.Errorf("agent: %w", err)
		}
	})
	wg.Go(func() { _ = broadcaster.Run(runCtx) })
	if dispatcher != nil {
		wg.Go(func() { _ = dispatcher.Run(runCtx) })
		sup := &suppliers.Suppliers{Line: lc, JetStream: func(s string) jetstream.JetStream { return conns.suppliers[s] }, Plant: plant, Seed: o.seed, WrongRate: o.jisWrong, Logger: u.log}
		wg.Go(func() { sup.Run(runCtx) })
	}
	u.onClose(func(context.Context) { cancel(); wg.Wait() })

	fmt.Fprintf(u.out, "keiline up: %d stations, takt %.2fs (speed %g), NATS %s\n", len(lc.Stations), 60/o.speed, o.speed, conns.link.url)
	if o.cars > 0 {
		fmt.Fprintf(u.out, "keiline up: building %d cars; Ctrl-C stops, the next up continues\n", o.cars)
	}
	tick := time.NewTicker(ProgressInterval)
	defer tick.Stop()
	var lastEvents int64
	lastAt := time.Now()
	var lastLine string
	var lastPrinted time.Time
	done := plant.Done()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(u.out, "keiline up: stopping")
			return nil
		case err := <-errc:
			return err
		case <-done:
			done = nil // the plant is finished; wait for the tracker to drain
			fmt.Fprintln(u.out, "keiline up: every car has left the line; waiting for the tracker")
		case <-tick.C:
			st := plant.Stats()
			ts := tracker.Stats()
			now := time.Now()
			rate := float64(ts.Recorded-lastEvents) / now.Sub(lastAt).Seconds()
			lastEvents, lastAt = ts.Recorded, now
			down := 0
			for _, l := range tracker.Live() {
				if l.State == "fault" || l.State == "maintenance" {
					down++
				}
			}
			line := fmt.Sprintf("framed %d  out %d  on line %d  events %d  dead-lettered %d  stations down %d",
				st.Framed, st.Out, st.OnLine, ts.Recorded, ts.DeadLettered, down)
			// A line when something changed, else every ProgressQuiet.
			if line != lastLine || now.Sub(lastPrinted) >= ProgressQuiet {
				fmt.Fprintf(u.out, "%s  (%.0f events/s)\n", line, rate)
				lastLine, lastPrinted = line, now
			}
		}
		if done == nil && o.cars > 0 && spool.Len() == 0 {
			n, err := tracker.Pending(ctx)
			if err == nil && n == 0 {
				c, err := store.Counts(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(u.out, "keiline up: done in %s: %d cars recorded, %d shipped, %d events, %d station visits, %d open holds\n",
					time.Since(start).Round(time.Second), c.Vehicles, c.Shipped, c.Events, c.Visits, c.OpenHolds)
				return nil
			}
		}
	}
}

// routeOf is the tracker's view of a line config.
func routeOf(lc *line.Config) pipeline.Route {
	r := pipeline.Route{Plant: lc.Plant, Line: lc.Line}
	for _, s := range lc.Stations {
		r.Stations = append(r.Stations, pipeline.RouteStation{ID: s.ID, Optional: s.Optional})
		if s.Zone == "quality" && !s.Optional {
			r.Gate = s.ID // the quality gate is the line's last quality station (Q05)
		}
	}
	return r
}

// teeHandler sends each record to every handler that takes its level.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

// importOrders imports an orders file for `up --orders`, once: when every
// order of the file is in the record already (a resumed up), nothing is
// done; a file that is partly imported is an error naming the ids.
func (u *upRun) importOrders(ctx context.Context, store *schema.Store, lc *line.Config, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("orders: %w", err)
	}
	defer f.Close()
	list, err := orders.Parse(path, f, lc.Products)
	if err != nil {
		return err
	}
	n, err := store.ImportOrders(ctx, filepath.Base(path), orders.Record(list))
	if errors.Is(err, schema.ErrOrderExists) {
		all, lerr := store.Orders(ctx, "", schema.OrdersLimitMax)
		if lerr != nil {
			return lerr
		}
		have := make(map[string]bool, len(all))
		for _, o := range all {
			have[o.ID] = true
		}
		for _, o := range list {
			if !have[o.ID] {
				return err
			}
		}
		fmt.Fprintf(u.out, "keiline up: the %d orders of %s are in the record already\n", len(list), path)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(u.out, "keiline up: imported %d orders from %s\n", n, path)
	return nil
}
