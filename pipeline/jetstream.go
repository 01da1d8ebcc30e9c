package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream and subject names.
const (
	// StreamName is the stream that captures every build event.
	StreamName = "KEILINE"
	// SubjectAll is what StreamName captures.
	SubjectAll = "keiline.>"
	// DeadLetterStream keeps messages the tracker could not use.
	DeadLetterStream = "KEILINE_DLQ"
	// DeadLetterPrefix starts every dead-letter subject; the original
	// subject follows it.
	DeadLetterPrefix = "keiline_dlq."
	// DuplicateWindowDefault is how long JetStream remembers a Nats-Msg-Id.
	// The tracker is idempotent beyond it.
	DuplicateWindowDefault = 10 * time.Minute
	// HeaderReason says why a message was dead-lettered.
	HeaderReason = "Keiline-Reason"
	// HeaderSubject is the dead-lettered message's original subject.
	HeaderSubject = "Keiline-Subject"
	// DeadLetterBatchMax is the most dead letters stored in one atomic
	// batch: nats-server's default limit on an atomic batch.
	DeadLetterBatchMax = 1000
	// DeadLetterTimeout bounds the wait for the dead-letter stream to
	// store a batch of dead letters.
	DeadLetterTimeout = 10 * time.Second
)

// The headers of JetStream's atomic batch publish (nats-server 2.12 and
// later).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// EnsureStreams creates or updates the event stream and the dead-letter
// stream: file storage, a duplicate window, limits retention; the
// dead-letter stream takes atomic batches.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas < 1 {
		replicas = 1
	}
	for _, cfg := range []jetstream.StreamConfig{
		{
			Name:        StreamName,
			Description: "keiline build events",
			Subjects:    []string{SubjectAll},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  DuplicateWindowDefault,
			MaxAge:      30 * 24 * time.Hour,
			Replicas:    replicas,
		},
		{
			Name:        DeadLetterStream,
			Description: "keiline messages the tracker could not use, with the reason",
			Subjects:    []string{DeadLetterPrefix + ">"},
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

// Publisher publishes events to JetStream and returns once the stream
// has stored them.
type Publisher struct {
	js jetstream.JetStream
	// Timeout bounds one publish. Defaults to 5 s.
	Timeout time.Duration
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher {
	return &Publisher{js: js, Timeout: 5 * time.Second}
}

// Publish sends ev on its subject with Nats-Msg-Id set to its id and waits
// for the stream's ack. A duplicate (already stored) is success.
func (p *Publisher) Publish(ctx context.Context, ev *Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("event %s: encode: %w", ev.ID, err)
	}
	pctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	msg := &nats.Msg{Subject: Subject(ev.Plant, ev.Line, ev.Station, ev.Kind), Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if _, err := p.js.PublishMsg(pctx, msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(StreamName)); err != nil {
		return fmt.Errorf("event %s: publish: %w", ev.ID, err)
	}
	return nil
}
