package stations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/stations/openprotocol"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The agent's tightening side (docs/torque.md): one Open Protocol client
// per controller of its stations. A result reads straight down like a PLC
// cycle: result → tightening event → durable (JetStream or the spool) →
// last durable id kept → acknowledged (MID 0062). The interlock
// (interlock.go) follows the car the station's PLC shows in VinPresent.

// Defaults of the tightening side.
const (
	// GapGrace is how long a hole in a controller's tightening ids may
	// stay open (results pushed after it, the ids before missing) before
	// the agent fetches the missing ones itself (MID 0064). The client
	// fetches them after every connect already; this covers the rest.
	GapGrace = 2 * time.Second
	// ControllerDownAlarmAfter is how long a controller's link may be down
	// before the agent raises the controller_down alarm (at once for error
	// 96, another client holds the controller).
	ControllerDownAlarmAfter = 2 * time.Second
)

var (
	metricTightenings = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_agent_tightenings_total", Help: "Tightening results made durable, by station and controller.",
	}, []string{"station", "controller"})
	metricTighteningAlarms = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_agent_tightening_alarms_total", Help: "Alarms raised about a tightening controller, by code.",
	}, []string{"station", "controller", "code"})
	metricToolEnabled = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keiline_agent_tool_enabled", Help: "1 while the agent has the controller's tool enabled (the interlock), 0 while disabled.",
	}, []string{"station", "controller"})
	metricControllerConnected = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keiline_agent_controller_connected", Help: "1 while the agent's link to the tightening controller is up.",
	}, []string{"station", "controller"})
	metricLastDurable = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "keiline_agent_tightening_last_durable_id", Help: "Id of the tightening up to which every one of the controller is durable.",
	}, []string{"station", "controller"})
	metricTighteningLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "keiline_agent_tightening_durable_seconds", Help: "From a result's arrival to its acknowledgement (MID 0062), after it was made durable.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"station", "controller"})
)

// torqueStation is the tightening side of one station: its controllers and
// the car its PLC shows.
type torqueStation struct {
	st    *line.Station
	ctrls []*controllerAgent

	mu    sync.Mutex
	seen  bool
	vin   string
	known bool
}

func newTorqueStation(cfg AgentConfig, st *line.Station, pub Publisher, alarms *alarmClock) (*torqueStation, error) {
	if cfg.Spool == nil {
		return nil, fmt.Errorf("station %s: tightening controllers need the agent's spool: it keeps the last durable tightening of each controller, so results made while the agent is away are fetched once", st.ID)
	}
	ts := &torqueStation{st: st}
	log := cfg.Logger.With("station", st.ID)
	if !st.Nodes["VinPresent"].IsRead() {
		log.Warn("no interlock from the PLC: the station maps no VinPresent tag, so the agent does not download VINs, select parameter sets or enable and disable the tools; it records their results",
			"controllers", len(st.Controllers))
	}
	for i := range st.Controllers {
		c, err := newControllerAgent(cfg, st, &st.Controllers[i], pub, alarms)
		if err != nil {
			return nil, err
		}
		ts.ctrls = append(ts.ctrls, c)
	}
	return ts, nil
}

// carSeen is the poller's news of the car in the station: vin ("" for
// none), known false when VinPresent could not be read (no car, for the
// interlock).
func (ts *torqueStation) carSeen(vin string, known bool) {
	ts.mu.Lock()
	same := ts.seen && ts.vin == vin && ts.known == known
	ts.seen, ts.vin, ts.known = true, vin, known
	ts.mu.Unlock()
	if same {
		return
	}
	for _, c := range ts.ctrls {
		c.carChanged(vin, known)
	}
}

// controllerAgent runs one controller: its client, its results and its
// interlock.
type controllerAgent struct {
	lc     *line.Config
	st     *line.Station
	ct     *line.Controller
	client *openprotocol.Client
	pub    Publisher
	spool  *Spool
	key    string // the spool's key of the controller's last durable id
	log    *slog.Logger
	alarms *alarmClock
	now    func() time.Time
	wake   chan struct{} // the interlock has something to look at
	// fetched carries results the agent fetched itself (fillGap).
	fetched chan []openprotocol.Result
	// noInterlock: the station maps no VinPresent, so the agent leaves
	// the tool as the controller has it.
	noInterlock bool

	mu        sync.Mutex
	car       carView
	batchDone string   // VIN of the car whose batch is complete
	last      uint32   // every tightening up to this id is durable
	above     []uint32 // durable ids above last, sorted
	windows   []window // where the agent had the tool disabled, by id
	raised    map[string]*event.Alarm
	// lastBatchVIN is the car of the newest complete batch made durable;
	// durableNews is closed at the next durable result (cycleorder.go).
	lastBatchVIN string
	durableNews  chan struct{}

	mTightenings prometheus.Counter
	mEnabled     prometheus.Gauge
	mConnected   prometheus.Gauge
	mLast        prometheus.Gauge
	mLatency     prometheus.Observer
}

// carView is the car the PLC shows: known false means unreadable.
type carView struct {
	vin   string
	known bool
	seen  bool
}

// window is a stretch of tightening ids made while the agent had the tool
// disabled: after from, up to and including to (0: still disabled).
type window struct{ from, to uint32 }

func newControllerAgent(cfg AgentConfig, st *line.Station, ct *line.Controller, pub Publisher, alarms *alarmClock) (*controllerAgent, error) {
	lc := cfg.Line
	c := &controllerAgent{
		lc: lc, st: st, ct: ct, pub: pub, spool: cfg.Spool, alarms: alarms, now: cfg.Now,
		key:     strings.Join([]string{lc.Plant, lc.Line, st.ID, ct.ID}, "."),
		log:     cfg.Logger.With("station", st.ID, "controller", ct.ID),
		wake:    make(chan struct{}, 1),
		fetched: make(chan []openprotocol.Result, 1),
		raised:  map[string]*event.Alarm{},

		noInterlock: !st.Nodes["VinPresent"].IsRead(),

		mTightenings: metricTightenings.WithLabelValues(st.ID, ct.ID),
		mEnabled:     metricToolEnabled.WithLabelValues(st.ID, ct.ID),
		mConnected:   metricControllerConnected.WithLabelValues(st.ID, ct.ID),
		mLast:        metricLastDurable.WithLabelValues(st.ID, ct.ID),
		mLatency:     metricTighteningLatency.WithLabelValues(st.ID, ct.ID),
	}
	last, err := cfg.Spool.LastDurable(c.key)
	if err != nil {
		return nil, fmt.Errorf("station %s: controller %s: %w", st.ID, ct.ID, err)
	}
	c.last = last
	c.mLast.Set(float64(last))
	client, err := openprotocol.New(openprotocol.Config{
		ID: ct.ID, Address: ct.Address,
		Revision: ct.Revision.Max, MinRevision: ct.Revision.Min,
		ResultRevision: ct.ResultRevision.Max, MinResultRevision: ct.ResultRevision.Min,
		KeepAlive: ct.KeepAlive, Location: ct.Location(), LastDurable: c.lastDurable,
		Logger: cfg.Logger.With("station", st.ID),
	})
	if err != nil {
		return nil, fmt.Errorf("station %s: %w", st.ID, err)
	}
	c.client = client
	return c, nil
}

// lastDurable is the client's LastDurable: after every connect it fetches
// the tightenings after this id (MID 0064).
func (c *controllerAgent) lastDurable(context.Context) (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, nil
}

// run runs the client, the interlock and the results until ctx is done;
// every goroutine has returned when it does.
func (c *controllerAgent) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if err := c.client.Run(ctx); err != nil {
			c.log.Error("tightening controller client", "err", err)
		}
	})
	wg.Go(func() { c.interlock(ctx) })
	c.results(ctx, &wg)
}

// results handles every result until the client's Results closes. Gaps
// in the ids are filled by fetching (fillGap) on wg.
func (c *controllerAgent) results(ctx context.Context, wg *sync.WaitGroup) {
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	defer gap.Stop()
	armed, fetching := false, false
	for {
		select {
		case r, ok := <-c.client.Results():
			if !ok {
				return
			}
			c.handle(ctx, r, time.Now())
		case rs := <-c.fetched:
			fetching = false
			for _, r := range rs {
				c.handle(ctx, r, time.Now())
			}
		case <-gap.C:
			armed = false
			if from, ok := c.gap(); ok && !fetching && ctx.Err() == nil {
				fetching = true
				c.log.Info("tightening ids missing after results pushed since: fetching them (MID 0064)", "after", from)
				wg.Go(func() { c.fillGap(ctx, from) })
			}
		}
		if _, ok := c.gap(); ok && !armed {
			gap.Reset(GapGrace)
			armed = true
		}
	}
}

// gap reports whether durable ids wait above a hole, and the id after
// which the hole starts.
func (c *controllerAgent) gap() (uint32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last, len(c.above) > 0
}

// fillGap fetches the tightenings after id from and hands them to the
// results loop.
func (c *controllerAgent) fillGap(ctx context.Context, from uint32) {
	rs, err := c.client.ResultsSince(ctx, from)
	if err != nil && ctx.Err() == nil {
		c.log.Warn("fetching missing tightenings", "after", from, "err", err)
	}
	select {
	case c.fetched <- rs:
	case <-ctx.Done():
	}
}

// handle makes one result durable as a tightening event, keeps the last
// durable id and only then acknowledges the result. A result durable
// already (sent again, fetched again) is acknowledged at once. A result
// the record would refuse is not acknowledged: it stays in the controller,
// and an alarm says why.
func (c *controllerAgent) handle(ctx context.Context, r openprotocol.Result, arrived time.Time) {
	id := r.TighteningID
	if c.isDurable(id) {
		c.ack(ctx, r)
		return
	}
	if r.MID == 65 {
		c.lostBefore(ctx, id)
	}
	ev, td, err := c.event(r)
	if err != nil {
		c.raise(ctx, &event.Alarm{Active: true, Code: event.AlarmRefused, Controller: c.ct.ID, TighteningID: id,
			Text: fmt.Sprintf("controller %s: tightening %d not acknowledged: the record would refuse it (%v); it stays in the controller", c.ct.ID, id,
				strings.TrimPrefix(err.Error(), event.ErrMalformed.Error()+": "))})
		return
	}
	backoff := ReconnectMin
	for {
		err := c.pub.Publish(ctx, ev)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("tightening not durable, not acknowledged; retrying", "event_id", ev.ID, "err", err)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, ReconnectMax)
	}
	metricPublished.WithLabelValues(c.st.ID, event.KindTightening).Inc()
	c.mTightenings.Inc()
	c.markDurable(id)
	if td.WhileDisabled {
		c.raise(ctx, &event.Alarm{Active: true, Code: event.AlarmWhileDisabled, Controller: c.ct.ID, TighteningID: id,
			Text: fmt.Sprintf("controller %s made tightening %d (VIN %q, joint %q) while the agent had its tool disabled: recorded, flagged; check the tool's interlock", c.ct.ID, id, td.VIN, td.Joint)})
	}
	c.ack(ctx, r)
	c.mLatency.Observe(time.Since(arrived).Seconds())
	c.batchProgress(td)
	c.durableResult(td.VIN, td.BatchStatus == event.StatusOK)
}

func (c *controllerAgent) ack(ctx context.Context, r openprotocol.Result) {
	err := c.client.Ack(ctx, r)
	switch {
	case err == nil:
	case errors.Is(err, openprotocol.ErrLinkLost) || ctx.Err() != nil:
		c.log.Debug("acknowledge not sent: the controller sends the result again", "tightening_id", r.TighteningID, "err", err)
	default:
		c.log.Warn("acknowledge failed", "tightening_id", r.TighteningID, "err", err)
	}
}

// isDurable reports whether tightening id is durable already.
func (c *controllerAgent) isDurable(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, above := slices.BinarySearch(c.above, id)
	return c.last > 0 && id <= c.last || above
}

// markDurable records id as durable and keeps the new last durable id in
// the spool file. The first id of a controller new to the agent starts
// the count.
func (c *controllerAgent) markDurable(id uint32) {
	c.mu.Lock()
	if c.last == 0 && len(c.above) == 0 {
		c.last = id - 1
	}
	if i, found := slices.BinarySearch(c.above, id); !found {
		c.above = slices.Insert(c.above, i, id)
	}
	before := c.last
	for len(c.above) > 0 && c.above[0] <= c.last+1 {
		c.last = max(c.last, c.above[0])
		c.above = c.above[1:]
	}
	last := c.last
	c.pruneWindowsLocked()
	c.mu.Unlock()
	if last == before {
		return
	}
	c.mLast.Set(float64(last))
	if err := c.spool.SetLastDurable(c.key, last); err != nil {
		// The result is durable; a stale mark only fetches it again.
		c.log.Error("last durable tightening not kept: after a restart the agent fetches some results again (recorded once by their ids)", "tightening_id", last, "err", err)
	}
}

// lostBefore handles a result fetched from the controller's memory (MID
// 0065): the client fetches ids in order, so every id between the last
// durable one and id that is not durable by now is one the controller no
// longer keeps. It is lost: an alarm names it, and the count goes on.
func (c *controllerAgent) lostBefore(ctx context.Context, id uint32) {
	c.mu.Lock()
	if c.last == 0 || id <= c.last+1 {
		c.mu.Unlock()
		return
	}
	var ranges [][2]uint32
	from := c.last + 1
	for _, a := range c.above {
		if a >= id {
			break
		}
		if a > from {
			ranges = append(ranges, [2]uint32{from, a - 1})
		}
		from = a + 1
	}
	if from < id {
		ranges = append(ranges, [2]uint32{from, id - 1})
	}
	c.mu.Unlock()
	if len(ranges) == 0 {
		return
	}
	var names []string
	for _, r := range ranges {
		if r[0] == r[1] {
			names = append(names, strconv.FormatUint(uint64(r[0]), 10))
		} else {
			names = append(names, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
		for x := r[0]; x <= r[1]; x++ {
			c.markDurable(x)
		}
	}
	c.raise(ctx, &event.Alarm{Active: true, Code: event.AlarmTighteningLost, Controller: c.ct.ID, TighteningID: ranges[0][0],
		Text: fmt.Sprintf("controller %s no longer keeps tightenings %s, made while the agent was away: they cannot be recorded; check the cars tightened then", c.ct.ID, strings.Join(names, ", "))})
}

// event makes the tightening event of r. It returns an error when the
// record would refuse it.
func (c *controllerAgent) event(r openprotocol.Result) (*event.Event, *event.Tightening, error) {
	vin := strings.TrimSpace(r.VIN)
	td := &event.Tightening{
		Controller: c.ct.ID, Channel: r.ChannelID, TighteningID: r.TighteningID, VIN: vin,
		Pset: r.Pset, BatchSize: r.BatchSize, BatchCounter: r.BatchCounter, BatchStatus: batchStatus(r.BatchStatus),
		Result: event.StatusNOK, TorqueStatus: limitStatus(r.TorqueStatus), AngleStatus: limitStatus(r.AngleStatus),
		AngleDeg: new(float64(r.Angle)), ControllerTime: r.Time, MID: r.MID,
	}
	if r.OK {
		td.Result = event.StatusOK
	}
	unit := 0
	if d := r.Detail; d != nil {
		td.ToolSerial, td.PsetName, unit = strings.TrimSpace(d.ToolSerial), strings.TrimSpace(d.PsetName), d.TorqueUnit
	}
	nm, name := torqueToNm(unit)
	td.TorqueUnit = name
	td.TorqueNm = nm(r.Torque)
	if l := r.Limits; l != nil {
		td.TorqueMinNm, td.TorqueMaxNm, td.TorqueTargetNm = nm(l.TorqueMin), nm(l.TorqueMax), nm(l.TorqueTarget)
		td.AngleMinDeg, td.AngleMaxDeg, td.AngleTargetDeg = new(float64(l.AngleMin)), new(float64(l.AngleMax)), new(float64(l.AngleTarget))
	}
	if j, ok := c.jointOf(r); ok {
		td.Joint, td.Class = j.Name, j.Class
	}
	td.WhileDisabled = c.madeWhileDisabled(r.TighteningID)
	now := c.now()
	occurred := r.Time
	if occurred.IsZero() {
		occurred, td.ControllerTime, td.Clock = now, time.Time{}, event.ClockAgent
	}
	car := ""
	if vin != "" {
		if err := c.lc.Identity.Check(vin, ""); err == nil {
			car = vin
		} else {
			c.log.Warn("tightening with a VIN the line does not accept: recorded by controller, not attributed to a car", "tightening_id", r.TighteningID, "vin", vin, "err", err)
		}
	}
	ev, err := event.NewTighteningEvent(c.lc.Plant, c.lc.Line, c.st.ID, car, td, occurred, now)
	if err != nil {
		return nil, nil, err
	}
	if err := ev.ValidateFor(c.lc.Identity); err != nil {
		return nil, nil, err
	}
	return ev, td, nil
}

// jointOf is the joint a result tightened, by its position in the batch:
// the controller counts OK tightenings, so an OK result is the joint its
// counter names and a NOK one the joint after it (the one the next OK
// tightening will count). A parameter set without a batch names none.
func (c *controllerAgent) jointOf(r openprotocol.Result) (line.ControllerJoint, bool) {
	if r.BatchStatus == openprotocol.BatchNotUsed {
		return line.ControllerJoint{}, false
	}
	pos := r.BatchCounter
	if !r.OK {
		pos++
	}
	return c.ct.JointAt(r.Pset, pos)
}

func batchStatus(s openprotocol.BatchStatus) string {
	switch s {
	case openprotocol.BatchOK:
		return event.StatusOK
	case openprotocol.BatchNotUsed:
		return event.BatchNotUsed
	case openprotocol.BatchRunning:
		return event.BatchRunning
	}
	return event.StatusNOK
}

func limitStatus(s openprotocol.LimitStatus) string {
	switch s {
	case openprotocol.Low:
		return event.StatusLow
	case openprotocol.High:
		return event.StatusHigh
	}
	return event.StatusOK
}

// torqueToNm returns the conversion of the controller's torque unit (MID
// 0061 revision 3 "torque values unit") to N·m, and the unit's name; 0 is
// a controller that does not say, whose torques are N·m. A unit without
// N·m (percent) or unknown makes the values unknown.
func torqueToNm(unit int) (func(float64) *float64, string) {
	factor := map[int]float64{0: 1, 1: 1, 2: 1.3558179483314004, 3: 0.1129848290276167, 4: 9.80665, 5: 0.0980665, 6: 0.0070615518333333, 8: 0.01}
	names := map[int]string{0: "", 1: "N·m", 2: "lbf·ft", 3: "lbf·in", 4: "kpm", 5: "kgf·cm", 6: "ozf·in", 7: "%", 8: "N·cm"}
	name, ok := names[unit]
	if !ok {
		name = "unit " + strconv.Itoa(unit)
	}
	f, ok := factor[unit]
	if !ok {
		return func(float64) *float64 { return nil }, name
	}
	return func(v float64) *float64 {
		if f == 1 {
			return new(v)
		}
		return new(float64(int64(v*f*10000+0.5)) / 10000)
	}, name
}

// raise publishes alarm a (with the station's next alarm number) unless
// the same alarm is raised already; a cleared one (Active false) is
// published only when it was raised.
func (c *controllerAgent) raise(ctx context.Context, a *event.Alarm) {
	c.mu.Lock()
	prev, up := c.raised[a.Code]
	switch {
	case a.Active && up && prev.Text == a.Text:
		c.mu.Unlock()
		return
	case !a.Active && !up:
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	now := c.now()
	a.Counter = c.alarms.next(now)
	ev, err := event.NewEvent(c.lc.Plant, c.lc.Line, c.st.ID, event.KindAlarm, "", 0, a.Counter, now, now, a)
	if err == nil {
		err = c.pub.Publish(ctx, ev)
	}
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("alarm not published", "code", a.Code, "text", a.Text, "err", err)
		}
		return
	}
	metricPublished.WithLabelValues(c.st.ID, event.KindAlarm).Inc()
	c.mu.Lock()
	if a.Active {
		c.raised[a.Code] = a
	} else {
		delete(c.raised, a.Code)
	}
	c.mu.Unlock()
	if a.Active {
		metricTighteningAlarms.WithLabelValues(c.st.ID, c.ct.ID, a.Code).Inc()
		c.log.Error("alarm raised", "code", a.Code, "text", a.Text, "event_id", ev.ID)
	} else {
		c.log.Info("alarm cleared", "code", a.Code)
	}
}

// clear clears the alarm of code if it is raised.
func (c *controllerAgent) clear(ctx context.Context, code string) {
	c.mu.Lock()
	prev, up := c.raised[code]
	c.mu.Unlock()
	if !up {
		return
	}
	c.raise(ctx, &event.Alarm{Active: false, Code: code, Controller: c.ct.ID, TighteningID: prev.TighteningID, Text: "cleared: " + prev.Text})
}
