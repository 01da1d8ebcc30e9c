package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/rules"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Tracker defaults.
const (
	// BatchSizeDefault is the most events committed in one transaction.
	BatchSizeDefault = 256
	// ConsumerDefault is the tracker's durable consumer name.
	ConsumerDefault = "tracker"
	// AckWaitDefault is how long JetStream waits for an ack before redelivering.
	AckWaitDefault = 30 * time.Second
	// RetryMax bounds the back-off of a failed commit.
	RetryMax = 5 * time.Second
	// LagLogInterval is how often a tracker that is behind says so.
	LagLogInterval = 10 * time.Second
	// SPCRefreshDefault is how often the tracker reads the frozen SPC
	// limits again, so that limits a quality engineer froze are checked
	// from then on.
	SPCRefreshDefault = 10 * time.Second
)

var (
	metricEventsIn = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_tracker_events_total", Help: "Events consumed by the tracker, by outcome (recorded, duplicate, conflict, dead_letter).",
	}, []string{"outcome"})
	metricLag = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "keiline_tracker_lag_messages", Help: "Messages in the stream not yet delivered to the tracker.",
	})
	metricCommitErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "keiline_tracker_commit_errors_total", Help: "Failed record transactions (retried).",
	})
)

// Route is the line the tracker follows: its stations in order and its
// quality gate (see rules.Route).
type Route = rules.Route

// RouteStation is one station of a Route (see rules.RouteStation).
type RouteStation = rules.RouteStation

// TorqueConfig is the line's tightening controllers, for the tracker (see
// rules.Torque).
type TorqueConfig = rules.Torque

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// Route is the line's stations in order. Required.
	Route Route
	// Store is the record. Required.
	Store *schema.Store
	// JetStream is the connection to the event stream. Required.
	JetStream jetstream.JetStream
	// Consumer is the durable consumer's name. Defaults to "tracker".
	Consumer string
	// FilterSubject defaults to keiline.> : every event, so that a
	// malformed message on any keiline subject is dead-lettered.
	FilterSubject string
	// BatchSize defaults to BatchSizeDefault.
	BatchSize int
	// StreamsReady says an admin identity has made the streams (a NATS
	// with identities and least-privilege permissions, where a line's
	// tracker may not change the plant's streams): Setup then only checks
	// they exist. Without it Setup creates or updates them.
	StreamsReady bool
	// Broadcast, when set, is the line's JIS broadcast: a car passing its
	// station gets a broadcast per supplier, recorded with the event
	// (a Broadcaster publishes them).
	Broadcast *BroadcastConfig
	// Torque, when set, is the line's tightening controllers: a car
	// leaving a station without an OK tightening of a class A joint of
	// its build is held (see rules.Torque).
	Torque *TorqueConfig
	// Identity is how the line identifies its cars: cycles are checked
	// and filed under it (event.IdentityPolicy). Defaults to
	// event.IdentityVIN.
	Identity event.IdentityPolicy
	// SPC is the line config's spc section: what a rule break does for
	// each characteristic (on_break). Nil: every break raises an alarm.
	// Every characteristic with frozen limits is checked either way.
	SPC *line.SPC
	// SPCRefresh is how often the frozen limits are read again. Defaults
	// to SPCRefreshDefault.
	SPCRefresh time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate checks the config and fills defaults.
func (c *TrackerConfig) Validate() error {
	if err := c.Route.Validate(); err != nil {
		return fmt.Errorf("tracker config: Route: %w", err)
	}
	p, err := event.ParseIdentityPolicy(string(c.Identity))
	if err != nil {
		return fmt.Errorf("tracker config: Identity: %w", err)
	}
	c.Identity = p
	if c.Store == nil || c.JetStream == nil {
		return errors.New("tracker config: Store and JetStream are required")
	}
	if c.Consumer == "" {
		c.Consumer = ConsumerDefault
	}
	if c.FilterSubject == "" {
		c.FilterSubject = event.SubjectAll
	}
	if c.BatchSize <= 0 {
		c.BatchSize = BatchSizeDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SPCRefresh <= 0 {
		c.SPCRefresh = SPCRefreshDefault
	}
	return nil
}

// StationLive is a station's live state as the tracker knows it.
type StationLive struct {
	Station    string    `json:"station"`
	State      string    `json:"state"`
	FaultCode  int32     `json:"fault_code"`
	FaultText  string    `json:"fault_text"`
	Andon      bool      `json:"andon"`
	VinPresent string    `json:"vin_present"`
	LastVIN    string    `json:"last_vin"`
	LastResult string    `json:"last_result"`
	LastCycle  time.Time `json:"last_cycle"`
	// AlarmCode and AlarmText are the station's current alarm (an
	// agent's, event kind alarm); empty when none.
	AlarmCode string `json:"alarm_code,omitempty"`
	AlarmText string `json:"alarm_text,omitempty"`
}

// TrackerStats counts what the tracker consumed since it started.
type TrackerStats struct {
	Recorded, Duplicates, DeadLettered int64
	// Pending counts the cycles left pending (a body number with no VIN
	// yet); Alarms the alarms raised.
	Pending, Alarms int64
	// Conflicts counts the events whose id the log held with a different
	// content: kept as conflicts (event.KindConflict), not as duplicates.
	Conflicts int64
	// SPCPoints counts the values checked against frozen SPC limits,
	// SPCBreaks the rule breaks recorded (event.KindSPC).
	SPCPoints, SPCBreaks int64
}

// Tracker consumes build events into the record.
type Tracker struct {
	cfg  TrackerConfig
	line rules.Line
	log  *slog.Logger
	cons jetstream.Consumer

	mu    sync.Mutex
	live  map[string]*StationLive
	stats TrackerStats
	// deadLogged is when a dead letter was last logged.
	deadLogged time.Time
	subs       map[chan struct{}]struct{}
}

// NewTracker checks cfg and returns a tracker; Run starts it.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tracker{cfg: cfg, line: rules.Line{Route: cfg.Route, Identity: cfg.Identity, Broadcast: cfg.Broadcast, Torque: cfg.Torque},
		log: cfg.Logger.With("component", "tracker"), live: map[string]*StationLive{}}
	for _, s := range cfg.Route.Stations {
		t.live[s.ID] = &StationLive{Station: s.ID}
	}
	return t, nil
}

// Setup makes sure the streams and the durable consumer exist, and records
// the line's identity policy for the audit. Run calls it.
func (t *Tracker) Setup(ctx context.Context) error {
	if t.cfg.StreamsReady {
		if err := streams.Check(ctx, t.cfg.JetStream, event.StreamName, event.DeadLetterStream); err != nil {
			return fmt.Errorf("tracker: %w", err)
		}
	} else if err := streams.Ensure(ctx, t.cfg.JetStream, 1); err != nil {
		return err
	}
	if err := t.cfg.Store.SetIdentityPolicy(ctx, string(t.cfg.Identity)); err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	settings := t.cfg.SPC
	mon, err := rules.LoadSPC(ctx, t.cfg.Store, func(kind, station, name, model, variant string) string {
		return settings.For(kind, station, name, model, variant).OnBreak
	})
	if err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	t.line.SPC = mon
	cons, err := t.cfg.JetStream.CreateOrUpdateConsumer(ctx, event.StreamName, jetstream.ConsumerConfig{
		Durable:       t.cfg.Consumer,
		Description:   "keiline tracker",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWaitDefault,
		MaxAckPending: 8 * t.cfg.BatchSize,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: t.cfg.FilterSubject,
		MaxDeliver:    -1,
	})
	if err != nil {
		return fmt.Errorf("tracker: consumer %s: %w", t.cfg.Consumer, err)
	}
	t.cons = cons
	return nil
}

// Run consumes events until ctx is done. Each batch is committed in one
// transaction and each message double-acked only after the commit. The
// stages overlap (see stages): while one batch commits, the next is
// gathered and decoded, the one before is acknowledged, and unusable
// messages are dead-lettered beside them. It returns nil when ctx is
// cancelled, or the first error that stops it.
func (t *Tracker) Run(ctx context.Context) error {
	if t.cons == nil {
		if err := t.Setup(ctx); err != nil {
			return err
		}
	}
	it, err := t.cons.Messages(jetstream.PullMaxMessages(2 * t.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("tracker: consume: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := t.start(ctx, cancel, it)
	defer st.stop()
	return t.gather(ctx, st)
}

// gather reads messages into a batch until the committer is free, then
// hands the batch over whole: up to BatchSize usable events, with dead
// letters riding along (up to 4×BatchSize messages in all), so that a
// burst of events, or a flood of bad messages, is not split into more
// transactions. It returns when ctx is done, with the error that stopped
// a stage, if any.
func (t *Tracker) gather(ctx context.Context, st *stages) error {
	lagTick := time.NewTicker(time.Second)
	defer lagTick.Stop()
	var lagLogged time.Time
	var b batch
	full := func() bool { return len(b.items) >= t.cfg.BatchSize || len(b.items)+len(b.dead) >= 4*t.cfg.BatchSize }
	for {
	drain:
		for !full() {
			select {
			case m, ok := <-st.msgs:
				if !ok {
					break drain
				}
				t.classify(&b, m)
			default:
				break drain
			}
		}
		in, out, dout := st.msgs, st.batches, st.deads
		if full() {
			in = nil
		}
		if len(b.items) == 0 {
			out = nil
		}
		if len(b.dead) == 0 {
			dout = nil
		}
		select {
		case <-ctx.Done():
			select {
			case err := <-st.failed:
				return err
			default:
				return nil
			}
		case now := <-lagTick.C:
			if info, err := t.cons.Info(ctx); err == nil {
				metricLag.Set(float64(info.NumPending))
				if info.NumPending > uint64(4*t.cfg.BatchSize) && now.Sub(lagLogged) >= LagLogInterval {
					t.log.Info("tracker is behind the stream; catching up", "lag_messages", info.NumPending)
					lagLogged = now
				}
			}
		case m, ok := <-in:
			if !ok {
				if ctx.Err() != nil {
					continue
				}
				return errors.New("tracker: message iterator closed")
			}
			t.classify(&b, m)
		case out <- b.items:
			b.items = nil
		case dout <- b.dead:
			b.dead = nil
		}
	}
}

// Pending returns how many messages the tracker has not yet acknowledged:
// not delivered plus delivered and unacknowledged. For a tracker of every
// event (FilterSubject keiline.>) a message stored before the call is
// always counted; with a narrower filter the server's count may miss one
// stored a moment before.
func (t *Tracker) Pending(ctx context.Context) (uint64, error) {
	if t.cons == nil {
		return 0, errors.New("tracker: not set up")
	}
	info, err := t.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("tracker: consumer info: %w", err)
	}
	pending := info.NumPending
	if t.cfg.FilterSubject == event.SubjectAll {
		// The server counts a consumer's pending messages when the
		// consumer has looked at the stream's news, a moment after a
		// publish: a message just stored can be missing from NumPending.
		// Every message of the stream is the tracker's here, so the
		// stream's last sequence says what was stored.
		s, err := t.cfg.JetStream.Stream(ctx, event.StreamName)
		if err != nil {
			return 0, fmt.Errorf("tracker: stream %s: %w", event.StreamName, err)
		}
		if last := s.CachedInfo().State.LastSeq; last > info.Delivered.Stream {
			pending = max(pending, last-info.Delivered.Stream)
		}
	}
	return pending + uint64(info.NumAckPending), nil
}

// Live returns each station's live state in line order.
func (t *Tracker) Live() []StationLive {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]StationLive, 0, len(t.cfg.Route.Stations))
	for _, s := range t.cfg.Route.Stations {
		out = append(out, *t.live[s.ID])
	}
	return out
}

// Subscribe returns a channel that receives a value after each batch the
// tracker commits, and a function that ends the subscription (safe to call
// twice). The channel holds one value and the tracker never waits on it: a
// subscriber that falls behind gets one value for many commits, and reads
// the record to learn what changed.
func (t *Tracker) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	t.mu.Lock()
	if t.subs == nil {
		t.subs = map[chan struct{}]struct{}{}
	}
	t.subs[ch] = struct{}{}
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		delete(t.subs, ch)
		t.mu.Unlock()
	}
}

// Stats returns what the tracker consumed since it started.
func (t *Tracker) Stats() TrackerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// item is one usable message of a batch.
type item struct {
	msg jetstream.Msg
	in  rules.Input
}

// batch is what the tracker handles at once: usable events and dead letters.
type batch struct {
	items []item
	dead  []deadLetter
}

// commit commits usable events in one transaction (retrying until it
// succeeds or ctx ends), moves the stats and live state with it, and
// returns the messages to acknowledge.
func (t *Tracker) commit(ctx context.Context, items []item) ([]jetstream.Msg, error) {
	if len(items) == 0 {
		return nil, nil
	}
	backoff := 100 * time.Millisecond
	var fresh []bool
	var res *rules.Result
	for {
		var err error
		fresh, res, err = t.record(ctx, items)
		if err == nil {
			break
		}
		metricCommitErrors.Inc()
		t.log.Error("record batch failed; retrying", "events", len(items), "first_event_id", items[0].in.Event.ID, "err", err)
		for _, it := range items {
			_ = it.msg.InProgress()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, RetryMax)
	}
	t.logNotes(res.Notes)
	var rec, dup, pending, alarms int64
	for _, p := range res.Pending {
		if p.ResolvedEventID == "" {
			pending++
		}
	}
	// The stats and live state move with the commit, before the acks: a
	// message acknowledged is always already counted.
	t.mu.Lock()
	for i, it := range items {
		if !fresh[i] {
			dup++
			continue
		}
		rec++
		ev, l := it.in.Event, t.live[it.in.Event.Station]
		switch {
		case it.in.Cycle != nil && !ev.OccurredAt.Before(l.LastCycle):
			l.LastVIN, l.LastResult, l.LastCycle = res.Keys[ev.ID], it.in.Cycle.Result, ev.OccurredAt
			if l.LastVIN == "" {
				l.LastVIN = ev.VIN
			}
		case it.in.State != nil:
			s := it.in.State
			l.State, l.FaultCode, l.FaultText, l.Andon, l.VinPresent = s.State, s.FaultCode, s.FaultText, s.Andon, s.VinPresent
		case it.in.Alarm != nil:
			a := it.in.Alarm
			l.AlarmCode, l.AlarmText = "", ""
			if a.Active {
				l.AlarmCode, l.AlarmText = a.Code, a.Text
				alarms++
			}
		}
	}
	for _, a := range res.Alarms {
		if a.Code == event.AlarmConflict || a.Code == event.AlarmSPC {
			if l := t.live[a.Station]; l != nil {
				l.AlarmCode, l.AlarmText = a.Code, a.Text
			}
			alarms++
		}
	}
	dup -= int64(res.Conflicts)
	t.stats.Recorded += rec
	t.stats.Duplicates += dup
	t.stats.Conflicts += int64(res.Conflicts)
	t.stats.Pending += pending
	t.stats.Alarms += alarms
	t.stats.SPCPoints += int64(res.SPCPoints)
	t.stats.SPCBreaks += int64(res.SPCBreaks)
	for ch := range t.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	t.mu.Unlock()
	metricEventsIn.WithLabelValues("recorded").Add(float64(rec))
	metricEventsIn.WithLabelValues("duplicate").Add(float64(dup))
	metricEventsIn.WithLabelValues("conflict").Add(float64(res.Conflicts))
	done := make([]jetstream.Msg, len(items))
	for i, it := range items {
		done[i] = it.msg
	}
	return done, nil
}

// ack double-acks committed messages. A lost ack only means a redelivery,
// which is a no-op.
func (t *Tracker) ack(ctx context.Context, msgs []jetstream.Msg) {
	for _, m := range msgs {
		if err := m.DoubleAck(ctx); err != nil && ctx.Err() == nil {
			t.log.Warn("ack failed; the event will be redelivered and skipped", "subject", m.Subject(), "err", err)
		}
	}
}

// logNotes logs what the rules said about a committed batch.
func (t *Tracker) logNotes(notes []rules.Note) {
	for _, n := range notes {
		args := []any{"event_id", n.EventID, "station", n.Station}
		if n.VIN != "" {
			args = append(args, "vin", n.VIN)
		}
		if n.Warn {
			t.log.Warn(n.Text, args...)
		} else {
			t.log.Info(n.Text, args...)
		}
	}
}

// check decodes a message under the line's identity policy and checks it
// belongs to this tracker's line. It returns the reason when the message
// cannot be used.
func (t *Tracker) check(m jetstream.Msg) (item, string) {
	ev, err := event.DecodeFor(m.Data(), t.cfg.Identity)
	if err != nil {
		return item{}, err.Error()
	}
	if want := event.Subject(ev.Plant, ev.Line, ev.Station, ev.Kind); m.Subject() != want {
		return item{}, fmt.Sprintf("event %s: subject %s does not match its envelope (want %s)", ev.ID, m.Subject(), want)
	}
	if ev.Plant != t.cfg.Route.Plant || ev.Line != t.cfg.Route.Line {
		return item{}, fmt.Sprintf("event %s: plant %s line %s is not this tracker's (%s %s)", ev.ID, ev.Plant, ev.Line, t.cfg.Route.Plant, t.cfg.Route.Line)
	}
	if t.cfg.Route.Pos(ev.Station) < 0 {
		return item{}, fmt.Sprintf("event %s: unknown station %q", ev.ID, ev.Station)
	}
	in, err := rules.Decode(ev)
	if err != nil {
		return item{}, err.Error()
	}
	return item{msg: m, in: in}, ""
}

// classify checks m and adds it to b as an event or a dead letter.
func (t *Tracker) classify(b *batch, m jetstream.Msg) {
	it, reason := t.check(m)
	if reason != "" {
		b.dead = append(b.dead, deadLetter{msg: m, reason: reason})
		return
	}
	b.items = append(b.items, it)
}

// record commits a batch in one transaction through the record's rules and
// reports which events were new, with what the rules derived.
func (t *Tracker) record(ctx context.Context, items []item) ([]bool, *rules.Result, error) {
	rows := make([]schema.EventRow, len(items))
	in := make([]rules.Input, len(items))
	for i, it := range items {
		rows[i], in[i] = rules.Row(it.in.Event, it.msg.Data()), it.in
	}
	if mon := t.line.SPC; mon != nil && time.Since(mon.Loaded()) >= t.cfg.SPCRefresh {
		if err := mon.Refresh(ctx, t.cfg.Store); err != nil {
			t.log.Warn("SPC limits not read again; checking with the ones read before", "err", err)
		}
	}
	var fresh []bool
	var res *rules.Result
	err := t.cfg.Store.WithTx(ctx, func(tx *schema.Tx) error {
		var err error
		fresh, res, err = rules.Record(ctx, tx, &t.line, rows, in)
		return err
	})
	if err == nil {
		t.line.SPC.Commit(res)
	}
	return fresh, res, err
}
