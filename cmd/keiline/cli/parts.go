package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keiline/keiline/internal/pki"
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
	creds := fs.String("creds", os.Getenv("KEILINE_NATS_CREDS_FILE"), "the agent's NATS credentials `file` (keiline nats provision); without, connect without identity")
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
	nc, err := partConn(*natsURL, *creds, "agent", nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
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
		if spool, err = stations.OpenSpool(stations.SpoolConfig{Path: *spoolPath, MaxBytes: *spoolBytes, MaxAge: *spoolAge, Logger: log}); err != nil {
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
	creds := fs.String("creds", os.Getenv("KEILINE_NATS_CREDS_FILE"), "the tracker's NATS credentials `file` (keiline nats provision); with it, the streams must exist (keiline nats makes them)")
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
	nc, err := partConn(*natsURL, *creds, "tracker", nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: routeOf(lc), Identity: lc.Identity, Store: store, JetStream: js, Logger: log, Broadcast: broadcastOf(lc), Torque: torqueOf(lc), SPC: &lc.SPC,
		Consumer: broker.TrackerConsumer(lc.Plant, lc.Line), FilterSubject: broker.TrackerFilter(lc.Plant, lc.Line), StreamsReady: *creds != ""})
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
		b := &pipeline.Broadcaster{Plant: lc.Plant, Line: lc.Line, Store: store, JetStream: js, Wake: wake, Logger: log, StreamsReady: *creds != ""}
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
// With --secure DIR it serves the identities `keiline nats provision`
// made there (mutual TLS, an nkey and least-privilege permissions per
// part) and makes the streams as the admin; --write-config writes the same
// server as a plain nats-server config file.
func runNATS(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "provision" {
		return runNATSProvision(args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "revoke" {
		return runNATSRevoke(args[1:], os.Stdout)
	}
	fs := newFlags("nats")
	store := fs.String("store", filepath.Join(StateDirDefault, "nats"), "JetStream file store directory")
	host := fs.String("host", "127.0.0.1", "listen address")
	port := fs.Int("port", 4222, "client port (0: a free one)")
	secure := fs.String("secure", "", "serve the parts' identities in this `dir` (made by keiline nats provision)")
	writeConfig := fs.String("write-config", "", "write the server as a nats-server config `file` and exit (with --secure)")
	insecure := fs.Bool("insecure", false, "serve without identities: anyone who reaches the port may publish events (a test server on a loopback host only)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := natsOpenness(*secure, *insecure, *host); err != nil {
		return err
	}
	log := newLogger(os.Stderr)
	cfg := broker.Config{StoreDir: *store, Host: *host, Port: *port, Logger: log}
	if *port == 0 {
		cfg.Port = -1
	}
	if *secure != "" {
		prov, err := broker.LoadLine(*secure)
		if err != nil {
			return err
		}
		cfg.Security = &prov.Security
	}
	if *writeConfig != "" {
		if cfg.Security == nil {
			return errors.New("nats --write-config: give --secure DIR: a server without identities is not written")
		}
		if err := broker.WriteConfig(*writeConfig, cfg); err != nil {
			return err
		}
		fmt.Printf("nats-server config written to %s (run nats-server -c %s)\n", *writeConfig, *writeConfig)
		return nil
	}
	b, err := broker.Start(cfg)
	if err != nil {
		return err
	}
	defer b.Shutdown()
	creds := ""
	if *secure != "" {
		creds = *secure
	}
	admin, err := connectAs(b.URL(), creds, broker.AdminPart)
	if err != nil {
		return err
	}
	ajs, err := jetstream.New(admin)
	if err == nil {
		err = streams.Ensure(ctx, ajs, 1)
	}
	if err == nil {
		err = streams.EnsureBroadcast(ctx, ajs, 1)
	}
	admin.Close()
	if err != nil {
		return fmt.Errorf("nats: the streams: %w", err)
	}
	log.Info("nats-server ready", "url", b.URL(), "store", *store, "identities", *secure)
	if *secure == "" {
		<-ctx.Done()
		return nil
	}
	revalidate(ctx, b, log)
	return nil
}

// RevalidateEvery is how often keiline nats ends the open connections of
// parts whose certificates were revoked since they connected (a
// revocation refuses new connections at once).
const RevalidateEvery = 2 * time.Second

// revalidate ends revoked parts' connections until ctx ends.
func revalidate(ctx context.Context, b *broker.Broker, log *slog.Logger) {
	tick := time.NewTicker(RevalidateEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := b.Revalidate()
		if n > 0 {
			log.Warn("nats: closed the connections of revoked parts", "closed", n)
		}
		if err != nil {
			log.Error("nats: checking open connections against the revocation list", "err", err)
		}
	}
}

// runNATSRevoke revokes a part's identity for good (a stolen line PC, a
// retired agent): its certificate goes on the revocation list, so keiline
// nats refuses it from then on and ends its open connections within
// RevalidateEvery. The part gets a new identity (a new nkey and
// certificate: install its credentials file on the replacement PC and
// restart keiline nats, which reads the parts at start), or with --remove
// it leaves the line's parts. A plain nats-server needs its config
// written again (keiline nats --write-config) and a reload.
func runNATSRevoke(args []string, stdout io.Writer) error {
	fs := newFlags("nats revoke")
	dir := fs.String("dir", "nats-sec", "directory of the CA and the parts' identities")
	reason := fs.String("reason", "keyCompromise", "RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, affiliationChanged, privilegeWithdrawn, unspecified")
	remove := fs.Bool("remove", false, "remove the part from the line's parts instead of giving it a new identity")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("nats revoke: give one part name, e.g. keiline nats revoke --dir nats-sec agent-L1-0")
	}
	name := rest[0]
	r, err := pki.ParseReason(*reason)
	if err != nil {
		return fmt.Errorf("nats revoke: %w", err)
	}
	parts, err := broker.ReadLineParts(*dir)
	if err != nil {
		return err
	}
	k := slices.IndexFunc(parts, func(p broker.Part) bool { return p.Name == name })
	if k < 0 {
		return fmt.Errorf("nats revoke: %s has no part %s (parts: %s)", *dir, name, strings.Join(partNames(parts), ", "))
	}
	caDir := broker.CADir(*dir)
	c, err := pki.Revoke(caDir, name, r)
	if err != nil {
		return fmt.Errorf("nats revoke %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "revoked %s (serial %s, %s, %s)\n", name, c.Serial, c.Reason, c.RevokedAt.Format(time.RFC3339))
	if err := broker.ForgetPart(*dir, name); err != nil {
		return err
	}
	if *remove {
		parts = slices.Delete(parts, k, k+1)
	} else if _, err := pki.Issue(caDir, pki.Request{Name: name, Kind: pki.Client}); err != nil {
		return fmt.Errorf("nats revoke %s: a new certificate: %w", name, err)
	}
	if _, err := broker.ProvisionLine(*dir, parts); err != nil {
		return err
	}
	if *remove {
		fmt.Fprintf(stdout, "%s removed from the parts in %s; restart keiline nats --secure %s\n", name, *dir, *dir)
		return nil
	}
	fmt.Fprintf(stdout, "new identity of %s: %s (install it on the part's PC); restart keiline nats --secure %s to admit it\n", name, broker.CredsFile(*dir, name), *dir)
	return nil
}

// natsOpenness refuses a server open by default: without identities it
// runs only when asked with --insecure, and then only on loopback.
func natsOpenness(secure string, insecure bool, host string) error {
	switch {
	case secure != "" && insecure:
		return errors.New("nats: --secure and --insecure: give one")
	case secure != "":
		return nil
	case !insecure:
		return errors.New("nats: give --secure DIR (made by keiline nats provision --config line.yaml --dir DIR); --insecure serves without identities, for a test on this machine")
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("nats --insecure --host %s: a server without identities listens on loopback only", host)
	}
	return nil
}

// runNATSProvision makes the NATS identities of a line's parts.
func runNATSProvision(args []string, stdout io.Writer) error {
	fs := newFlags("nats provision")
	config := fs.String("config", "line.yaml", "line config whose parts get identities")
	dir := fs.String("dir", "nats-sec", "directory of the CA, the parts' keys and credentials")
	agents := fs.Int("agents", 1, "agents the line's stations are dealt to (round robin)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	lc, err := line.Load(*config)
	if err != nil {
		return err
	}
	parts := broker.LineParts(lc, *agents)
	if _, err := broker.ProvisionLine(*dir, parts); err != nil {
		return err
	}
	for _, p := range parts {
		fmt.Fprintf(stdout, "%-22s %-9s %s\n", p.Name, p.Role, broker.CredsFile(*dir, p.Name))
	}
	fmt.Fprintf(stdout, "serve them with keiline nats --secure %s; give each part its --creds file\n", *dir)
	return nil
}

// partConn connects a part to url with its credentials file (a NATS with
// identities), or without identity when creds is "".
func partConn(url, creds, name string, opts ...nats.Option) (*nats.Conn, error) {
	if creds == "" {
		nc, err := nats.Connect(url, append([]nats.Option{nats.Name("keiline " + name)}, opts...)...)
		if err != nil {
			return nil, fmt.Errorf("nats %s: %w", url, err)
		}
		return nc, nil
	}
	return connectCreds(url, creds, opts...)
}
