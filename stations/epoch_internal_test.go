package stations

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// TestCounterEpochs: what starts an epoch and what does not, kept in a
// real spool file across a writer stop and a reopen.
func TestCounterEpochs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	spool, err := OpenSpool(SpoolConfig{Path: path, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	store := newEpochStore(spool, log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.run(ctx)
	}()
	c, err := store.counter("Z99", epochCycle, log.With("station", "Z99"))
	if err != nil {
		t.Fatal(err)
	}
	see := func(counter uint64, want uint32) {
		t.Helper()
		got, err := c.of(counter)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("counter %d after %d: epoch %d, want %d", counter, c.mark.Last, got, want)
		}
		c.published(counter)
	}
	see(17, 0) // the first counter the agent sees: no reset, whatever it is
	see(17, 0) // unchanged: the same cycle shown again
	see(18, 0)
	see(1, 1) // went back
	see(0, 2) // again, to 0 (a PLC booting with counter 0)
	see(math.MaxUint32, 2)
	see(0, 3) // a UInt32 wrap
	see(65535, 3)
	see(0, 4) // a UInt16 wrap
	see(5, 4)
	if n := strings.Count(logs.String(), "PLC counter went back"); n != 4 {
		t.Errorf("%d new-epoch log lines, want 4:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "station=Z99 counter=CycleCounter last_published=18 counter_now=1 old_epoch=0 epoch=1") {
		t.Errorf("the new-epoch line does not name the station, the counters and the epochs:\n%s", logs.String())
	}

	// The writer stops; the spool reopened has the epoch and the last
	// counter published (written behind).
	cancel()
	<-done
	if err := spool.Close(); err != nil {
		t.Fatal(err)
	}
	spool, err = OpenSpool(SpoolConfig{Path: path, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	c2, err := newEpochStore(spool, log).counter("Z99", epochCycle, log)
	if err != nil {
		t.Fatal(err)
	}
	if !c2.known || c2.mark != (CounterMark{Epoch: 4, Last: 5}) {
		t.Errorf("reopened: %+v (known %v), want epoch 4, last 5", c2.mark, c2.known)
	}
	if e, _ := c2.of(5); e != 4 {
		t.Errorf("the same counter after a restart: epoch %d, want 4 (a redelivery)", e)
	}
	if e, _ := c2.of(2); e != 5 {
		t.Errorf("a counter lower after a restart: epoch %d, want 5", e)
	}
	other, err := newEpochStore(spool, log).counter("Z99", epochState, log)
	if err != nil {
		t.Fatal(err)
	}
	if other.known || other.mark != (CounterMark{}) {
		t.Errorf("Z99's StateCounter: %+v, want none kept", other.mark)
	}
}

// TestCounterEpochsWithoutSpool: in memory only, said once.
func TestCounterEpochsWithoutSpool(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	store := newEpochStore(nil, log)
	for _, st := range []string{"Z97", "Z98"} {
		c, err := store.counter(st, epochCycle, log)
		if err != nil {
			t.Fatal(err)
		}
		c.published(9)
		if e, _ := c.of(3); e != 1 {
			t.Errorf("%s: counter 3 after 9: epoch %d, want 1", st, e)
		}
	}
	store.run(t.Context()) // returns at once: nothing to write
	if n := strings.Count(logs.String(), "cannot be noticed"); n != 1 {
		t.Errorf("%d warnings that a reset across restarts cannot be noticed, want 1:\n%s", n, logs.String())
	}
}
