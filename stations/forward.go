package stations

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keiline/keiline/pipeline/event"
)

// PublishTimeoutDefault is how long the agent waits for NATS to acknowledge
// an event before it makes the event durable in the local spool instead.
const PublishTimeoutDefault = 2 * time.Second

// forwardBatch is how many spooled events the forwarder reads at a time.
const forwardBatch = 64

// durable makes events durable: in JetStream when it acknowledges in time,
// else in the local spool. While the spool holds anything, new events go
// behind it, so each station's events reach NATS in their order.
type durable struct {
	pub     Publisher
	spool   *Spool
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
	wake    chan struct{}

	mu      sync.Mutex
	spooled bool // last Publish went to the spool (to log each transition once)
}

func newDurable(pub Publisher, spool *Spool, timeout time.Duration, log *slog.Logger, now func() time.Time) *durable {
	return &durable{pub: pub, spool: spool, timeout: timeout, log: log, now: now, wake: make(chan struct{}, 1)}
}

// Publish returns nil once ev is durable in JetStream or in the spool.
func (d *durable) Publish(ctx context.Context, ev *event.Event) error {
	if d.spool == nil {
		return d.pub.Publish(ctx, ev)
	}
	if d.spool.Len() == 0 {
		pctx, cancel := context.WithTimeout(ctx, d.timeout)
		err := d.pub.Publish(pctx, ev)
		cancel()
		if err == nil {
			d.transition(false, nil)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.transition(true, err)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("event %s: %w", ev.ID, err)
	}
	if err := d.spool.Append(d.now(), body); err != nil {
		return fmt.Errorf("event %s: NATS did not acknowledge and the spool refused it: %w", ev.ID, err)
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return nil
}

func (d *durable) transition(spooling bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if spooling && !d.spooled {
		d.log.Warn("NATS did not acknowledge in time: events go to the local spool until it is back", "timeout", d.timeout, "err", err)
	}
	d.spooled = spooling
}

// forward drains the spool into NATS, oldest first, with the events' own
// ids, until ctx is done.
func (d *durable) forward(ctx context.Context) {
	backoff := ReconnectMin
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		n, err := d.drain(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			d.log.Debug("forwarding spooled events failed; retrying", "err", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, ReconnectMax)
			continue
		case n > 0:
			backoff = ReconnectMin
			if d.spool.Len() == 0 {
				d.log.Info("spool drained: every spooled event is in NATS")
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-tick.C:
		}
	}
}

// drain forwards one batch and returns how many events it forwarded.
func (d *durable) drain(ctx context.Context) (int, error) {
	batch, err := d.spool.Peek(forwardBatch)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	for i, se := range batch {
		var ev event.Event
		if err := json.Unmarshal(se.Body, &ev); err != nil {
			// Cannot happen for what Publish stored; never drop it silently.
			return i, fmt.Errorf("spooled entry %d: %w", se.Key, err)
		}
		pctx, cancel := context.WithTimeout(ctx, d.timeout)
		err := d.pub.Publish(pctx, &ev)
		cancel()
		if err != nil {
			return i, fmt.Errorf("forward %s: %w", ev.ID, err)
		}
		if err := d.spool.Remove(se.Key); err != nil {
			return i, err
		}
	}
	return len(batch), nil
}
