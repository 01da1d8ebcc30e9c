package stations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var metricAlarm = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Name: "keiline_agent_station_alarm", Help: "1 while the agent holds an alarm on a station (code refused: a cycle the record would not accept, left unacknowledged in the PLC).",
}, []string{"station", "code"})

// errRefused marks a poll whose cycle the agent would not acknowledge: the
// record would refuse it. The connection is fine; the cycle stays in the
// PLC and the station shows an alarm until the PLC or the config is fixed.
var errRefused = errors.New("cycle refused")

// poller runs the handshake with one station PLC.
type poller struct {
	cfg  AgentConfig
	pub  Publisher // durable: NATS or the spool
	st   *line.Station
	log  *slog.Logger
	plan *readPlan
	// reads is plan.reads with CycleCounter's read again at the end.
	reads []*ua.ReadValueID
	ack   *ua.NodeID

	plc     *PLC
	ackType uint32 // AckCounter's built-in data type (id.Int32, …); 0 = UInt32

	stateSent bool
	lastState uint64  // counter of the last state event
	lastOf    stateOf // what it said (change detection without StateCounter)
	published bool    // a cycle was published and not yet seen acknowledged
	lastPub   uint32  // its counter
	seen      uint32  // the cycle whose agent-clock time is seenAt
	seenAt    time.Time
	alarm     *event.Alarm // the alarm raised and not cleared, if any
	alarms    *alarmClock  // numbers the station's alarm events
	// onCar, when set, is told the car in the station (VinPresent) at
	// every poll that read it: the station's tightening controllers'
	// interlock (torque.go). known is false when the value was unreadable.
	onCar func(vin string, known bool)
	// beforeCycle, when set, is called before a new cycle of vin is
	// published and may wait (bounded): the station's tightening batches
	// made durable first (cycleorder.go).
	beforeCycle func(ctx context.Context, vin string)
	lastErr     string // last error logged, to log each kind of failure once
	stateClock  bool   // the station has no StateCounter
	// cycleEpoch and stateEpoch are the epochs of CycleCounter and
	// StateCounter (epoch.go); stateEpoch is nil with stateClock.
	cycleEpoch, stateEpoch *counterEpoch
}

func newPoller(cfg AgentConfig, st *line.Station, pub Publisher, epochs *epochStore) (*poller, error) {
	p := &poller{cfg: cfg, pub: pub, st: st, log: cfg.Logger.With("station", st.ID), alarms: &alarmClock{}}
	// CycleCounter and DataReady first; the poll reads CycleCounter again
	// at the end to detect a result block that changed while it was read.
	tags := []string{"CycleCounter", "DataReady"}
	for _, t := range st.Tags() {
		if strings.HasPrefix(t, "Manifest") {
			continue // the manifest server's, not the handshake's
		}
		if t != "CycleCounter" && t != "DataReady" {
			tags = append(tags, t)
		}
	}
	plan, err := newReadPlan(st, tags)
	if err != nil {
		return nil, err
	}
	p.plan = plan
	p.reads = append(plan.reads[:len(plan.reads):len(plan.reads)], plan.reads[plan.at["CycleCounter"]])
	node, _, ok := st.Nodes["AckCounter"].ReadID()
	if !ok {
		return nil, fmt.Errorf("station %s: tag AckCounter: no node", st.ID)
	}
	p.ack = node
	p.stateClock = !st.Nodes["StateCounter"].IsRead()
	if p.cycleEpoch, err = epochs.counter(st.ID, epochCycle, p.log); err != nil {
		return nil, err
	}
	if !p.stateClock {
		if p.stateEpoch, err = epochs.counter(st.ID, epochState, p.log); err != nil {
			return nil, err
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
			if err := p.connect(ctx); err != nil {
				metricReadErrors.WithLabelValues(p.st.ID).Inc()
				p.logOnce(ctx, "PLC unreachable, retrying", err)
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, ReconnectMax)
				continue
			}
			backoff = ReconnectMin
			p.lastErr = ""
			p.log.Info("PLC connected", "endpoint", p.st.Endpoint, "max_nodes_per_read", p.plc.MaxNodesPerRead())
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
			case errors.Is(err, errRefused):
				p.logOnce(ctx, "cycle NOT acknowledged: the record would refuse it; it stays in the PLC until the PLC data or the line config is fixed", err)
			default:
				metricReadErrors.WithLabelValues(p.st.ID).Inc()
				p.logOnce(ctx, "poll failed", err)
			}
			if !IsNodeError(err) && !errors.Is(err, errNotUsable) && !errors.Is(err, errPublish) && !errors.Is(err, errRefused) {
				// The connection is suspect: drop it and dial a new one.
				_ = p.plc.Close(ctx)
				p.plc = nil
			}
			wait := backoff
			if errors.Is(err, errRefused) {
				wait = p.cfg.Line.PollInterval // look again each poll: a fix shows at once
			} else {
				backoff = min(backoff*2, ReconnectMax)
			}
			if !sleep(ctx, wait) {
				return
			}
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

// connect dials the PLC and learns the data type of its AckCounter node,
// which the agent writes in that type.
func (p *poller) connect(ctx context.Context) error {
	plc, err := DialPLC(ctx, ConnectionOf(p.cfg.Line, p.st))
	if err != nil {
		return err
	}
	infos, err := readNodeInfo(ctx, plc, []*ua.NodeID{p.ack}, true)
	if err != nil {
		_ = plc.Close(ctx)
		return fmt.Errorf("station %s: read AckCounter's data type: %w", p.st.ID, readLimitHint(ctx, err, plc, p.cfg.Line, p.st))
	}
	p.ackType = 0
	if dt := infos[0].dataType; dt != nil {
		if bt, ok := builtinType(dt); ok {
			p.ackType = bt
		}
	}
	if p.ackType == 0 && infos[0].value != nil && infos[0].value.Value != nil {
		p.ackType = uint32(infos[0].value.Value.Type()) // a vendor type: the type its value has
	}
	p.plc = plc
	return nil
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
	dvs, err := p.plc.readValues(ctx, p.reads)
	if err != nil {
		return false, fmt.Errorf("station %s: %w", p.st.ID, readLimitHint(ctx, err, p.plc, p.cfg.Line, p.st))
	}
	metricReads.WithLabelValues(p.st.ID).Inc()
	snap := p.plan.decode(dvs[:len(p.plan.reads)])
	if len(snap.bad) > 0 {
		metricBadValues.WithLabelValues(p.st.ID).Add(float64(len(snap.bad)))
	}
	if p.onCar != nil && p.st.Nodes["VinPresent"].IsRead() {
		_, bad := snap.bad["VinPresent"]
		p.onCar(snap.str("VinPresent"), !bad)
	}
	for _, tag := range []string{"CycleCounter", "DataReady", "StateCounter"} {
		if b, ok := snap.bad[tag]; ok {
			return false, fmt.Errorf("station %s: %s: node %s: %s: %w", p.st.ID, p.tagAt(tag), b.NodeID, b.Reason, errNotUsable)
		}
	}
	now := p.cfg.Now()
	if err := p.publishState(ctx, snap, now); err != nil {
		return false, err
	}
	if !snap.boolean("DataReady") {
		p.published = false
		return false, p.clearAlarm(ctx, now)
	}
	counter, reason := snap.counter("CycleCounter")
	if reason != "" {
		return false, fmt.Errorf("station %s: %s: %s: %w", p.st.ID, p.tagAt("CycleCounter"), reason, errNotUsable)
	}
	if again, reason := convertTag("CycleCounter", &line.Tag{}, dvs[len(dvs)-1]); reason != "" || again.(int64) != int64(counter) {
		return true, nil // the block changed while it was read: read it again
	}
	epoch, err := p.cycleEpoch.of(uint64(counter))
	if err != nil {
		return false, fmt.Errorf("station %s: cycle %d: %w: %w", p.st.ID, counter, errPublish, err)
	}
	if !p.published || p.lastPub != counter {
		ev, err := p.cycleEvent(snap, epoch, counter, now)
		if err != nil {
			return false, err
		}
		if err := ev.ValidateFor(p.cfg.Line.Identity); err != nil {
			return false, p.refuse(ctx, snap, counter, err, now)
		}
		if p.beforeCycle != nil {
			p.beforeCycle(ctx, ev.VIN)
		}
		if err := p.pub.Publish(ctx, ev); err != nil {
			return false, fmt.Errorf("station %s: publish %s: %w: %w", p.st.ID, ev.ID, errPublish, err)
		}
		metricPublished.WithLabelValues(p.st.ID, event.KindCycle).Inc()
		if c, _ := ev.Cycle(); len(c.Bad) > 0 {
			p.log.Warn("cycle has bad PLC values; they are recorded as unknown, never used", "event_id", ev.ID, "vin", ev.VIN, "body", ev.Body, "bad", c.Bad)
		}
		p.published, p.lastPub = true, counter
		p.cycleEpoch.published(uint64(counter))
	}
	v, err := ackValue(counter, p.ackType)
	if err != nil {
		return false, fmt.Errorf("station %s: %s: %w", p.st.ID, p.tagAt("AckCounter"), err)
	}
	if err := p.plc.Write(ctx, p.ack, v); err != nil {
		return false, fmt.Errorf("station %s: acknowledge cycle %d: %s: %w", p.st.ID, counter, p.tagAt("AckCounter"), err)
	}
	metricAcked.WithLabelValues(p.st.ID).Inc()
	return true, p.clearAlarm(ctx, now)
}

// cycleEvent makes the event of the cycle shown. Without PLC cycle times
// its time is the agent's clock when it first read the cycle, kept for
// the cycle's republishing (the same id keeps the same payload).
func (p *poller) cycleEvent(snap *snapshot, epoch, counter uint32, now time.Time) (*event.Event, error) {
	if !snap.good("Result.EndTime") && (p.seenAt.IsZero() || p.seen != counter) {
		p.seen, p.seenAt = counter, now
	}
	return makeCycleEvent(p.cfg.Line, p.st, snap, epoch, counter, p.seenAt, now)
}

// makeCycleEvent is the event of cycle counter of epoch as snap shows it.
// Without a PLC end time the cycle happened at seen by the agent's clock.
func makeCycleEvent(lc *line.Config, st *line.Station, snap *snapshot, epoch, counter uint32, seen, now time.Time) (*event.Event, error) {
	c := snap.cycle(counter)
	c.Epoch = epoch
	occurred := seen
	if snap.good("Result.EndTime") {
		occurred = msTime(snap.int("Result.EndTime"))
	} else {
		c.Clock = event.ClockAgent
	}
	ev, err := event.NewEvent(lc.Plant, lc.Line, st.ID, event.KindCycle, snap.str("Result.Vin"), epoch, uint64(counter), occurred, now, c)
	if err != nil {
		return nil, err
	}
	ev.Body = snap.str("Result.BodyNo")
	return ev, nil
}

// publishState publishes a state event when the station's state changed:
// by the PLC's StateCounter, or without one by value, numbered by the
// agent's clock (no counter to reset: no epoch).
func (p *poller) publishState(ctx context.Context, snap *snapshot, now time.Time) error {
	st := snap.state()
	var counter uint64
	var epoch uint32
	clock := ""
	if p.stateClock {
		if p.stateSent && st == p.lastOf {
			return nil
		}
		counter, clock = max(uint64(now.UnixMilli()), p.lastState+1), event.ClockAgent
	} else {
		sc, reason := snap.counter("StateCounter")
		if reason != "" {
			return fmt.Errorf("station %s: %s: %s: %w", p.st.ID, p.tagAt("StateCounter"), reason, errNotUsable)
		}
		if p.stateSent && uint64(sc) == p.lastState {
			return nil
		}
		counter = uint64(sc)
		if !p.stateSent && p.stateEpoch.isLast(counter) {
			// Published before the agent restarted (the spool says so):
			// sent again now it would differ (occurred_at) and conflict.
			p.stateSent, p.lastState, p.lastOf = true, counter, st
			return nil
		}
		var err error
		if epoch, err = p.stateEpoch.of(counter); err != nil {
			return fmt.Errorf("station %s: state %d: %w: %w", p.st.ID, counter, errPublish, err)
		}
	}
	data := st.event(counter, clock)
	data.Epoch = epoch
	ev, err := event.NewEvent(p.cfg.Line.Plant, p.cfg.Line.Line, p.st.ID, event.KindState, "", epoch, counter, now, now, data)
	if err != nil {
		return err
	}
	if err := p.pub.Publish(ctx, ev); err != nil {
		return fmt.Errorf("station %s: publish %s: %w: %w", p.st.ID, ev.ID, errPublish, err)
	}
	metricPublished.WithLabelValues(p.st.ID, event.KindState).Inc()
	p.stateSent, p.lastState, p.lastOf = true, counter, st
	if p.stateEpoch != nil {
		p.stateEpoch.published(counter)
	}
	return nil
}

// refuse raises the alarm for a cycle the record would not accept. The
// cycle is not acknowledged.
func (p *poller) refuse(ctx context.Context, snap *snapshot, counter uint32, why error, now time.Time) error {
	text := refusalText(p.cfg.Line, p.st, snap, counter, why)
	a := &event.Alarm{Active: true, Code: event.AlarmRefused, Text: text, Cycle: counter}
	if err := p.raise(ctx, a, now); err != nil {
		return err
	}
	return fmt.Errorf("station %s: %s: %w", p.st.ID, text, errRefused)
}

// refusalText says why the record would refuse cycle counter, with the
// identity tags' values, nodes and config lines, and what fixes it.
func refusalText(lc *line.Config, st *line.Station, snap *snapshot, counter uint32, why error) string {
	reason := strings.TrimPrefix(why.Error(), event.ErrMalformed.Error()+": ")
	if i := strings.Index(reason, ": station "+st.ID+": "); i >= 0 {
		reason = reason[i+len(": station "+st.ID+": "):]
	}
	var ids []string
	for _, tag := range []string{"Result.Vin", "Result.BodyNo"} {
		t := st.Nodes[tag]
		if t.Absent {
			continue
		}
		val := fmt.Sprintf("%q", snap.str(tag))
		if code, ok := snap.codes[tag]; ok {
			val += " (PLC value " + code + ")"
		}
		if b, ok := snap.bad[tag]; ok {
			val = "unreadable (" + b.Reason + ")"
		}
		ids = append(ids, fmt.Sprintf("%s = %s (node %s%s)", tag, val, t.Where(), lineOf(lc, st, tag)))
	}
	return fmt.Sprintf("cycle %d not acknowledged: %s; %s; fix the PLC's data or the line config (identity: %s)",
		counter, reason, strings.Join(ids, ", "), lc.Identity)
}

// raise publishes alarm a unless it is the one already raised.
func (p *poller) raise(ctx context.Context, a *event.Alarm, now time.Time) error {
	if p.alarm != nil && *p.alarm == *a {
		return nil
	}
	a.Counter = p.alarms.next(now)
	ev, err := event.NewEvent(p.cfg.Line.Plant, p.cfg.Line.Line, p.st.ID, event.KindAlarm, "", 0, a.Counter, now, now, a)
	if err != nil {
		return err
	}
	if err := p.pub.Publish(ctx, ev); err != nil {
		return fmt.Errorf("station %s: publish %s: %w: %w", p.st.ID, ev.ID, errPublish, err)
	}
	metricPublished.WithLabelValues(p.st.ID, event.KindAlarm).Inc()
	if a.Active {
		metricAlarm.WithLabelValues(p.st.ID, a.Code).Set(1)
		c := *a
		c.Counter = 0
		p.alarm = &c
	} else {
		metricAlarm.WithLabelValues(p.st.ID, a.Code).Set(0)
		p.alarm = nil
	}
	return nil
}

// clearAlarm clears the raised alarm, if any: the refused cycle was
// acknowledged after a fix, or the PLC no longer shows it.
func (p *poller) clearAlarm(ctx context.Context, now time.Time) error {
	if p.alarm == nil {
		return nil
	}
	a := &event.Alarm{Active: false, Code: p.alarm.Code, Cycle: p.alarm.Cycle, Text: "cleared: " + p.alarm.Text}
	if err := p.raise(ctx, a, now); err != nil {
		return err
	}
	p.log.Info("alarm cleared", "code", a.Code, "cycle", a.Cycle)
	return nil
}

// tagAt names a tag for messages: "tag AckCounter at line.yaml:57".
func (p *poller) tagAt(tag string) string {
	return "tag " + tag + lineOf(p.cfg.Line, p.st, tag)
}

// lineOf is " at line.yaml:57" for a tag written in the config file, or "".
func lineOf(lc *line.Config, st *line.Station, tag string) string {
	n := st.Nodes[tag].Line()
	if n == 0 {
		n = st.Line() // a tag of the node pattern: the station's line
	}
	if n == 0 || lc.Path() == "" {
		return ""
	}
	return fmt.Sprintf(" at %s:%d", lc.Path(), n)
}

// ackValue is counter as a value of the AckCounter node's data type, or
// an error when it does not fit (an Int16 counter past 32767).
func ackValue(counter uint32, dataType uint32) (any, error) {
	fits := func(lo, hi int64) error {
		if int64(counter) < lo || int64(counter) > hi {
			return fmt.Errorf("cycle counter %d does not fit the AckCounter node's data type (%d..%d)", counter, lo, hi)
		}
		return nil
	}
	switch dataType {
	case id.SByte:
		return int8(counter), fits(math.MinInt8, math.MaxInt8)
	case id.Byte:
		return uint8(counter), fits(0, math.MaxUint8)
	case id.Int16:
		return int16(counter), fits(math.MinInt16, math.MaxInt16)
	case id.UInt16:
		return uint16(counter), fits(0, math.MaxUint16)
	case id.Int32:
		return int32(counter), fits(math.MinInt32, math.MaxInt32)
	case id.Int64:
		return int64(counter), nil
	case id.UInt64:
		return uint64(counter), nil
	}
	return counter, nil // UInt32, and what keiline does not know
}

// alarmClock numbers a station's alarm events: the agent's clock in Unix
// milliseconds, always above the last number given, so the poller's and
// the tightening controllers' alarms of one station never share an id.
type alarmClock struct {
	mu   sync.Mutex
	last uint64
}

func (c *alarmClock) next(now time.Time) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(uint64(now.UnixMilli()), c.last+1)
	return c.last
}

func (p *poller) logOnce(ctx context.Context, msg string, err error) {
	if s := err.Error(); s != p.lastErr {
		p.lastErr = s
		level := slog.LevelWarn
		if errors.Is(err, ErrSpoolFull) || errors.Is(err, errRefused) {
			level = slog.LevelError
		}
		p.log.Log(ctx, level, msg, "endpoint", p.st.Endpoint, "err", err)
	}
}
