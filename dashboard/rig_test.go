package dashboard_test

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/internal/testplc"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/orders"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rigOptions shape a test line.
type rigOptions struct {
	speed float64 // simulator time compression
	cars  int     // cars to build, 0 for no simulator at all
	seed  int64
	poll  time.Duration // agent poll interval; default 50 ms
	// orders mounts the planner's orders API (as up does) on the
	// owner's store, with these products.
	orders *line.Products
	// drift plants a drift in the plant's torque; spc is the line
	// config's spc section; freeze, when set, runs on the database (its
	// URL) before the tracker starts.
	drift  *simulator.TorqueDrift
	spc    *line.SPC
	freeze func(t testing.TB, url string)
}

// rig is a whole line as `keiline up` runs it: the simulated PLCs (real
// OPC UA servers), an agent per station, an embedded nats-server with
// JetStream, the tracker, a PostgreSQL database and the dashboard.
type rig struct {
	plant   *simulator.Plant // nil without cars
	store   *schema.Store
	tracker *pipeline.Tracker
	pub     *streams.Publisher
	dash    *dashboard.Server
	cfg     dashboard.Config
	lc      *line.Config
}

// shiftStartBefore is how long before the rig starts its shift began.
const shiftStartBefore = time.Minute

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	quiet := slog.New(slog.DiscardHandler)
	r := &rig{}
	var err error
	url := pgtest.NewDB(t)
	if r.store, err = schema.Open(ctx, url); err != nil {
		t.Fatal(err)
	}
	if o.freeze != nil {
		o.freeze(t, url)
	}
	t.Cleanup(r.store.Close)
	// The dashboard reads as the read-only role, on a pool of its own, as in up.
	view, err := schema.OpenAs(ctx, url, schema.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(view.Close)
	b, err := broker.Start(broker.Config{StoreDir: filepath.Join(dir, "nats"), Logger: quiet})
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

	// The line: the simulator's stations, or (without cars) its layout only.
	r.lc = &line.Config{Version: line.ConfigVersion, Plant: "US1", Line: "L1", PollInterval: cmp.Or(o.poll, 50*time.Millisecond)}
	plant, err := simulator.New(simulator.Config{Plant: "US1", Line: "L1", Dir: filepath.Join(dir, "plant"), Seed: max(o.seed, 1),
		Speed: max(o.speed, 1), Cars: o.cars, Drift: o.drift, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if o.cars > 0 {
		if err := plant.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = plant.Stop() })
		r.plant = plant
	}
	poll := r.lc.PollInterval
	r.lc = testplc.SimLine(t, plant)
	if poll != 0 {
		r.lc.PollInterval = poll
	}
	route := pipeline.Route{Plant: "US1", Line: "L1"}
	for _, s := range r.lc.Stations {
		route.Stations = append(route.Stations, pipeline.RouteStation{ID: s.ID, Optional: s.Optional})
		r.cfg.Stations = append(r.cfg.Stations, dashboard.Station{ID: s.ID, Name: s.Name, Zone: s.Zone, Optional: s.Optional})
	}
	r.pub = streams.NewPublisher(js)
	if r.tracker, err = pipeline.NewTracker(pipeline.TrackerConfig{Route: route, Store: r.store, JetStream: js, SPC: o.spc, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if err := r.tracker.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 2)
	running := 1
	go func() { done <- r.tracker.Run(runCtx) }()
	if o.cars > 0 {
		if err := r.lc.Validate(); err != nil {
			t.Fatal(err)
		}
		agent, err := stations.NewAgent(stations.AgentConfig{Line: r.lc, Publisher: r.pub, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		running++
		go func() { done <- agent.Run(runCtx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range running {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	})

	wake, unsubscribe := r.tracker.Subscribe()
	t.Cleanup(unsubscribe)
	r.cfg.Addr, r.cfg.Store, r.cfg.Plant, r.cfg.Line = "127.0.0.1:0", view, "US1", "L1"
	r.cfg.Speed, r.cfg.Wake, r.cfg.Logger = max(o.speed, 1), wake, quiet
	r.cfg.ShiftStart = time.Now().Add(-shiftStartBefore)
	r.cfg.ShiftLength = 24 * time.Hour // plant time: the whole test is in one shift
	r.cfg.ShiftInterval = 300 * time.Millisecond
	if o.orders != nil {
		r.cfg.Orders = orders.Handler(r.store, o.orders, quiet)
	}
	if r.dash, err = dashboard.Start(ctx, r.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.dash.Shutdown(sctx); err != nil {
			t.Error(err)
		}
	})
	return r
}

// url is the dashboard's address of path.
func (r *rig) url(path string) string { return r.dash.URL() + path[1:] }

// get fetches path and returns the response with its body read.
func (r *rig) get(t testing.TB, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "" {
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// getJSON fetches path and decodes its JSON body into v; it fails t
// unless the status is want.
func (r *rig) getJSON(t testing.TB, path string, want int, v any) {
	t.Helper()
	res, b := r.get(t, path)
	if res.StatusCode != want {
		t.Fatalf("GET %s: %s %s, want %d", path, res.Status, b, want)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, b)
	}
}

// waitDone waits until the plant built its cars and the tracker recorded
// every event.
func (r *rig) waitDone(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	select {
	case <-r.plant.Done():
	case <-time.After(timeout):
		t.Fatalf("plant not done after %v: %+v", timeout, r.plant.Stats())
	}
	for {
		n, err := r.tracker.Pending(t.Context())
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tracker still has %d events pending (%v)", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
