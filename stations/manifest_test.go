package stations_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/testplc"
	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/simulator"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestAgentCarriesOutManifestRequests: the framing station's agent writes
// the cars of a manifest request into the PLC's free slots (over OPC UA, on
// the simulator in manifest mode), skips cars the PLC holds or framed,
// refuses an invalid VIN naming its seq, and reports what the PLC holds.
func TestAgentCarriesOutManifestRequests(t *testing.T) {
	ctx := t.Context()
	quiet := slog.New(slog.DiscardHandler)
	plant, err := simulator.New(simulator.Config{Plant: "US1", Line: "L1", Dir: filepath.Join(t.TempDir(), "plant"), Seed: 1,
		Manifest: true, ManifestSlots: 3, Cars: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := plant.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plant.Stop() })
	lc := testplc.SimLine(t, plant, "W01")
	b, err := broker.Start(broker.Config{StoreDir: filepath.Join(t.TempDir(), "nats"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	nc, err := nats.Connect(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	agent, err := stations.NewAgent(stations.AgentConfig{Line: lc, Publisher: streams.NewPublisher(js), Logger: quiet, Commands: nc})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	runCtx, cancel := context.WithCancel(ctx)
	go func() { done <- agent.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	car := func(seq int64) event.ManifestCar {
		v, err := vin.Make("7KL", "KV22W", 2027, 'U', int(seq))
		if err != nil {
			t.Fatal(err)
		}
		return event.ManifestCar{Seq: seq, VIN: v, Model: "KV", Variant: "2WD", Colour: "red", Options: []string{}}
	}
	request := func(cars ...event.ManifestCar) event.ManifestReply {
		t.Helper()
		data, _ := json.Marshal(event.ManifestRequest{Cars: cars})
		for {
			msg, err := nc.RequestWithContext(ctx, event.ManifestSubject("US1", "L1", "W01"), data)
			if err == nats.ErrNoResponders {
				time.Sleep(20 * time.Millisecond) // the agent is still subscribing
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			var rep event.ManifestReply
			if err := json.Unmarshal(msg.Data, &rep); err != nil {
				t.Fatal(err)
			}
			return rep
		}
	}

	// Cars: 1 lets the plant frame seq 1 only; the others stay in slots.
	rep := request(car(1), car(2), car(3), car(4))
	if rep.Error != "" || !slices.Equal(rep.Written, []int64{1, 2, 3}) || rep.Slots != 3 {
		t.Fatalf("first request: %+v, want seqs 1-3 written into the 3 slots", rep)
	}
	// The plant frames seq 1 and frees its slot; asking again writes seq 4
	// only and never a car twice.
	for {
		rep = request(car(1), car(2), car(3), car(4))
		if rep.LastSeq == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rep.Error != "" || !slices.Equal(rep.Loaded, []int64{2, 3, 4}) || slices.Contains(rep.Written, 1) || slices.Contains(rep.Written, 2) {
		t.Fatalf("after framing seq 1: %+v, want slots 2, 3, 4 and nothing written twice", rep)
	}
	// An invalid VIN is refused, named by its seq, and nothing is written.
	bad := car(5)
	bad.VIN = bad.VIN[:8] + "X" + bad.VIN[9:]
	if rep := request(bad); !strings.Contains(rep.Error, "seq 5") || len(rep.Written) != 0 {
		t.Errorf("bad VIN: %+v, want an error naming seq 5 and nothing written", rep)
	}
}
