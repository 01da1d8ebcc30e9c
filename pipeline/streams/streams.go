// Package streams sets up the JetStream streams keiline's events travel on
// and publishes events to them: what a station agent needs of NATS, without
// the tracker or the record.
package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishTimeoutDefault bounds one Publisher.Publish.
const PublishTimeoutDefault = 5 * time.Second

// Ensure creates or updates the event stream and the dead-letter stream:
// file storage, a duplicate window, limits retention; the dead-letter
// stream takes atomic batches.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas < 1 {
		replicas = 1
	}
	for _, cfg := range []jetstream.StreamConfig{
		{
			Name:        event.StreamName,
			Description: "keiline build events",
			Subjects:    []string{event.SubjectAll},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  event.DuplicateWindowDefault,
			MaxAge:      30 * 24 * time.Hour,
			Replicas:    replicas,
		},
		{
			Name:        event.DeadLetterStream,
			Description: "keiline messages the tracker could not use, with the reason",
			Subjects:    []string{event.DeadLetterPrefix + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      365 * 24 * time.Hour,
			Replicas:    replicas,
			// The tracker stores each batch's dead letters at once.
			AllowAtomicPublish: true,
		},
	} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Check reports an error naming the first of the streams that does not
// exist: made by an admin identity at setup (keiline nats), a part with
// least privilege may only look at them.
func Check(ctx context.Context, js jetstream.JetStream, names ...string) error {
	for _, n := range names {
		if _, err := js.Stream(ctx, n); err != nil {
			return fmt.Errorf("stream %s: %w (an admin makes the streams: keiline nats, or keiline up)", n, err)
		}
	}
	return nil
}

// EnsureBroadcast creates or updates the JIS stream.
func EnsureBroadcast(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        event.BroadcastStream,
		Description: "keiline JIS broadcasts to suppliers",
		Subjects:    []string{event.BroadcastPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  event.DuplicateWindowDefault,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    max(replicas, 1),
	}); err != nil {
		return fmt.Errorf("stream %s: %w", event.BroadcastStream, err)
	}
	return nil
}

// Publisher publishes events to JetStream and returns once the stream
// has stored them.
type Publisher struct {
	js jetstream.JetStream
	// Timeout bounds one publish. Defaults to PublishTimeoutDefault.
	Timeout time.Duration
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{js: js, Timeout: PublishTimeoutDefault}
}

// Publish sends ev on its subject with Nats-Msg-Id set to its id and waits
// for the stream's ack. A duplicate (already stored) is success.
func (p *Publisher) Publish(ctx context.Context, ev *event.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("event %s: encode: %w", ev.ID, err)
	}
	pctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	msg := &nats.Msg{Subject: event.Subject(ev.Plant, ev.Line, ev.Station, ev.Kind), Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if _, err := p.js.PublishMsg(pctx, msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(event.StreamName)); err != nil {
		return fmt.Errorf("event %s: publish: %w", ev.ID, err)
	}
	return nil
}
