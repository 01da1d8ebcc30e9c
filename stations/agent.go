package stations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reconnect back-off bounds.
const (
	ReconnectMin = 100 * time.Millisecond
	ReconnectMax = 5 * time.Second
)

var (
	metricReads = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_agent_plc_reads_total", Help: "Batched tag reads of a station's PLC.",
	}, []string{"station"})
	metricReadErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_agent_plc_errors_total", Help: "Failed connects, reads and writes of a station's PLC.",
	}, []string{"station"})
	metricPublished = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_agent_events_published_total", Help: "Events made durable, by station and kind.",
	}, []string{"station", "kind"})
	metricAcked = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_agent_cycles_acked_total", Help: "Cycles acknowledged to the PLC.",
	}, []string{"station"})
	metricBadValues = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_agent_bad_values_total", Help: "PLC values with bad quality or the wrong type.",
	}, []string{"station"})
)

// Publisher makes an event durable. Publish returns nil only once the event
// is stored (a JetStream publish ack); the agent acknowledges the PLC after.
type Publisher interface {
	Publish(ctx context.Context, ev *event.Event) error
}

// AgentConfig configures an Agent.
type AgentConfig struct {
	// Line is the validated line config. Required.
	Line *line.Config
	// Stations limits the agent to these station ids. Defaults to all.
	Stations []string
	// Publisher makes events durable. Required.
	Publisher Publisher
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock for recorded_at. Defaults to time.Now.
	Now func() time.Time
	// Spool, when set, keeps events NATS does not acknowledge within
	// PublishTimeout, and the agent forwards them once NATS is back.
	// Without it the agent retries NATS and does not acknowledge the PLC.
	// Stations with tightening controllers need it: it keeps each
	// controller's last durable tightening id.
	Spool *Spool
	// PublishTimeout defaults to PublishTimeoutDefault.
	PublishTimeout time.Duration
	// Commands, when set, is the NATS connection on which the agent
	// carries out the tracker's requests to its PLCs: the framing
	// station's manifest download (stations with manifest slots).
	Commands *nats.Conn
}

// Validate checks the config and fills its defaults.
func (c *AgentConfig) Validate() error {
	if c.Line == nil {
		return errors.New("agent config: Line is required")
	}
	if c.Publisher == nil {
		return errors.New("agent config: Publisher is required")
	}
	for _, id := range c.Stations {
		if _, ok := c.Line.Station(id); !ok {
			return fmt.Errorf("agent config: station %q is not in the line config", id)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = PublishTimeoutDefault
	}
	return nil
}

// Agent polls one or more station PLCs and publishes their events, and
// records the results of the stations' tightening controllers
// (torque.go).
type Agent struct {
	cfg       AgentConfig
	durable   *durable
	epochs    *epochStore
	pollers   []*poller
	manifests []*manifestServer
	torque    []*torqueStation
}

// NewAgent checks cfg and prepares a poller per station. It fails if a
// station's node id does not parse, naming the station and the tag.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ids := cfg.Stations
	if len(ids) == 0 {
		for _, st := range cfg.Line.Stations {
			ids = append(ids, st.ID)
		}
	}
	a := &Agent{cfg: cfg, durable: newDurable(cfg.Publisher, cfg.Spool, cfg.PublishTimeout, cfg.Logger.With("component", "spool"), cfg.Now),
		epochs: newEpochStore(cfg.Spool, cfg.Logger.With("component", "epochs"))}
	for _, id := range ids {
		st, _ := cfg.Line.Station(id)
		p, err := newPoller(cfg, st, a.durable, a.epochs)
		if err != nil {
			return nil, err
		}
		a.pollers = append(a.pollers, p)
		if len(st.Controllers) > 0 {
			ts, err := newTorqueStation(cfg, st, a.durable, p.alarms)
			if err != nil {
				return nil, err
			}
			p.onCar = ts.carSeen
			p.beforeCycle = func(ctx context.Context, vin string) {
				if late := ts.batchesDurable(ctx, cfg.Line, vin); len(late) > 0 && ctx.Err() == nil {
					p.log.Warn("cycle published before its tightening batches are durable: the tracker holds the car until they arrive",
						"vin", vin, "controllers", late, "waited", TighteningWaitMax)
				}
			}
			a.torque = append(a.torque, ts)
		}
		if st.Manifest > 0 && cfg.Commands != nil {
			m, err := newManifestServer(cfg.Line, st, cfg.Commands, cfg.Logger)
			if err != nil {
				return nil, err
			}
			a.manifests = append(a.manifests, m)
		}
	}
	return a, nil
}

// Run polls every station until ctx is done, then closes the PLC
// connections and returns nil. Each station has its own goroutine, the
// spool's forwarder and the counter epochs' writer one more each, and
// each tightening controller three (its link, its results and its
// interlock); all have returned when Run does. The epochs' writer stops
// last, once it wrote what the stations' pollers left it.
func (a *Agent) Run(ctx context.Context) error {
	wctx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		a.epochs.run(wctx)
	}()
	defer func() {
		stopWriter()
		<-writer
	}()
	var wg sync.WaitGroup
	if a.cfg.Spool != nil {
		wg.Go(func() { a.durable.forward(ctx) })
	}
	for _, p := range a.pollers {
		wg.Go(func() { p.run(ctx) })
	}
	for _, m := range a.manifests {
		wg.Go(func() { m.run(ctx) })
	}
	for _, ts := range a.torque {
		for _, c := range ts.ctrls {
			wg.Go(func() { c.run(ctx) })
		}
	}
	wg.Wait()
	return nil
}

// sleep waits d or until ctx is done; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
