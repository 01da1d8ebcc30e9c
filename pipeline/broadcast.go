package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/rules"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The JIS broadcast: when a car passes the broadcast point (trim in), the
// tracker tells each just-in-sequence supplier the part variant the car
// needs, numbered per supplier. The broadcast rows are written with the
// broadcast point's event, in its transaction (an outbox); a Broadcaster
// then publishes them to the JIS stream, each on its supplier's subject,
// and marks them published. A row published twice (a crash in between)
// is dropped by the stream's duplicate window (Nats-Msg-Id
// <supplier>.<seq>); suppliers see each number once and in order.

// BroadcastConfig is the line's JIS broadcast, for the tracker (see
// rules.Broadcast).
type BroadcastConfig = rules.Broadcast

// JISSupplier is one just-in-sequence supplier (see rules.Supplier).
type JISSupplier = rules.Supplier

var metricBroadcasts = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "keiline_jis_broadcasts_published_total", Help: "JIS broadcasts published, by supplier.",
}, []string{"supplier"})

// Broadcaster publishes recorded JIS broadcasts.
type Broadcaster struct {
	Plant, Line string
	Store       *schema.Store
	JetStream   jetstream.JetStream
	// Wake, when it receives, makes the broadcaster look at once (the
	// tracker's Subscribe channel); it also looks every Interval.
	Wake     <-chan struct{}
	Interval time.Duration
	Logger   *slog.Logger
	// StreamsReady: an admin identity made the JIS stream (see
	// TrackerConfig.StreamsReady); the broadcaster only checks it.
	StreamsReady bool
}

// ensure makes the JIS stream, or with StreamsReady checks it exists.
func (b *Broadcaster) ensure(ctx context.Context) error {
	if b.StreamsReady {
		return streams.Check(ctx, b.JetStream, event.BroadcastStream)
	}
	return streams.EnsureBroadcast(ctx, b.JetStream, 1)
}

// Run publishes until ctx is done, then returns nil.
func (b *Broadcaster) Run(ctx context.Context) error {
	if b.Interval <= 0 {
		b.Interval = time.Second
	}
	log := b.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "jis")
	if err := b.ensure(ctx); err != nil && ctx.Err() == nil {
		log.Warn("JIS stream not ready; retrying", "err", err)
	}
	tick := time.NewTicker(b.Interval)
	defer tick.Stop()
	var lastErr string
	for {
		if err := b.publish(ctx); err != nil && ctx.Err() == nil {
			if s := err.Error(); s != lastErr {
				lastErr = s
				log.Warn("JIS broadcast not published; retrying", "err", err)
			}
		} else {
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.Wake:
		case <-tick.C:
		}
	}
}

func (b *Broadcaster) publish(ctx context.Context) error {
	for {
		bs, err := b.Store.UnpublishedBroadcasts(ctx, 256)
		if err != nil {
			return err
		}
		if len(bs) == 0 {
			return nil
		}
		for _, x := range bs {
			data, err := json.Marshal(x)
			if err != nil {
				return err
			}
			id := x.Supplier + "." + strconv.FormatInt(x.Seq, 10)
			msg := &nats.Msg{Subject: event.BroadcastSubject(b.Plant, b.Line, x.Supplier), Data: data, Header: nats.Header{}}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = b.JetStream.PublishMsg(pctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(event.BroadcastStream))
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					_ = b.ensure(ctx)
				}
				return fmt.Errorf("broadcast %s: %w", id, err)
			}
			if err := b.Store.MarkPublished(ctx, x.Supplier, x.Seq, time.Now()); err != nil {
				return err
			}
			metricBroadcasts.WithLabelValues(x.Supplier).Inc()
		}
	}
}
