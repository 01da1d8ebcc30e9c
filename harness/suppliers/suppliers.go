// Package suppliers simulates the JIS suppliers of `keiline up --orders`:
// each follows its broadcast subject with a durable consumer, builds the
// part the broadcast asks for — now and then, at seeded points, a wrong
// variant — and delivers it to the simulated plant's receiving dock, in
// broadcast order. They stand for the suppliers' own systems, outside the
// MES: a harness that drives the simulated plant, not a part of keiline.
package suppliers

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/simulator"
	"github.com/nats-io/nats.go/jetstream"
)

// WrongRateDefault is the share of parts a simulated JIS supplier
// delivers in the wrong variant (the install station finds them).
const WrongRateDefault = 0.01

// Suppliers are the line's simulated JIS suppliers.
type Suppliers struct {
	// Line is the line config: its broadcast suppliers and products.
	Line *line.Config
	// JetStream returns the connection a supplier follows its broadcast
	// on (each supplier has an identity of its own on a NATS with
	// identities).
	JetStream func(supplier string) jetstream.JetStream
	// Plant is where the parts are delivered.
	Plant *simulator.Plant
	// Seed and WrongRate choose the wrong variants.
	Seed      int64
	WrongRate float64
	Logger    *slog.Logger
}

// Run runs one goroutine per supplier until ctx is done.
func (s *Suppliers) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sup := range s.Line.Broadcast.Suppliers {
		wg.Go(func() { s.supply(ctx, sup) })
	}
	wg.Wait()
}

// follow returns the supplier's durable consumer of its broadcast,
// retrying until it exists or ctx is done (nil then).
func (s *Suppliers) follow(ctx context.Context, sup line.Supplier, log *slog.Logger) jetstream.Consumer {
	js := s.JetStream(sup.Name)
	for {
		// A supplier with least privilege may not make the stream (an
		// admin does): then it waits until the consumer can be made.
		_ = streams.EnsureBroadcast(ctx, js, 1)
		c, err := js.CreateOrUpdateConsumer(ctx, event.BroadcastStream, jetstream.ConsumerConfig{
			Durable: broker.SupplierConsumer(s.Line.Plant, s.Line.Line, sup.Name), FilterSubject: event.BroadcastSubject(s.Line.Plant, s.Line.Line, sup.Name),
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1, // one at a time: in broadcast order
		})
		if err == nil {
			return c
		}
		log.Warn("supplier cannot follow its broadcast; retrying", "err", err)
		if !sleepCtx(ctx, time.Second) {
			return nil
		}
	}
}

func (s *Suppliers) supply(ctx context.Context, sup line.Supplier) {
	log := s.Logger.With("component", "supplier", "supplier", sup.Name)
	cons := s.follow(ctx, sup, log)
	if cons == nil {
		return
	}
	variants := s.variants(sup)
	for ctx.Err() == nil {
		batch, err := cons.Fetch(16, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("broadcast fetch failed; retrying", "err", err)
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		for msg := range batch.Messages() {
			var b event.Broadcast
			if err := json.Unmarshal(msg.Data(), &b); err != nil {
				log.Error("bad broadcast: skipped", "subject", msg.Subject(), "err", err)
				_ = msg.Term()
				continue
			}
			variant := b.PartVariant
			if s.wrong(sup.Name, b.Seq) {
				if w := otherVariant(variants, variant, b.Seq); w != "" {
					log.Info("delivering a wrong variant (simulated supplier error)", "seq", b.Seq, "vin", b.VIN, "want", variant, "delivered", w)
					variant = w
				}
			}
			part := simulator.JISPart{Supplier: sup.Name, Seq: b.Seq, VIN: b.VIN, PartNumber: b.PartNumber + "-" + variant, Variant: variant,
				Serial: fmt.Sprintf("%s-%s-%07d", b.PartNumber, strings.ToUpper(sup.Name[:1]), b.Seq)}
			for {
				err := s.Plant.Deliver(part)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				log.Warn("delivery refused; retrying", "seq", b.Seq, "vin", b.VIN, "err", err)
				if !sleepCtx(ctx, time.Second) {
					return
				}
			}
			if err := msg.DoubleAck(ctx); err != nil && ctx.Err() == nil {
				log.Warn("broadcast ack lost; the plant ignores the redelivery", "seq", b.Seq, "err", err)
			}
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && err != jetstream.ErrNoMessages {
			log.Debug("broadcast fetch", "err", err)
		}
	}
}

// wrong reports whether the supplier gets broadcast seq wrong.
func (s *Suppliers) wrong(supplier string, seq int64) bool {
	if s.WrongRate <= 0 {
		return false
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(s.Seed))
	h.Write(b[:])
	h.Write([]byte(supplier))
	binary.LittleEndian.PutUint64(b[:], uint64(seq))
	h.Write(b[:])
	return float64(h.Sum64()%1_000_000)/1_000_000 < s.WrongRate
}

// variants returns every part variant the supplier makes.
func (s *Suppliers) variants(sup line.Supplier) []string {
	var out []string
	for _, m := range s.Line.Products.Models {
		for _, v := range m.Variants {
			for _, c := range s.Line.Products.Colours {
				if pv, ok := sup.PartVariant(m.Code, v.Name, c); ok {
					out = append(out, pv)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// otherVariant picks a variant other than want, by seq.
func otherVariant(all []string, want string, seq int64) string {
	var others []string
	for _, v := range all {
		if v != want {
			others = append(others, v)
		}
	}
	if len(others) == 0 {
		return ""
	}
	return others[int(seq)%len(others)]
}

// sleepCtx waits d or until ctx is done; it reports whether ctx is live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
