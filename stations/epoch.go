package stations

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Counter epochs.
//
// An event id is made from the PLC's counter (event.EventID). A PLC whose
// counter goes back (a replaced CPU, cleared retentive memory, a new
// program without its retentive data) would give its new cycles the ids
// of old ones; the tracker would record them as conflicts, not as cycles.
// The agent keeps, per station and counter (CycleCounter, StateCounter),
// the counter's epoch and the last value it published. A counter strictly
// lower than the last one published starts a new epoch (epoch + 1), which
// is part of the ids from 1 on, so the new cycles' ids never collide with
// the old ones. A counter that wraps (a UInt32 past 4,294,967,295, a
// UInt16 past 65,535) goes back to 0 the same way and starts a new epoch
// too. An unchanged counter is the same cycle shown again (a redelivery
// after an agent restart: same id, same payload), never a reset.
//
// With a spool the marks live in its bbolt file: a new epoch is synced
// before the first event of it is published; the last counter published
// is written behind by the Agent's epoch writer (coalesced, a few
// milliseconds late), so the poll loop never waits for the disk on an
// ordinary cycle. After an agent restart the marks come back from the
// spool, and a PLC whose counter went back while the agent was down is
// noticed at its first cycle: the handshake shows the oldest result first,
// and after a reset that is counter 1 (or the PLC's first value).
//
// What a counter cannot tell: a reset after which the first value the
// agent reads equals the last one published (a PLC reset right after its
// cycle 1, or a reset and as many new cycles as before while the agent was
// away with a PLC that shows the newest result, not the oldest). The agent
// takes that cycle for the one it published; the tracker, which compares
// the payloads, records it as a conflict and raises the alarm, so it is
// never silently dropped.
//
// A station without a StateCounter (its state changes detected by value,
// numbered by the agent's clock) has no state counter to reset and no
// state epoch.

// Counter kinds of a station's epochs (the kind label of
// keiline_agent_counter_epoch).
const (
	epochCycle = "cycle" // CycleCounter
	epochState = "state" // StateCounter
)

var metricEpoch = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Name: "keiline_agent_counter_epoch", Help: "The epoch of a station PLC's counter (kind cycle: CycleCounter, state: StateCounter): how often the agent saw it go back; part of the event ids from 1 on.",
}, []string{"station", "kind"})

// epochRetry is how often the epoch writer retries a failed write.
const epochRetry = time.Second

// CounterKey is the spool key of a station's counter epoch: "T02/cycle".
func CounterKey(station, kind string) string { return station + "/" + kind }

// counterEpoch is the epoch of one station counter. It is used by its
// station's poller only.
type counterEpoch struct {
	station, kind string
	mark          CounterMark
	known         bool // a value was published (or kept by the spool)
	store         *epochStore
	log           *slog.Logger
}

// of returns the epoch of counter, and starts a new epoch when counter is
// strictly lower than the last one published. A new epoch is durable
// before of returns it; on an error nothing changed and the event must
// not be published.
func (c *counterEpoch) of(counter uint64) (uint32, error) {
	if !c.known || counter >= c.mark.Last {
		return c.mark.Epoch, nil
	}
	next := CounterMark{Epoch: c.mark.Epoch + 1, Last: counter}
	if err := c.store.keepNow(CounterKey(c.station, c.kind), next); err != nil {
		return 0, err
	}
	c.log.Warn("PLC counter went back: new counter epoch; the new events' ids carry it",
		"counter", c.tag(), "last_published", c.mark.Last, "counter_now", counter, "old_epoch", c.mark.Epoch, "epoch", next.Epoch)
	c.mark = next
	metricEpoch.WithLabelValues(c.station, c.kind).Set(float64(next.Epoch))
	return next.Epoch, nil
}

// published notes counter as the last one published, written behind.
func (c *counterEpoch) published(counter uint64) {
	if c.known && c.mark.Last == counter {
		return
	}
	c.known, c.mark.Last = true, counter
	c.store.keep(CounterKey(c.station, c.kind), c.mark)
}

// isLast reports whether counter is the last one published, as the
// spool kept it across an agent restart.
func (c *counterEpoch) isLast(counter uint64) bool { return c.known && c.mark.Last == counter }

func (c *counterEpoch) tag() string {
	if c.kind == epochState {
		return "StateCounter"
	}
	return "CycleCounter"
}

// epochStore keeps the agent's counter marks in the spool, or in memory
// only when the agent has none.
type epochStore struct {
	spool *Spool // nil: memory only
	log   *slog.Logger
	wake  chan struct{}

	wmu   sync.Mutex // serialises writes, so the newest mark is written last
	mu    sync.Mutex
	dirty map[string]CounterMark // marks not yet written
	fail  bool                   // the last write failed (logged once)
}

func newEpochStore(spool *Spool, log *slog.Logger) *epochStore {
	if spool == nil {
		log.Warn("the agent has no spool: counter epochs are kept in memory only, so a PLC counter reset while the agent is down cannot be noticed (the tracker records such cycles as conflicts)")
	}
	return &epochStore{spool: spool, log: log, wake: make(chan struct{}, 1), dirty: map[string]CounterMark{}}
}

// counter returns the epoch of station's counter of kind, as the spool
// kept it.
func (s *epochStore) counter(station, kind string, log *slog.Logger) (*counterEpoch, error) {
	c := &counterEpoch{station: station, kind: kind, store: s, log: log}
	if s.spool != nil {
		m, ok, err := s.spool.CounterMark(CounterKey(station, kind))
		if err != nil {
			return nil, err
		}
		c.mark, c.known = m, ok
	}
	metricEpoch.WithLabelValues(station, kind).Set(float64(c.mark.Epoch))
	return c, nil
}

// keep queues m for the writer.
func (s *epochStore) keep(key string, m CounterMark) {
	if s.spool == nil {
		return
	}
	s.mu.Lock()
	s.dirty[key] = m
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// keepNow writes m, and whatever else waits, before it returns.
func (s *epochStore) keepNow(key string, m CounterMark) error {
	if s.spool == nil {
		return nil
	}
	s.mu.Lock()
	s.dirty[key] = m
	s.mu.Unlock()
	return s.flush()
}

// flush writes the marks that wait. A failed write puts them back, unless
// a newer mark came meanwhile.
func (s *epochStore) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	marks := s.dirty
	s.dirty = map[string]CounterMark{}
	s.mu.Unlock()
	if len(marks) == 0 {
		return nil
	}
	err := s.spool.SetCounterMarks(marks)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		for k, m := range marks {
			if _, newer := s.dirty[k]; !newer {
				s.dirty[k] = m
			}
		}
		if !s.fail {
			s.fail = true
			s.log.Error("counter epochs not kept in the spool; retrying", "marks", markList(marks), "err", err)
		}
		return err
	}
	if s.fail {
		s.fail = false
		s.log.Info("counter epochs kept in the spool again")
	}
	return nil
}

// markList lists marks for a log line: "T02/cycle=1:57" (epoch:last).
func markList(m map[string]CounterMark) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+strconv.FormatUint(uint64(m[k].Epoch), 10)+":"+strconv.FormatUint(m[k].Last, 10))
	}
	return out
}

// run writes the queued marks until ctx is done, then once more.
func (s *epochStore) run(ctx context.Context) {
	if s.spool == nil {
		return
	}
	tick := time.NewTicker(epochRetry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = s.flush()
			return
		case <-s.wake:
		case <-tick.C:
		}
		_ = s.flush()
	}
}
