package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricClients = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "keiline_dashboard_stream_clients", Help: "Pages connected to the dashboard's event stream.",
	})
	metricPushes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "keiline_dashboard_pushes_total", Help: "Updates pushed to the event stream, by event (line, shift).",
	}, []string{"event"})
	metricEvents = promauto.NewCounter(prometheus.CounterOpts{
		Name: "keiline_dashboard_events_total", Help: "Recorded events the dashboard has read from the event log.",
	})
	metricReadErrors = promauto.NewCounter(prometheus.CounterOpts{
		Name: "keiline_dashboard_record_errors_total", Help: "Failed reads of the record (retried).",
	})
)

// replayEvents is how many of the newest recorded events the dashboard
// replays on start to learn where the cars on the line are: more than the
// cycles and state changes of a full line.
const replayEvents = 5000

// Stream event names.
const (
	eventLine  = "line"
	eventShift = "shift"
)

// feed follows the record and pushes the line and the shift's numbers to
// the connected pages.
type feed struct {
	cfg  Config
	log  *slog.Logger
	kick chan struct{} // compute the shift's numbers now

	mu      sync.Mutex
	model   *lineModel
	line    []byte // the latest line document pushed
	stale   bool   // the model changed since line was made (no page was connected)
	clients map[*client]struct{}

	shiftMu  sync.Mutex // one computation of the shift's numbers at a time
	shift    []byte     // the latest shift document, under mu
	shiftAt  time.Time  // when it was computed, under mu
	lastErr  string     // last read error logged, owned by run
	stations []string
}

func newFeed(cfg Config, log *slog.Logger) *feed {
	f := &feed{cfg: cfg, log: log, kick: make(chan struct{}, 1), model: newLineModel(cfg.Stations), clients: map[*client]struct{}{}}
	for _, s := range cfg.Stations {
		f.stations = append(f.stations, s.ID)
	}
	return f
}

// load reads each station's latest state and replays the newest events.
func (f *feed) load(ctx context.Context) error {
	ss, err := f.cfg.Store.StationStatuses(ctx)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	head, err := f.cfg.Store.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	f.mu.Lock()
	f.model.seed(ss)
	f.model.seq = max(0, head-replayEvents)
	f.mu.Unlock()
	if err := f.read(ctx); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	f.mu.Lock()
	f.model.seq = max(f.model.seq, head)
	f.line = f.lineDoc()
	f.mu.Unlock()
	return nil
}

// run follows the record until ctx is done: it reads new events when woken
// or every PollInterval (never more often than PollIntervalMin), and
// computes the shift's numbers every ShiftInterval while pages are
// connected.
func (f *feed) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { f.runShift(ctx) })
	tick := time.NewTicker(f.cfg.PollInterval)
	defer tick.Stop()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.cfg.Wake:
		case <-tick.C:
		}
		if err := f.read(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			metricReadErrors.Inc()
			if s := err.Error(); s != f.lastErr {
				f.lastErr = s
				f.log.Warn("reading the record failed; retrying", "err", err)
			}
		} else {
			f.lastErr = ""
		}
		pause.Reset(PollIntervalMin)
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
	}
}

// read applies every event recorded since the last one read and pushes the
// line if it changed.
func (f *feed) read(ctx context.Context) error {
	changed := false
	for {
		f.mu.Lock()
		after := f.model.seq
		f.mu.Unlock()
		evs, err := f.cfg.Store.LiveEvents(ctx, f.cfg.Plant, f.cfg.Line, after, schema.LiveEventsMax)
		if err != nil {
			return err
		}
		metricEvents.Add(float64(len(evs)))
		f.mu.Lock()
		for _, e := range evs {
			if f.model.apply(e) {
				changed = true
			}
		}
		if changed && len(evs) < schema.LiveEventsMax {
			if len(f.clients) == 0 {
				f.stale = true // made when a page connects
			} else {
				f.line, f.stale = f.lineDoc(), false
				f.broadcast(eventLine, f.line)
			}
		}
		f.mu.Unlock()
		if len(evs) < schema.LiveEventsMax {
			return nil
		}
	}
}

// lineView returns the live line now. Call with mu held.
func (f *feed) lineView() LineView {
	v := f.model.view(f.cfg.Now())
	v.Plant, v.Line, v.Speed = f.cfg.Plant, f.cfg.Line, f.cfg.Speed
	v.TaktMs = time.Duration(float64(f.cfg.Takt) / f.cfg.Speed).Milliseconds()
	return v
}

// lineDoc returns the live line as JSON. Call with mu held.
func (f *feed) lineDoc() []byte {
	b, err := json.Marshal(f.lineView())
	if err != nil { // cannot happen: plain structs
		panic(err)
	}
	return b
}

// runShift computes the shift's numbers every ShiftInterval, or when
// kicked, while pages are connected.
func (f *feed) runShift(ctx context.Context) {
	tick := time.NewTicker(f.cfg.ShiftInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.kick:
		}
		f.mu.Lock()
		n := len(f.clients)
		f.mu.Unlock()
		if n == 0 {
			continue
		}
		if _, err := f.computeShift(ctx); err != nil && ctx.Err() == nil {
			metricReadErrors.Inc()
			f.log.Warn("computing the shift's numbers failed", "err", err)
		}
	}
}

// shiftDoc returns the shift's numbers as JSON, computed at most
// ShiftInterval ago.
func (f *feed) shiftDoc(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	doc, at := f.shift, f.shiftAt
	f.mu.Unlock()
	if doc != nil && f.cfg.Now().Sub(at) < f.cfg.ShiftInterval {
		return doc, nil
	}
	return f.computeShift(ctx)
}

// computeShift computes the shift's numbers as of now from the record,
// keeps them and pushes them to the connected pages.
func (f *feed) computeShift(ctx context.Context) ([]byte, error) {
	f.shiftMu.Lock()
	defer f.shiftMu.Unlock()
	v, err := f.shiftView(ctx, f.cfg.Now())
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("shift numbers: %w", err)
	}
	f.mu.Lock()
	f.shift, f.shiftAt = b, f.cfg.Now()
	if len(f.clients) > 0 {
		f.broadcast(eventShift, b)
	}
	f.mu.Unlock()
	return b, nil
}

// shiftView computes the numbers of the shift around now, as of now (the
// millisecond), or of its end once it is over.
func (f *feed) shiftView(ctx context.Context, now time.Time) (ShiftView, error) {
	c := f.cfg
	from, to := shiftWindow(c.ShiftStart, time.Duration(float64(c.ShiftLength)/c.Speed), now)
	asOf := now.Truncate(time.Millisecond)
	if asOf.After(to) {
		asOf = to
	}
	if !asOf.After(from) {
		asOf = from.Add(time.Millisecond)
	}
	r, err := c.Store.ShiftRecord(ctx, schema.ShiftQuery{From: from, To: asOf, Stations: f.stations, Out: f.stations[len(f.stations)-1]})
	if err != nil {
		return ShiftView{}, err
	}
	v := shiftNumbers(c.shiftParams(from, to, asOf), r)
	if v.Next, err = c.Store.NextCars(ctx, NextCarsShown); err != nil {
		return ShiftView{}, err
	}
	return v, nil
}

// client is one connected page. It keeps only the newest document of each
// event: a page that reads slowly skips updates, it never holds up the feed.
type client struct {
	wake chan struct{}

	mu          sync.Mutex
	line, shift []byte
}

func (c *client) offer(event string, doc []byte) {
	c.mu.Lock()
	if event == eventLine {
		c.line = doc
	} else {
		c.shift = doc
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take returns the documents not yet sent and forgets them.
func (c *client) take() (line, shift []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	line, shift, c.line, c.shift = c.line, c.shift, nil, nil
	return line, shift
}

// subscribe connects a page; it gets the current line and shift at once.
func (f *feed) subscribe() *client {
	c := &client{wake: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[c] = struct{}{}
	metricClients.Set(float64(len(f.clients)))
	if f.stale {
		f.line, f.stale = f.lineDoc(), false
	}
	c.offer(eventLine, f.line)
	if f.shift != nil {
		c.offer(eventShift, f.shift)
	}
	if f.shift == nil || f.cfg.Now().Sub(f.shiftAt) >= f.cfg.ShiftInterval {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
	return c
}

func (f *feed) unsubscribe(c *client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.clients, c)
	metricClients.Set(float64(len(f.clients)))
}

// broadcast offers doc to every page. Call with mu held.
func (f *feed) broadcast(event string, doc []byte) {
	metricPushes.WithLabelValues(event).Inc()
	for c := range f.clients {
		c.offer(event, doc)
	}
}
