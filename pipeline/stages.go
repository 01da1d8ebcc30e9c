package pipeline

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// stages are the tracker's goroutines around the gathering loop (Run's):
// a reader moves messages from the consumer to msgs; a committer commits
// each batch of usable events and passes its messages to the acker, which
// double-acks them; a dead-letterer stores the unusable messages' dead
// letters. Neither the good events nor the dead letters wait for the
// other, and each message is acked only once its own side is durable: a
// flood of bad messages costs the good events little more than the
// messages' delivery. The batch and dead-letter channels are unbuffered:
// a batch is handed over only when its stage is free, and grows until
// then.
type stages struct {
	it      jetstream.MessagesContext
	msgs    chan jetstream.Msg
	batches chan []item
	deads   chan []deadLetter
	// failed holds the error that stopped a stage.
	failed chan error

	reader, committer, deadLetterer, acker sync.WaitGroup
}

// start starts the stages on it; a stage that fails cancels ctx (cancel)
// after putting its error in failed. stop stops them.
func (t *Tracker) start(ctx context.Context, cancel context.CancelFunc, it jetstream.MessagesContext) *stages {
	st := &stages{it: it, msgs: make(chan jetstream.Msg, t.cfg.BatchSize), batches: make(chan []item),
		deads: make(chan []deadLetter), failed: make(chan error, 2)}
	acks := make(chan []jetstream.Msg, 2)
	fail := func(err error) {
		if ctx.Err() == nil {
			st.failed <- err
		}
		cancel()
	}
	st.reader.Go(func() {
		defer close(st.msgs)
		for {
			m, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					t.log.Error("consume stopped", "err", err)
				}
				return
			}
			select {
			case st.msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	})
	st.committer.Go(func() {
		defer close(acks)
		for items := range st.batches {
			done, err := t.commit(ctx, items)
			if err != nil {
				fail(err)
				for range st.batches { // undelivered messages are redelivered
				}
				return
			}
			acks <- done
		}
	})
	st.deadLetterer.Go(func() {
		for dead := range st.deads {
			if err := t.deadLetter(ctx, dead); err != nil {
				fail(err)
				for range st.deads {
				}
				return
			}
		}
	})
	st.acker.Go(func() {
		for ms := range acks {
			t.ack(ctx, ms)
		}
	})
	return st
}

// stop stops the consumer and waits for every stage to finish what it was
// handed; messages not yet handed over are redelivered.
func (st *stages) stop() {
	st.it.Stop()
	for range st.msgs { // unblock the reader
	}
	st.reader.Wait()
	close(st.batches)
	close(st.deads)
	st.committer.Wait()
	st.deadLetterer.Wait()
	st.acker.Wait()
}
