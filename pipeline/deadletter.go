package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// deadLetter is an unusable message and why.
type deadLetter struct {
	msg    jetstream.Msg
	reason string
}

// deadLetter moves unusable messages to the dead-letter stream with their
// reasons, then acks them so they do not block the stream. Each message
// keeps a dead letter of its own: its body, on keiline_dlq.<its subject>,
// with the reason and the subject in headers and a message id made from its
// stream sequence. The dead letters of a batch are stored as one atomic
// JetStream batch, which a server that syncs every write to disk syncs once
// rather than once a message: a flood of bad messages so costs little. Only
// once the stream has acknowledged them are the messages acked, with a plain
// ack: a redelivery only republishes a dead letter, which the dead-letter
// stream drops as a duplicate of its message id. A batch the stream refuses
// (a server without atomic batches, or a batch holding a dead letter already
// stored, as after a redelivery) is published again message by message.
func (t *Tracker) deadLetter(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	msgs := make([]*nats.Msg, len(dead))
	var firstSeq uint64
	for i, d := range dead {
		m := d.msg
		dl := &nats.Msg{Subject: event.DeadLetterPrefix + m.Subject(), Data: m.Data(), Header: nats.Header{}}
		dl.Header.Set(event.HeaderReason, d.reason)
		dl.Header.Set(event.HeaderSubject, m.Subject())
		if md, err := m.Metadata(); err == nil {
			// The stream sequence makes the dead letter's id deterministic.
			dl.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dlq.%d", md.Sequence.Stream))
			if i == 0 {
				firstSeq = md.Sequence.Stream
			}
		}
		msgs[i] = dl
	}
	for start := 0; start < len(msgs); start += DeadLetterBatchMax {
		chunk := msgs[start:min(start+DeadLetterBatchMax, len(msgs))]
		id := fmt.Sprintf("dlq.%d.%d.%d", firstSeq, start, time.Now().UnixNano())
		err := t.publishDeadBatch(ctx, id, chunk)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t.log.Warn("dead-letter batch refused; publishing its dead letters one by one", "count", len(chunk), "err", err)
		if err := t.publishDeadEach(ctx, chunk); err != nil {
			return err
		}
	}
	defer func() {
		for _, d := range dead {
			if err := d.msg.Ack(); err != nil && ctx.Err() == nil {
				t.log.Warn("ack of dead letter failed", "subject", d.msg.Subject(), "err", err)
			}
		}
	}()
	metricEventsIn.WithLabelValues("dead_letter").Add(float64(len(dead)))
	t.mu.Lock()
	t.stats.DeadLettered += int64(len(dead))
	now := time.Now()
	logIt := now.Sub(t.deadLogged) >= time.Second
	if logIt {
		t.deadLogged = now
	}
	t.mu.Unlock()
	if logIt {
		// At most one line a second: a flood must not flood the log too.
		t.log.Warn("messages dead-lettered", "count", len(dead), "subject", dead[0].msg.Subject(), "reason", dead[0].reason)
	}
	return nil
}

// publishDeadBatch publishes dead letters as the atomic batch id and
// returns once the dead-letter stream has stored all of them, or an error
// when it stored none.
func (t *Tracker) publishDeadBatch(ctx context.Context, id string, msgs []*nats.Msg) error {
	nc := t.cfg.JetStream.Conn()
	last := len(msgs) - 1
	for i, m := range msgs[:last] {
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		// Not acknowledged one by one: the stream checks the batch has
		// no gap when it commits.
		if err := nc.PublishMsg(m); err != nil {
			return fmt.Errorf("batch %s: %w", id, err)
		}
	}
	m := msgs[last]
	m.Header.Set(headerBatchID, id)
	m.Header.Set(headerBatchSeq, strconv.Itoa(last+1))
	m.Header.Set(headerBatchCommit, "1")
	rctx, cancel := context.WithTimeout(ctx, DeadLetterTimeout)
	defer cancel()
	resp, err := nc.RequestMsgWithContext(rctx, m)
	for _, m := range msgs { // a retry must not look like a batch
		m.Header.Del(headerBatchID)
		m.Header.Del(headerBatchSeq)
		m.Header.Del(headerBatchCommit)
	}
	if err != nil {
		return fmt.Errorf("batch %s: commit: %w", id, err)
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
		Batch string              `json:"batch"`
		Count int                 `json:"count"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("batch %s: commit: %w", id, err)
	}
	if ack.Error != nil {
		return fmt.Errorf("batch %s: commit: %w", id, ack.Error)
	}
	if ack.Batch != id || ack.Count != len(msgs) {
		// A server without atomic batches stores each message on its own
		// and acknowledges only the last.
		return fmt.Errorf("batch %s: commit acknowledged %d messages of batch %q, want %d", id, ack.Count, ack.Batch, len(msgs))
	}
	return nil
}

// publishDeadEach publishes dead letters one by one and returns once the
// dead-letter stream has stored each of them.
func (t *Tracker) publishDeadEach(ctx context.Context, msgs []*nats.Msg) error {
	rctx, cancel := context.WithTimeout(ctx, DeadLetterTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := t.cfg.JetStream.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("tracker: dead-letter %s: %w", m.Header.Get(event.HeaderSubject), err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("tracker: dead-letter %s: %w", msgs[i].Header.Get(event.HeaderSubject), err)
		case <-rctx.Done():
			return fmt.Errorf("tracker: dead-letter %s: %w", msgs[i].Header.Get(event.HeaderSubject), rctx.Err())
		}
	}
	return nil
}
