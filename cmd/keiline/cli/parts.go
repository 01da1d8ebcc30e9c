package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runSimulate runs the simulated PLCs alone, as a plant would be.
func runSimulate(ctx context.Context, args []string) error {
	fs := newFlags("simulate")
	state := fs.String("state", filepath.Join(StateDirDefault, "plant"), "directory of the PLCs' retentive memory")
	emit := fs.String("emit-config", "", "write the line config for these PLCs to this file")
	port := fs.Int("port", 0, "first station's OPC UA port; the others follow (0 = ephemeral)")
	speed := fs.Float64("speed", 1, "time compression: the takt is 60 s / speed")
	seed := fs.Int64("seed", 1, "seed")
	cars := fs.Int("cars", 0, "frame this many cars in all (0 = unlimited)")
	truth := fs.String("truth", "", "append what was really built to this JSONL file")
	poll := fs.Duration("poll", line.PollIntervalDefault, "poll interval written to the emitted config")
	badRate := fs.Float64("bad-value-rate", 0, "share of station results with joints in which one torque reads with bad quality (a sensor fault)")
	torque := fs.Bool("torque", false, "the wheel nuts (C04) and seat bolts (F01) are tightened by simulated Open Protocol controllers (listening after the PLCs' ports); the emitted config names them")
	torqueTruth := fs.String("torque-truth", "", "with --torque: append every tightening the controllers make to this JSONL file")
	manifest := fs.Bool("manifest", false, "W01 builds only the cars the MES downloads into its manifest slots (keiline tracker fills them from the build sequence)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log := newLogger(os.Stderr)
	plant, err := simulator.New(simulator.Config{Plant: PlantDefault, Line: LineDefault, Dir: *state, Seed: *seed, Speed: *speed,
		Cars: *cars, TruthPath: *truth, BasePort: *port, Logger: log, Manifest: *manifest, ManifestSlots: ManifestSlotsDefault, BadValueRate: *badRate,
		Torque: *torque, TorqueTruthPath: *torqueTruth})
	if err != nil {
		return err
	}
	if err := plant.Start(ctx); err != nil {
		return err
	}
	defer plant.Stop()
	lc, err := defaultLine(plant, *poll, *manifest)
	if err != nil {
		return err
	}
	if *emit != "" {
		b, err := lc.Marshal()
		if err != nil {
			return err
		}
		if err := os.WriteFile(*emit, b, 0o644); err != nil {
			return fmt.Errorf("emit config: %w", err)
		}
		log.Info("line config written", "file", *emit)
	}
	for _, s := range lc.Stations {
		log.Info("PLC listening", "station", s.ID, "endpoint", s.Endpoint)
	}
	for _, c := range plant.Controllers() {
		log.Info("tightening controller listening", "station", c.Station, "controller", c.ID, "address", c.Address)
	}
	select {
	case <-ctx.Done():
	case <-plant.Done():
		log.Info("every car has left the line")
		<-ctx.Done()
	}
	return nil
}

// runAgent runs station agents for a line config.
func runAgent(ctx context.Context, args []string) error {
	fs := newFlags("agent")
	config := fs.String("config", "line.yaml", "line config")
	natsURL := fs.String("nats", envOr("KEILINE_NATS", nats.DefaultURL), "NATS URL (env KEILINE_NATS)")
	only := fs.String("station", "", "comma-separated station ids (default: every station)")
	spoolPath := fs.String("spool", "agent-spool.db", "local spool for events NATS does not acknowledge in time (\"\" = none: stop the line instead)")
	spoolBytes := fs.Int64("spool-max-bytes", stations.SpoolMaxBytesDefault, "spool size bound; when full the line stops")
	spoolAge := fs.Duration("spool-max-age", stations.SpoolMaxAgeDefault, "spool age bound; when the oldest event is older the line stops")
	timeout := fs.Duration("publish-timeout", stations.PublishTimeoutDefault, "how long to wait for NATS before spooling")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log := newLogger(os.Stderr)
	lc, err := line.Load(*config)
	if err != nil {
		return err
	}
	// Passwords come from the environment or files the config names.
	if err := lc.ResolvePasswords(os.LookupEnv); err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL, nats.Name("keiline agent"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return fmt.Errorf("nats %s: %w", *natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var ids []string
	if *only != "" {
		ids = strings.Split(*only, ",")
	}
	var spool *stations.Spool
	if *spoolPath != "" {
		if spool, err = stations.OpenSpool(stations.SpoolConfig{Path: *spoolPath, MaxBytes: *spoolBytes, MaxAge: *spoolAge}); err != nil {
			return err
		}
		defer spool.Close()
	}
	agent, err := stations.NewAgent(stations.AgentConfig{Line: lc, Stations: ids, Publisher: streams.NewPublisher(js), Logger: log,
		Spool: spool, PublishTimeout: *timeout, Commands: nc})
	if err != nil {
		return err
	}
	return agent.Run(ctx)
}

// runTracker runs the tracker alone.
func runTracker(ctx context.Context, args []string) error {
	fs := newFlags("tracker")
	config := fs.String("config", "line.yaml", "line config")
	natsURL := fs.String("nats", envOr("KEILINE_NATS", nats.DefaultURL), "NATS URL (env KEILINE_NATS)")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	state := fs.String("state", "", "use the private PostgreSQL of this `up` state dir")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log := newLogger(os.Stderr)
	lc, err := line.Load(*config)
	if err != nil {
		return err
	}
	db, err := openDatabase(ctx, *dbURL, *state, log)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	// The tracker writes as the least-privileged writer role, which cannot
	// UPDATE or DELETE the event log (the migrations run as the URL's user).
	store, err := schema.OpenRole(ctx, db.URL, schema.RoleWriter)
	if err != nil {
		return err
	}
	defer store.Close()
	nc, err := nats.Connect(*natsURL, nats.Name("keiline tracker"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return fmt.Errorf("nats %s: %w", *natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: routeOf(lc), Store: store, JetStream: js, Logger: log, Broadcast: broadcastOf(lc)})
	if err != nil {
		return err
	}
	// Besides consuming events: the JIS broadcast, and the manifest
	// download when the line config names a framing station with slots.
	var dispatcher *pipeline.Dispatcher
	if lc.Sequencing != nil && lc.Sequencing.Station != "" {
		if lc.Products == nil {
			return fmt.Errorf("%s: sequencing needs a products section", *config)
		}
		if dispatcher, err = newDispatcher(lc, store, nc, log, nil); err != nil {
			return err
		}
	}
	wake, unsubscribe := tr.Subscribe()
	defer unsubscribe()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if lc.Broadcast != nil {
		b := &pipeline.Broadcaster{Plant: lc.Plant, Line: lc.Line, Store: store, JetStream: js, Wake: wake, Logger: log}
		wg.Go(func() { _ = b.Run(runCtx) })
	}
	if dispatcher != nil {
		wg.Go(func() { _ = dispatcher.Run(runCtx) })
	}
	return tr.Run(runCtx)
}

// runMigrate applies the migrations.
func runMigrate(ctx context.Context, args []string) error {
	fs := newFlags("migrate")
	dbURL := fs.String("db", os.Getenv("KEILINE_DB"), "PostgreSQL URL (env KEILINE_DB)")
	state := fs.String("state", StateDirDefault, "use the private PostgreSQL of this `up` state dir")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	db, err := openDatabase(ctx, *dbURL, *state, toolLogger())
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	start := time.Now()
	store, err := schema.Open(ctx, db.URL)
	if err != nil {
		return err
	}
	store.Close()
	fmt.Printf("migrations applied in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// runNATS runs a nats-server with JetStream as its own process: the same
// server `up` embeds, for running keiline's parts as separate processes.
func runNATS(ctx context.Context, args []string) error {
	fs := newFlags("nats")
	store := fs.String("store", filepath.Join(StateDirDefault, "nats"), "JetStream file store directory")
	host := fs.String("host", "127.0.0.1", "listen address")
	port := fs.Int("port", 4222, "client port")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log := newLogger(os.Stderr)
	b, err := broker.Start(broker.Config{StoreDir: *store, Host: *host, Port: *port, Logger: log})
	if err != nil {
		return err
	}
	defer b.Shutdown()
	log.Info("nats-server ready", "url", b.URL(), "store", *store)
	<-ctx.Done()
	return nil
}
