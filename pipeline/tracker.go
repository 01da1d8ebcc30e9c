package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/nats-io/nats.go"
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
)

var (
	metricEventsIn = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_tracker_events_total", Help: "Events consumed by the tracker, by outcome (recorded, duplicate, dead_letter).",
	}, []string{"outcome"})
	metricLag = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "keiline_tracker_lag_messages", Help: "Messages in the stream not yet delivered to the tracker.",
	})
	metricCommitErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "keiline_tracker_commit_errors_total", Help: "Failed record transactions (retried).",
	})
)

// Route is the line the tracker follows: its stations in order.
type Route struct {
	Plant, Line string
	Stations    []RouteStation
	// Gate is the quality gate station: a car's cycle there records a
	// gate decision, released only when the car has no open hold, else
	// blocked. Empty means the line has no gate.
	Gate string
}

// RouteStation is one station of a Route. An optional station (an off-line
// rework bay) may be skipped.
type RouteStation struct {
	ID       string
	Optional bool
}

func (r *Route) pos(station string) int {
	for i, s := range r.Stations {
		if s.ID == station {
			return i
		}
	}
	return -1
}

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
	// Broadcast, when set, is the line's JIS broadcast: a car passing its
	// station gets a broadcast per supplier, recorded with the event
	// (a Broadcaster publishes them).
	Broadcast *BroadcastConfig
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate checks the config and fills defaults.
func (c *TrackerConfig) Validate() error {
	if len(c.Route.Stations) == 0 || c.Route.Plant == "" || c.Route.Line == "" {
		return errors.New("tracker config: Route needs a plant, a line and stations")
	}
	if c.Route.Gate != "" && c.Route.pos(c.Route.Gate) < 0 {
		return fmt.Errorf("tracker config: Route.Gate %q is not a station of the route", c.Route.Gate)
	}
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
}

// TrackerStats counts what the tracker consumed since it started.
type TrackerStats struct {
	Recorded, Duplicates, DeadLettered int64
}

// Tracker consumes build events into the record.
type Tracker struct {
	cfg  TrackerConfig
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
	t := &Tracker{cfg: cfg, log: cfg.Logger.With("component", "tracker"), live: map[string]*StationLive{}}
	for _, s := range cfg.Route.Stations {
		t.live[s.ID] = &StationLive{Station: s.ID}
	}
	return t, nil
}

// Setup makes sure the streams and the durable consumer exist. Run calls it.
func (t *Tracker) Setup(ctx context.Context) error {
	if err := streams.Ensure(ctx, t.cfg.JetStream, 1); err != nil {
		return err
	}
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
// transaction and each message double-acked only after the commit. It
// returns nil when ctx is cancelled.
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
	msgs := make(chan jetstream.Msg, t.cfg.BatchSize)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					t.log.Error("consume stopped", "err", err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	})
	defer func() {
		it.Stop()
		for range msgs { // unblock the reader; undelivered messages are redelivered
		}
		wg.Wait()
	}()
	lagTick := time.NewTicker(time.Second)
	defer lagTick.Stop()
	var lagLogged time.Time
	// A batch holds up to BatchSize usable events; dead letters ride along
	// (up to 4×BatchSize messages in all), so a flood of bad messages does
	// not split the good ones into more transactions.
	var b batch
	for {
		b.items, b.dead = b.items[:0], b.dead[:0]
		select {
		case <-ctx.Done():
			return nil
		case now := <-lagTick.C:
			if info, err := t.cons.Info(ctx); err == nil {
				metricLag.Set(float64(info.NumPending))
				if info.NumPending > uint64(4*t.cfg.BatchSize) && now.Sub(lagLogged) >= LagLogInterval {
					t.log.Info("tracker is behind the stream; catching up", "lag_messages", info.NumPending)
					lagLogged = now
				}
			}
			continue
		case m, ok := <-msgs:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("tracker: message iterator closed")
			}
			t.classify(&b, m)
		}
	drain:
		for len(b.items) < t.cfg.BatchSize && len(b.items)+len(b.dead) < 4*t.cfg.BatchSize {
			select {
			case m, ok := <-msgs:
				if !ok {
					break drain
				}
				t.classify(&b, m)
			default:
				break drain
			}
		}
		if err := t.handle(ctx, b); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// Pending returns how many messages the tracker has not yet acknowledged:
// not delivered plus delivered and unacknowledged.
func (t *Tracker) Pending(ctx context.Context) (uint64, error) {
	if t.cons == nil {
		return 0, errors.New("tracker: not set up")
	}
	info, err := t.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("tracker: consumer info: %w", err)
	}
	return info.NumPending + uint64(info.NumAckPending), nil
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
	msg   jetstream.Msg
	ev    *event.Event
	cycle *event.Cycle
	state *event.State
}

// handle dead-letters the unusable messages of a batch while it commits
// the rest; it returns once both are done, with the first error.
func (t *Tracker) handle(ctx context.Context, b batch) error {
	if len(b.dead) == 0 {
		return t.commit(ctx, b.items)
	}
	// Neither waits for the other, and each message is acked only once its
	// own side is durable: a flood of bad messages costs the good events
	// little more than the messages' delivery.
	deadDone := make(chan error, 1)
	go func() { deadDone <- t.deadLetter(ctx, b.dead) }()
	err := t.commit(ctx, b.items)
	if deadErr := <-deadDone; err == nil {
		err = deadErr
	}
	return err
}

// commit commits usable events in one transaction (retrying until it
// succeeds or ctx ends) and acks them.
func (t *Tracker) commit(ctx context.Context, items []item) error {
	if len(items) == 0 {
		return nil
	}
	backoff := 100 * time.Millisecond
	var fresh []bool
	for {
		var err error
		fresh, err = t.record(ctx, items)
		if err == nil {
			break
		}
		metricCommitErrors.Inc()
		t.log.Error("record batch failed; retrying", "events", len(items), "first_event_id", items[0].ev.ID, "err", err)
		for _, it := range items {
			_ = it.msg.InProgress()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, RetryMax)
	}
	var rec, dup int64
	for i := range items {
		if fresh[i] {
			rec++
		} else {
			dup++
		}
	}
	// The stats and live state move with the commit, before the acks: a
	// message acknowledged is always already counted.
	defer func() {
		for _, it := range items {
			// A lost ack only means a redelivery, which is a no-op.
			if err := it.msg.DoubleAck(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("ack failed; the event will be redelivered and skipped", "event_id", it.ev.ID, "err", err)
			}
		}
	}()
	metricEventsIn.WithLabelValues("recorded").Add(float64(rec))
	metricEventsIn.WithLabelValues("duplicate").Add(float64(dup))
	t.mu.Lock()
	t.stats.Recorded += rec
	t.stats.Duplicates += dup
	for i, it := range items {
		if !fresh[i] {
			continue
		}
		l := t.live[it.ev.Station]
		switch {
		case it.cycle != nil && !it.ev.OccurredAt.Before(l.LastCycle):
			l.LastVIN, l.LastResult, l.LastCycle = it.ev.VIN, it.cycle.Result, it.ev.OccurredAt
		case it.state != nil:
			l.State, l.FaultCode, l.FaultText, l.Andon, l.VinPresent = it.state.State, it.state.FaultCode, it.state.FaultText, it.state.Andon, it.state.VinPresent
		}
	}
	for ch := range t.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	t.mu.Unlock()
	return nil
}

// check decodes a message and checks it belongs to this tracker's line. It
// returns the reason when the message cannot be used.
func (t *Tracker) check(m jetstream.Msg) (item, string) {
	ev, err := event.Decode(m.Data())
	if err != nil {
		return item{}, err.Error()
	}
	if want := event.Subject(ev.Plant, ev.Line, ev.Station, ev.Kind); m.Subject() != want {
		return item{}, fmt.Sprintf("event %s: subject %s does not match its envelope (want %s)", ev.ID, m.Subject(), want)
	}
	if ev.Plant != t.cfg.Route.Plant || ev.Line != t.cfg.Route.Line {
		return item{}, fmt.Sprintf("event %s: plant %s line %s is not this tracker's (%s %s)", ev.ID, ev.Plant, ev.Line, t.cfg.Route.Plant, t.cfg.Route.Line)
	}
	if t.cfg.Route.pos(ev.Station) < 0 {
		return item{}, fmt.Sprintf("event %s: unknown station %q", ev.ID, ev.Station)
	}
	it := item{msg: m, ev: ev}
	switch ev.Kind {
	case event.KindCycle:
		it.cycle, _ = ev.Cycle() // Decode checked it
	case event.KindState:
		it.state, _ = ev.State()
	}
	return it, ""
}

// batch is what the tracker handles at once: usable events and dead letters.
type batch struct {
	items []item
	dead  []deadLetter
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

// deadLetter is an unusable message and why.
type deadLetter struct {
	msg    jetstream.Msg
	reason string
}

// deadLetter moves unusable messages to the dead-letter stream with their
// reasons, then acks them so they do not block the stream. Each message
// keeps a dead letter of its own: its body, on keiline_dlq.<its subject>,
// with the reason and the subject in headers and a message id made from its
// stream sequence. The dead letters of a batch are stored as one atomic
// JetStream batch, which a server that syncs every write to disk syncs once
// rather than once a message: a flood of bad messages so costs little. Only
// once the stream has acknowledged them are the messages acked, with a plain
// ack: a redelivery only republishes a dead letter, which the dead-letter
// stream drops as a duplicate of its message id. A batch the stream refuses
// (a server without atomic batches, or a batch holding a dead letter already
// stored, as after a redelivery) is published again message by message.
func (t *Tracker) deadLetter(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	msgs := make([]*nats.Msg, len(dead))
	var firstSeq uint64
	for i, d := range dead {
		m := d.msg
		dl := &nats.Msg{Subject: event.DeadLetterPrefix + m.Subject(), Data: m.Data(), Header: nats.Header{}}
		dl.Header.Set(event.HeaderReason, d.reason)
		dl.Header.Set(event.HeaderSubject, m.Subject())
		if md, err := m.Metadata(); err == nil {
			// The stream sequence makes the dead letter's id deterministic.
			dl.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq.%d", md.Sequence.Stream))
			if i == 0 {
				firstSeq = md.Sequence.Stream
			}
		}
		msgs[i] = dl
	}
	for start := 0; start < len(msgs); start += DeadLetterBatchMax {
		chunk := msgs[start:min(start+DeadLetterBatchMax, len(msgs))]
		id := fmt.Sprintf("dlq.%d.%d.%d", firstSeq, start, time.Now().UnixNano())
		err := t.publishDeadBatch(ctx, id, chunk)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t.log.Warn("dead-letter batch refused; publishing its dead letters one by one", "count", len(chunk), "err", err)
		if err := t.publishDeadEach(ctx, chunk); err != nil {
			return err
		}
	}
	defer func() {
		for _, d := range dead {
			if err := d.msg.Ack(); err != nil && ctx.Err() == nil {
				t.log.Warn("ack of dead letter failed", "subject", d.msg.Subject(), "err", err)
			}
		}
	}()
	metricEventsIn.WithLabelValues("dead_letter").Add(float64(len(dead)))
	t.mu.Lock()
	t.stats.DeadLettered += int64(len(dead))
	now := time.Now()
	logIt := now.Sub(t.deadLogged) >= time.Second
	if logIt {
		t.deadLogged = now
	}
	t.mu.Unlock()
	if logIt {
		// At most one line a second: a flood must not flood the log too.
		t.log.Warn("messages dead-lettered", "count", len(dead), "subject", dead[0].msg.Subject(), "reason", dead[0].reason)
	}
	return nil
}

// publishDeadBatch publishes dead letters as the atomic batch id and
// returns once the dead-letter stream has stored all of them, or an error
// when it stored none.
func (t *Tracker) publishDeadBatch(ctx context.Context, id string, msgs []*nats.Msg) error {
	nc := t.cfg.JetStream.Conn()
	last := len(msgs) - 1
	for i, m := range msgs[:last] {
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		// Not acknowledged one by one: the stream checks the batch has
		// no gap when it commits.
		if err := nc.PublishMsg(m); err != nil {
			return fmt.Errorf("batch %s: %w", id, err)
		}
	}
	m := msgs[last]
	m.Header.Set(headerBatchID, id)
	m.Header.Set(headerBatchSeq, strconv.Itoa(last+1))
	m.Header.Set(headerBatchCommit, "1")
	rctx, cancel := context.WithTimeout(ctx, DeadLetterTimeout)
	defer cancel()
	resp, err := nc.RequestMsgWithContext(rctx, m)
	for _, m := range msgs { // a retry must not look like a batch
		m.Header.Del(headerBatchID)
		m.Header.Del(headerBatchSeq)
		m.Header.Del(headerBatchCommit)
	}
	if err != nil {
		return fmt.Errorf("batch %s: commit: %w", id, err)
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
		Batch string              `json:"batch"`
		Count int                 `json:"count"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("batch %s: commit: %w", id, err)
	}
	if ack.Error != nil {
		return fmt.Errorf("batch %s: commit: %w", id, ack.Error)
	}
	if ack.Batch != id || ack.Count != len(msgs) {
		// A server without atomic batches stores each message on its own
		// and acknowledges only the last.
		return fmt.Errorf("batch %s: commit acknowledged %d messages of batch %q, want %d", id, ack.Count, ack.Batch, len(msgs))
	}
	return nil
}

// publishDeadEach publishes dead letters one by one and returns once the
// dead-letter stream has stored each of them.
func (t *Tracker) publishDeadEach(ctx context.Context, msgs []*nats.Msg) error {
	rctx, cancel := context.WithTimeout(ctx, DeadLetterTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := t.cfg.JetStream.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("tracker: dead-letter %s: %w", m.Header.Get(event.HeaderSubject), err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("tracker: dead-letter %s: %w", msgs[i].Header.Get(event.HeaderSubject), err)
		case <-rctx.Done():
			return fmt.Errorf("tracker: dead-letter %s: %w", msgs[i].Header.Get(event.HeaderSubject), rctx.Err())
		}
	}
	return nil
}

// record commits a batch in one transaction and reports which events were new.
func (t *Tracker) record(ctx context.Context, items []item) ([]bool, error) {
	var fresh []bool
	err := t.cfg.Store.WithTx(ctx, func(tx *schema.Tx) error {
		rows := make([]schema.EventRow, len(items))
		for i, it := range items {
			ev := it.ev
			rows[i] = schema.EventRow{ID: ev.ID, Kind: ev.Kind, Plant: ev.Plant, Line: ev.Line, Station: ev.Station, VIN: ev.VIN,
				OccurredAt: ev.OccurredAt, RecordedAt: ev.RecordedAt, Payload: it.msg.Data()}
		}
		var err error
		fresh, err = tx.AppendEvents(ctx, rows)
		if err != nil {
			return err
		}
		return t.derive(ctx, tx, items, fresh)
	})
	return fresh, err
}

// derive writes the rows the new events of a batch derive: vehicles and
// their route, visits with parts, joints and tests, holds and station states.
func (t *Tracker) derive(ctx context.Context, tx *schema.Tx, items []item, fresh []bool) error {
	var vins []string
	for i, it := range items {
		if fresh[i] && it.cycle != nil && it.ev.VIN != "" {
			vins = append(vins, it.ev.VIN)
		}
	}
	vehicles, err := tx.Vehicles(ctx, vins)
	if err != nil {
		return err
	}
	skipped, err := tx.OpenRouteHolds(ctx, vins)
	if err != nil {
		return err
	}
	changed := map[string]bool{}
	var visits []schema.Visit
	var holds []schema.Hold
	var states []schema.StationState
	var broadcasts []event.Broadcast
	// closed names, per car whose holds an event of this batch closed, the
	// last such event: once every hold of the batch exists, a car the gate
	// had blocked and that has no open hold left is released.
	closed := map[string]*event.Event{}
	last := len(t.cfg.Route.Stations) - 1
	for i, it := range items {
		if !fresh[i] {
			continue
		}
		ev := it.ev
		if it.state != nil {
			s := it.state
			states = append(states, schema.StationState{EventID: ev.ID, Station: ev.Station, Counter: int64(s.Counter), State: s.State,
				FaultCode: s.FaultCode, FaultText: s.FaultText, Andon: s.Andon, VinPresent: s.VinPresent, ChangedAt: ev.OccurredAt})
			continue
		}
		c := it.cycle
		if ev.VIN == "" {
			t.log.Warn("cycle without a usable VIN: kept in the event log, not attributed to a car", "event_id", ev.ID, "station", ev.Station)
			continue
		}
		pos := t.cfg.Route.pos(ev.Station)
		v, known := vehicles[ev.VIN]
		if !known {
			v = schema.Vehicle{VIN: ev.VIN, FirstSeenAt: ev.OccurredAt, LastSeenAt: ev.OccurredAt, LastPos: -1}
		}
		if ev.OccurredAt.Before(v.FirstSeenAt) { // a late event: the car's span widens
			v.FirstSeenAt = ev.OccurredAt
		}
		if err := t.checkRoute(ctx, tx, v, known, pos, ev, skipped, &holds, closed); err != nil {
			return err
		}
		if pos > v.LastPos {
			v.LastPos, v.LastStation = pos, ev.Station
		}
		if ev.OccurredAt.After(v.LastSeenAt) {
			v.LastSeenAt = ev.OccurredAt
		}
		if v.Model == "" {
			v.Model, v.Variant, v.Colour = c.Model, c.Variant, c.Colour
		}
		if pos == last && v.ShippedAt.IsZero() {
			v.ShippedAt = ev.OccurredAt
		}
		vehicles[ev.VIN] = v
		changed[ev.VIN] = true
		visit := schema.Visit{EventID: ev.ID, VIN: ev.VIN, Station: ev.Station, Pos: pos, Counter: int64(c.Counter), Result: c.Result,
			StartedAt: c.StartedAt, FinishedAt: ev.OccurredAt}
		visit.Parts, visit.Joints, visit.Tests, visit.Bad = c.Parts, c.Joints, c.Tests, c.Bad
		visits = append(visits, visit)
		broadcasts = append(broadcasts, t.cfg.Broadcast.broadcasts(ev, c)...)
		switch {
		case c.Result == "NOK":
			holds = append(holds, schema.Hold{VIN: ev.VIN, Station: ev.Station, Kind: schema.HoldNOK, Reason: event.NOKReason(ev.Station, c), EventID: ev.ID, At: ev.OccurredAt})
		case c.Result == "":
			holds = append(holds, schema.Hold{VIN: ev.VIN, Station: ev.Station, Kind: schema.HoldBadData, Reason: "result unknown: bad PLC value", EventID: ev.ID, At: ev.OccurredAt})
		case t.cfg.Route.Stations[pos].Optional && c.Result == "OK":
			// The rework bay repaired the car: its NOK holds close. Holds
			// opened earlier in this batch must exist before they close.
			if err := tx.OpenHolds(ctx, holds); err != nil {
				return err
			}
			holds = holds[:0]
			if n, err := tx.CloseHolds(ctx, ev.VIN, []string{schema.HoldNOK}, ev.ID, ev.OccurredAt); err != nil {
				return err
			} else if n > 0 {
				closed[ev.VIN] = ev
			}
		}
		if ev.Station == t.cfg.Route.Gate {
			// The quality gate releases only a car with no open hold; the
			// holds this batch opened so far, its own NOK included, count.
			if err := tx.OpenHolds(ctx, holds); err != nil {
				return err
			}
			holds = holds[:0]
			d, err := tx.DecideGate(ctx, ev.VIN, ev.Station, ev.ID, ev.OccurredAt)
			if err != nil {
				return err
			}
			if !d.Released {
				t.log.Warn("car blocked at the quality gate", "vin", ev.VIN, "station", ev.Station, "event_id", ev.ID, "open_holds", d.OpenHolds)
			}
		}
	}
	vs := make([]schema.Vehicle, 0, len(changed))
	for vin := range changed {
		vs = append(vs, vehicles[vin])
	}
	if err := tx.SaveVehicles(ctx, vs); err != nil {
		return err
	}
	if err := tx.SaveVisits(ctx, visits); err != nil {
		return err
	}
	if err := tx.OpenHolds(ctx, holds); err != nil {
		return err
	}
	if t.cfg.Route.Gate != "" {
		for vin, ev := range closed {
			released, err := tx.ReleaseAfterHolds(ctx, vin, ev.ID, ev.OccurredAt)
			if err != nil {
				return err
			}
			if released {
				t.log.Info("car released: the holds that blocked it at the quality gate are closed", "vin", vin, "event_id", ev.ID)
			}
		}
	}
	if _, err := tx.AddBroadcasts(ctx, broadcasts); err != nil {
		return err
	}
	return tx.SaveStationStates(ctx, states)
}

// checkRoute follows a car arriving at pos. A car seen at a station after
// skipping mandatory ones gets a route hold per skipped station; when the
// skipped station's own event arrives later (events of different stations
// can be reordered, say by an agent's spool) it closes that hold. A cycle at
// a station the car had already passed, that is not such a late arrival, is
// out of order and holds the car; the car never moves back.
func (t *Tracker) checkRoute(ctx context.Context, tx *schema.Tx, v schema.Vehicle, known bool, pos int, ev *event.Event, skipped map[string]map[string]bool, holds *[]schema.Hold, closed map[string]*event.Event) error {
	st := t.cfg.Route.Stations
	if known && pos <= v.LastPos {
		if skipped[v.VIN][ev.Station] {
			// The hold must exist before it closes.
			if err := tx.OpenHolds(ctx, *holds); err != nil {
				return err
			}
			*holds = (*holds)[:0]
			delete(skipped[v.VIN], ev.Station)
			closed[v.VIN] = ev
			return tx.CloseStationHolds(ctx, v.VIN, schema.HoldRoute, ev.Station, ev.ID, ev.OccurredAt)
		}
		if st[pos].Optional && ev.OccurredAt.Before(v.LastSeenAt) {
			return nil // a rework visit reported late
		}
		*holds = append(*holds, schema.Hold{VIN: v.VIN, Station: ev.Station, Kind: schema.HoldRoute, EventID: ev.ID, At: ev.OccurredAt,
			Reason: fmt.Sprintf("out of order: cycle at %s after %s", ev.Station, v.LastStation)})
		return nil
	}
	for p := v.LastPos + 1; p < pos; p++ {
		if st[p].Optional {
			continue
		}
		reason := fmt.Sprintf("skipped %s: seen at %s after %s", st[p].ID, ev.Station, v.LastStation)
		if !known {
			reason = fmt.Sprintf("skipped %s: first seen at %s", st[p].ID, ev.Station)
		}
		*holds = append(*holds, schema.Hold{VIN: v.VIN, Station: st[p].ID, Kind: schema.HoldRoute, Reason: reason, EventID: ev.ID, At: ev.OccurredAt})
		if skipped[v.VIN] == nil {
			skipped[v.VIN] = map[string]bool{}
		}
		skipped[v.VIN][st[p].ID] = true
	}
	return nil
}
