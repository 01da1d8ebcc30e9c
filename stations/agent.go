package stations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
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

// Agent polls one or more station PLCs and publishes their events.
type Agent struct {
	cfg       AgentConfig
	durable   *durable
	pollers   []*poller
	manifests []*manifestServer
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
	a := &Agent{cfg: cfg, durable: newDurable(cfg.Publisher, cfg.Spool, cfg.PublishTimeout, cfg.Logger.With("component", "spool"), cfg.Now)}
	for _, id := range ids {
		st, _ := cfg.Line.Station(id)
		p, err := newPoller(cfg, st, a.durable)
		if err != nil {
			return nil, err
		}
		a.pollers = append(a.pollers, p)
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
// connections and returns nil. Each station has its own goroutine, and the
// spool's forwarder one more; all have returned when Run does.
func (a *Agent) Run(ctx context.Context) error {
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
	wg.Wait()
	return nil
}

// poller runs the handshake with one station PLC.
type poller struct {
	cfg   AgentConfig
	pub   Publisher // durable: NATS or the spool
	st    *line.Station
	log   *slog.Logger
	tags  []string
	nodes []*ua.NodeID
	ack   *ua.NodeID

	plc           *PLC
	stateSent     bool
	lastState     uint32
	published     bool   // a cycle was published and not yet seen acknowledged
	lastPublished uint32 // its counter
	lastErr       string // last error logged, to log each kind of failure once
}

func newPoller(cfg AgentConfig, st *line.Station, pub Publisher) (*poller, error) {
	p := &poller{cfg: cfg, pub: pub, st: st, log: cfg.Logger.With("station", st.ID)}
	// CycleCounter and DataReady first; the poll reads CycleCounter again
	// at the end to detect a result block that changed while it was read.
	p.tags = append(p.tags, "CycleCounter", "DataReady")
	for _, t := range st.Tags() {
		if strings.HasPrefix(t, "Manifest") {
			continue // the manifest server's, not the handshake's
		}
		if t != "CycleCounter" && t != "DataReady" {
			p.tags = append(p.tags, t)
		}
	}
	for _, t := range p.tags {
		n, err := ua.ParseNodeID(st.Nodes[t])
		if err != nil {
			return nil, fmt.Errorf("station %s: tag %s: node id %q: %w", st.ID, t, st.Nodes[t], err)
		}
		p.nodes = append(p.nodes, n)
		if t == "AckCounter" {
			p.ack = n
		}
	}
	return p, nil
}

func (p *poller) run(ctx context.Context) {
	defer func() { _ = p.plc.Close(ctx) }()
	backoff := ReconnectMin
	tick := time.NewTicker(p.cfg.Line.PollInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		if p.plc == nil {
			plc, err := DialPLC(ctx, ConnectionOf(p.cfg.Line, p.st))
			if err != nil {
				metricReadErrors.WithLabelValues(p.st.ID).Inc()
				p.logOnce(ctx, "PLC unreachable, retrying", err)
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, ReconnectMax)
				continue
			}
			p.plc = plc
			backoff = ReconnectMin
			p.lastErr = ""
			p.log.Info("PLC connected", "endpoint", p.st.Endpoint, "max_nodes_per_read", plc.MaxNodesPerRead())
		}
		more, err := p.poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			switch {
			case errors.Is(err, ErrSpoolFull):
				p.logOnce(ctx, "SPOOL FULL: cycles are not acknowledged and the line will stop until NATS takes the spooled events", err)
			case errors.Is(err, errPublish):
				p.logOnce(ctx, "event not durable, PLC not acknowledged; retrying", err)
			default:
				metricReadErrors.WithLabelValues(p.st.ID).Inc()
				p.logOnce(ctx, "poll failed", err)
			}
			if !IsNodeError(err) && !errors.Is(err, errNotUsable) && !errors.Is(err, errPublish) {
				// The connection is suspect: drop it and dial a new one.
				_ = p.plc.Close(ctx)
				p.plc = nil
			}
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, ReconnectMax)
			continue
		}
		backoff = ReconnectMin
		if more {
			continue // another buffered result may be waiting
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// errPublish marks a poll whose event could not be made durable; the PLC
// connection is fine and the cycle stays unacknowledged.
var errPublish = errors.New("event not durable")

// errNotUsable marks a poll whose handshake tags could not be used; the
// connection itself is fine.
var errNotUsable = errors.New("handshake tags not usable")

// poll reads the station once, publishes a state change and a finished
// cycle if there is one, and acknowledges the cycle. It reports whether a
// cycle was handled (another may be waiting).
func (p *poller) poll(ctx context.Context) (bool, error) {
	// CycleCounter is read first and again last: a PLC fills the result
	// block before it moves CycleCounter, so equal counters mean the block
	// read in between belongs to that counter (a Read is not atomic, on a
	// real PLC nor when split by MaxNodesPerRead).
	nodes := append(p.nodes[:len(p.nodes):len(p.nodes)], p.nodes[0])
	dvs, err := p.plc.Read(ctx, nodes)
	if err != nil {
		return false, fmt.Errorf("station %s: %w", p.st.ID, err)
	}
	metricReads.WithLabelValues(p.st.ID).Inc()
	snap := decodeSnapshot(p.st, p.tags, dvs[:len(p.tags)])
	if len(snap.bad) > 0 {
		metricBadValues.WithLabelValues(p.st.ID).Add(float64(len(snap.bad)))
	}
	for _, tag := range []string{"CycleCounter", "DataReady", "StateCounter"} {
		if b, ok := snap.bad[tag]; ok {
			return false, fmt.Errorf("station %s: node %s (%s): %s: %w", p.st.ID, b.NodeID, tag, b.Reason, errNotUsable)
		}
	}
	now := p.cfg.Now()

	if sc := uint32(snap.int("StateCounter")); !p.stateSent || sc != p.lastState {
		ev, err := event.NewEvent(p.cfg.Line.Plant, p.cfg.Line.Line, p.st.ID, event.KindState, "", 0, uint64(sc), now, now, snap.state(uint64(sc)))
		if err != nil {
			return false, err
		}
		if err := p.pub.Publish(ctx, ev); err != nil {
			return false, fmt.Errorf("station %s: publish %s: %w: %w", p.st.ID, ev.ID, errPublish, err)
		}
		metricPublished.WithLabelValues(p.st.ID, event.KindState).Inc()
		p.stateSent, p.lastState = true, sc
	}

	if !snap.boolean("DataReady") {
		p.published = false
		return false, nil
	}
	counter := uint32(snap.int("CycleCounter"))
	if again, reason := convert(kInt, dvs[len(dvs)-1]); reason != "" || uint32(again.(int64)) != counter {
		return true, nil // the block changed while it was read: read it again
	}
	if !p.published || p.lastPublished != counter {
		c := snap.cycle(counter)
		occurred := now
		if snap.good("Result.EndTime") {
			occurred = msTime(snap.int("Result.EndTime"))
		}
		vin := snap.str("Result.Vin")
		ev, err := event.NewEvent(p.cfg.Line.Plant, p.cfg.Line.Line, p.st.ID, event.KindCycle, vin, 0, uint64(counter), occurred, now, c)
		if err != nil {
			return false, err
		}
		if err := ev.Validate(); err != nil {
			// The PLC gave a result the MES cannot accept (say an invalid
			// VIN). It is still published, so the tracker dead-letters it
			// with its reason and nothing is lost; the line does not stop.
			p.log.Warn("PLC result is not a valid event; publishing for the dead-letter subject", "event_id", ev.ID, "err", err)
		}
		if err := p.pub.Publish(ctx, ev); err != nil {
			return false, fmt.Errorf("station %s: publish %s: %w: %w", p.st.ID, ev.ID, errPublish, err)
		}
		metricPublished.WithLabelValues(p.st.ID, event.KindCycle).Inc()
		if len(c.Bad) > 0 {
			p.log.Warn("cycle has bad PLC values; they are reported, not used", "event_id", ev.ID, "vin", vin, "bad", c.Bad)
		}
		p.published, p.lastPublished = true, counter
	}
	if err := p.plc.Write(ctx, p.ack, counter); err != nil {
		return false, fmt.Errorf("station %s: acknowledge cycle %d: %w", p.st.ID, counter, err)
	}
	metricAcked.WithLabelValues(p.st.ID).Inc()
	return true, nil
}

func (p *poller) logOnce(ctx context.Context, msg string, err error) {
	if s := err.Error(); s != p.lastErr {
		p.lastErr = s
		level := slog.LevelWarn
		if errors.Is(err, ErrSpoolFull) {
			level = slog.LevelError
		}
		p.log.Log(ctx, level, msg, "endpoint", p.st.Endpoint, "err", err)
	}
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
