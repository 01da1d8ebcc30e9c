package cli

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
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/simulator"
	"github.com/nats-io/nats.go/jetstream"
)

// JISWrongRateDefault is the share of parts a simulated JIS supplier
// delivers in the wrong variant (the install station finds them).
const JISWrongRateDefault = 0.01

// simSuppliers are the simulated JIS suppliers of `up --orders`: each
// follows its broadcast subject with a durable consumer, builds the part
// the broadcast asks for — now and then, at seeded points, a wrong
// variant — and delivers it to the plant's receiving dock, in broadcast
// order. They stand for the suppliers' own systems, outside the MES.
type simSuppliers struct {
	lc        *line.Config
	js        jetstream.JetStream
	plant     *simulator.Plant
	seed      int64
	wrongRate float64
	log       *slog.Logger
}

// run runs one goroutine per supplier until ctx is done.
func (s *simSuppliers) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sup := range s.lc.Broadcast.Suppliers {
		wg.Go(func() { s.supply(ctx, sup) })
	}
	wg.Wait()
}

func (s *simSuppliers) supply(ctx context.Context, sup line.Supplier) {
	log := s.log.With("component", "supplier", "supplier", sup.Name)
	var cons jetstream.Consumer
	for cons == nil {
		if err := streams.EnsureBroadcast(ctx, s.js, 1); err == nil {
			c, err := s.js.CreateOrUpdateConsumer(ctx, event.BroadcastStream, jetstream.ConsumerConfig{
				Durable: "supplier-" + sup.Name, FilterSubject: event.BroadcastSubject(s.lc.Plant, s.lc.Line, sup.Name),
				AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1, // one at a time: in broadcast order
			})
			if err == nil {
				cons = c
				break
			}
			log.Warn("supplier cannot follow its broadcast; retrying", "err", err)
		}
		if !sleepCtx(ctx, time.Second) {
			return
		}
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
				err := s.plant.Deliver(part)
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
func (s *simSuppliers) wrong(supplier string, seq int64) bool {
	if s.wrongRate <= 0 {
		return false
	}
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(s.seed))
	h.Write(b[:])
	h.Write([]byte(supplier))
	binary.LittleEndian.PutUint64(b[:], uint64(seq))
	h.Write(b[:])
	return float64(h.Sum64()%1_000_000)/1_000_000 < s.wrongRate
}

// variants returns every part variant the supplier makes.
func (s *simSuppliers) variants(sup line.Supplier) []string {
	var out []string
	for _, m := range s.lc.Products.Models {
		for _, v := range m.Variants {
			for _, c := range s.lc.Products.Colours {
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
