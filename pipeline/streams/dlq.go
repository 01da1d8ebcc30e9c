package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is one message the tracker could not use, as kept in the
// dead-letter stream: the original body and subject, why, and when.
type DeadLetter struct {
	// Seq is its sequence number in the dead-letter stream.
	Seq uint64 `json:"seq"`
	// Subject is the original subject (keiline.<plant>.<line>.<station>.<kind>).
	Subject string    `json:"subject"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	// EventID is the event id the body claims, when it decodes that far.
	EventID string `json:"event_id,omitempty"`
	Body    []byte `json:"body"`
}

// ErrNoDeadLetter is returned for a sequence number the dead-letter stream
// does not hold (never, or already replayed or purged).
var ErrNoDeadLetter = errors.New("no such dead letter")

// DeadLetters lists the dead letters from sequence number from on (0: the
// first), at most limit (0: all).
func DeadLetters(ctx context.Context, js jetstream.JetStream, from uint64, limit int) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, event.DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("dead letters: stream %s: %w", event.DeadLetterStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	seq := max(from, info.State.FirstSeq)
	for seq <= info.State.LastSeq && (limit == 0 || len(out) < limit) {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(event.DeadLetterPrefix+">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dead letters: from seq %d: %w", seq, err)
		}
		out = append(out, deadLetterOf(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// GetDeadLetter returns the dead letter seq, or ErrNoDeadLetter.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) (DeadLetter, error) {
	s, err := js.Stream(ctx, event.DeadLetterStream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: stream %s: %w", seq, event.DeadLetterStream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, ErrNoDeadLetter)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return deadLetterOf(m), nil
}

func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetter {
	d := DeadLetter{Seq: m.Sequence, Subject: m.Header.Get(event.HeaderSubject), Reason: m.Header.Get(event.HeaderReason), At: m.Time, Body: m.Data}
	if d.Subject == "" {
		d.Subject = strings.TrimPrefix(m.Subject, event.DeadLetterPrefix)
	}
	if ev, err := event.DecodeFor(m.Data, event.IdentityAny); err == nil {
		d.EventID = ev.ID
	} else if id := looseID(m.Data); id != "" {
		d.EventID = id
	}
	return d
}

// looseID digs the "id" out of a body that does not decode as an event.
func looseID(b []byte) string {
	const key = `"id":"`
	s := string(b)
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	s = s[i+len(key):]
	if j := strings.IndexByte(s, '"'); j > 0 && j <= 256 {
		return s[:j]
	}
	return ""
}

// Replay publishes dead letter seq again, unchanged, on its original
// subject, so the tracker takes it through the normal path (after the line
// config or the tracker was fixed), and then removes it from the
// dead-letter stream. Its message id is made from the dead letter's
// sequence number, not the event id (the event stream remembers the
// original publish of that id for its duplicate window and would drop the
// replay): a replay repeated is stored once, and the tracker records an
// event id only once anyway. If the tracker still cannot use it, it is
// dead-lettered again, with a new sequence number. It returns the
// replayed dead letter.
func Replay(ctx context.Context, js jetstream.JetStream, seq uint64) (DeadLetter, error) {
	d, err := GetDeadLetter(ctx, js, seq)
	if err != nil {
		return d, err
	}
	if !strings.HasPrefix(d.Subject, "keiline.") {
		return d, fmt.Errorf("dead letter %d: original subject %q is not an event subject", seq, d.Subject)
	}
	id := "dlq-replay." + strconv.FormatUint(seq, 10)
	msg := &nats.Msg{Subject: d.Subject, Data: d.Body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	pctx, cancel := context.WithTimeout(ctx, PublishTimeoutDefault)
	defer cancel()
	if _, err := js.PublishMsg(pctx, msg, jetstream.WithExpectStream(event.StreamName)); err != nil {
		return d, fmt.Errorf("dead letter %d: replay on %s: %w", seq, d.Subject, err)
	}
	if err := removeDeadLetter(ctx, js, seq); err != nil {
		return d, fmt.Errorf("dead letter %d: replayed as %s, but: %w", seq, id, err)
	}
	return d, nil
}

// Purge removes dead letter seq for good: a message that was never an
// event of this plant (a test publisher, garbage).
func Purge(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	if _, err := GetDeadLetter(ctx, js, seq); err != nil {
		return err
	}
	return removeDeadLetter(ctx, js, seq)
}

func removeDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	s, err := js.Stream(ctx, event.DeadLetterStream)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("remove dead letter %d: %w", seq, err)
	}
	return nil
}
