package stations_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/stations"
)

func TestSpoolKeepsOrderAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := stations.OpenSpool(stations.SpoolConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 5 {
		if err := s.Append(now, []byte(fmt.Sprintf("event-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := s.Peek(2)
	if err := s.Remove(first[0].Key); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = stations.OpenSpool(stations.SpoolConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != 4 {
		t.Fatalf("reopened spool has %d events, want 4", s.Len())
	}
	got, _ := s.Peek(10)
	var bodies []string
	for _, e := range got {
		bodies = append(bodies, string(e.Body))
	}
	if strings.Join(bodies, ",") != "event-1,event-2,event-3,event-4" {
		t.Fatalf("spool order after reopen = %v", bodies)
	}
}

func TestSpoolBounds(t *testing.T) {
	s, err := stations.OpenSpool(stations.SpoolConfig{Path: filepath.Join(t.TempDir(), "spool.db"), MaxBytes: 100, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	if err := s.Append(t0, make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(t0, make([]byte, 60)); !errors.Is(err, stations.ErrSpoolFull) {
		t.Fatalf("append over MaxBytes = %v, want ErrSpoolFull", err)
	}
	if err := s.Append(t0.Add(2*time.Hour), []byte("x")); !errors.Is(err, stations.ErrSpoolFull) {
		t.Fatalf("append with the oldest event past MaxAge = %v, want ErrSpoolFull", err)
	}
	if s.Len() != 1 {
		t.Fatalf("a refused append stored something: %d events", s.Len())
	}
}

// TestAgentRunsOnTheSpoolWhileNATSIsDown stops NATS for a stretch of
// production, keeps the line running on the spool, and checks that every
// cycle arrives once NATS is back, each station's in order.
func TestAgentRunsOnTheSpoolWhileNATSIsDown(t *testing.T) {
	dir := t.TempDir()
	r := newRigWith(t, rigOptions{cars: 36, speed: 300, spool: &stations.SpoolConfig{Path: filepath.Join(dir, "spool.db")}})
	waitStat := func(what string, cond func(framed, out int) bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st := r.plant.Stats()
			if cond(st.Framed, st.Out) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: plant %+v\nagent log:\n%s", what, st, r.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Stop NATS once the line is full, for at least 10 simulated minutes:
	// at a takt of 60 s the line ships a car a minute, so 10 cars must
	// leave the line while NATS is down.
	waitStat("a full line", func(_, out int) bool { return out >= 1 })
	r.broker.Shutdown()
	outAtStop := r.plant.Stats().Out
	waitStat("10 cars leaving the line while NATS is down", func(_, out int) bool { return out >= outAtStop+10 })
	b, err := broker.Start(r.nats)
	if err != nil {
		t.Fatal(err)
	}
	r.broker = b
	r.waitDone(t)
	checkAgainstTruth(t, r, 36)
	if !strings.Contains(r.logs.String(), "events go to the local spool") {
		t.Errorf("agent never said it spooled:\n%s", r.logs.String())
	}
	// Each station's cycles are in the stream in counter order.
	s, err := r.js.Stream(t.Context(), event.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(t.Context())
	last := map[string]uint32{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := event.Decode(m.Data)
		if ev.Kind != event.KindCycle {
			continue
		}
		c, _ := ev.Cycle()
		if c.Counter <= last[ev.Station] {
			t.Errorf("station %s: cycle %d arrived after %d", ev.Station, c.Counter, last[ev.Station])
		}
		last[ev.Station] = c.Counter
	}
}

// TestAgentStopsTheLineWhenTheSpoolIsFull fills a small spool while NATS
// is down: the agent stops acknowledging, the PLCs block with fault 900 and
// the line stops; once NATS is back the spool drains, the line resumes and
// no cycle is lost.
func TestAgentStopsTheLineWhenTheSpoolIsFull(t *testing.T) {
	dir := t.TempDir()
	r := newRigWith(t, rigOptions{cars: 12, speed: 300, spool: &stations.SpoolConfig{Path: filepath.Join(dir, "spool.db"), MaxBytes: 96 << 10}})
	deadline := time.Now().Add(2 * time.Minute)
	for r.plant.Stats().Framed < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no cars framed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.broker.Shutdown()
	// Wait until the line has stopped: some station blocked by fault 900
	// (results not acknowledged) and nothing framed for a while.
	blocked := func() bool {
		for _, s := range r.plant.Stats().Stations {
			if s.FaultCode == 900 {
				return true
			}
		}
		return false
	}
	for !blocked() || !strings.Contains(r.logs.String(), "SPOOL FULL") {
		if time.Now().After(deadline) {
			t.Fatalf("line did not stop on a full spool: %+v\n%s", r.plant.Stats(), r.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := r.plant.Stats()
	if stopped.Out >= 12 {
		t.Fatalf("every car left the line although the spool was full: %+v", stopped)
	}
	b, err := broker.Start(r.nats)
	if err != nil {
		t.Fatal(err)
	}
	r.broker = b
	r.waitDone(t)
	checkAgainstTruth(t, r, 12)
}
