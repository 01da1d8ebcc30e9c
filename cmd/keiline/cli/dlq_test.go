package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgserver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDLQReplayAfterAFix: a cycle of a station the tracker's line config
// lacks is dead-lettered with its reason; keiline dlq list and show name
// it; once the config has the station, keiline dlq replay records it
// through the normal path exactly once, and a second replay of the same
// body changes nothing. purge removes a dead letter for good.
func TestDLQReplayAfterAFix(t *testing.T) {
	ctx := t.Context()
	b, err := broker.Start(broker.Config{StoreDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	nc, err := nats.Connect(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pgserver.Start(ctx, pgserver.Config{Dir: filepath.Join(t.TempDir(), "pg"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.WithoutCancel(ctx))
	if err := srv.CreateDatabase(ctx, "keiline"); err != nil {
		t.Fatal(err)
	}
	store, err := schema.Open(ctx, srv.URL("keiline"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	run := func(stationsOfLine ...string) (*pipeline.Tracker, func()) {
		r := pipeline.Route{Plant: "US1", Line: "L1"}
		for _, s := range stationsOfLine {
			r.Stations = append(r.Stations, pipeline.RouteStation{ID: s})
		}
		tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: r, Store: store, JetStream: js, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- tr.Run(rctx) }()
		return tr, func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting: %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	dlq := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runDLQ(ctx, append(args, "--nats", b.URL()), &out)
		return out.String(), err
	}
	visits := func(id string) int {
		var n int
		if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM station_visits WHERE event_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The line config lacks T02: its cycle is dead-lettered.
	tr, stop := run("T01")
	car, err := vin.Make("7KL", "KW1NA", 2027, 'U', 42)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	ev, err := event.NewEvent("US1", "L1", "T02", event.KindCycle, car, 0, 7, now, now,
		&event.Cycle{Counter: 7, Result: "OK", Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}})
	if err != nil {
		t.Fatal(err)
	}
	junk := &nats.Msg{Subject: "keiline.US1.L1.T01.cycle", Data: []byte(`{"version":1,"id":"truncated`)}
	if err := streams.NewPublisher(js).Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, junk); err != nil {
		t.Fatal(err)
	}
	waitFor("two dead letters", func() bool { return tr.Stats().DeadLettered == 2 })
	stop()

	out, err := dlq("list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "keiline.US1.L1.T02.cycle  "+ev.ID+"  event "+ev.ID+`: unknown station "T02"`) || !strings.Contains(out, "2 dead letter(s)") {
		t.Fatalf("dlq list does not show the dead letter with its subject, event and reason:\n%s", out)
	}
	ds, err := streams.DeadLetters(ctx, js, 0, 0)
	if err != nil || len(ds) != 2 {
		t.Fatalf("DeadLetters = %v, %v", ds, err)
	}
	seq := ds[0].Seq
	if ds[0].EventID != ev.ID {
		seq = ds[1].Seq
	}
	if out, err := dlq("show", u(seq)); err != nil || !strings.Contains(out, `"id":"`+ev.ID+`"`) {
		t.Fatalf("dlq show = %v:\n%s", err, out)
	}

	// The fix: the line config has T02. Replayed, the cycle is recorded once.
	tr, stop = run("T01", "T02")
	defer func() { stop() }()
	if out, err := dlq("replay", u(seq)); err != nil || !strings.Contains(out, "replayed on keiline.US1.L1.T02.cycle (event "+ev.ID+")") {
		t.Fatalf("dlq replay = %v:\n%s", err, out)
	}
	waitFor("the replayed cycle recorded", func() bool { return visits(ev.ID) == 1 })
	if _, err := dlq("replay", u(seq)); !errors.Is(err, streams.ErrNoDeadLetter) {
		t.Fatalf("a second replay of the same dead letter = %v, want ErrNoDeadLetter", err)
	}
	// The same body arriving again (a replay of a copy) is recorded once.
	again := &nats.Msg{Subject: ds[0].Subject, Data: ds[0].Body, Header: nats.Header{}}
	for _, d := range ds {
		if d.Seq == seq {
			again.Subject, again.Data = d.Subject, d.Body
		}
	}
	again.Header.Set(jetstream.MsgIDHeader, "another-replay")
	if _, err := js.PublishMsg(ctx, again); err != nil {
		t.Fatal(err)
	}
	waitFor("the copy consumed", func() bool { return tr.Stats().Duplicates >= 1 })
	if n := visits(ev.ID); n != 1 {
		t.Fatalf("event %s recorded %d times, want once", ev.ID, n)
	}

	// The junk is purged for good.
	if _, err := dlq("purge", "--all"); err == nil {
		t.Fatal("purge --all without --yes removed dead letters")
	}
	if out, err := dlq("purge", "--all", "--yes"); err != nil || !strings.Contains(out, "purged") {
		t.Fatalf("dlq purge --all --yes = %v:\n%s", err, out)
	}
	if ds, err := streams.DeadLetters(ctx, js, 0, 0); err != nil || len(ds) != 0 {
		t.Fatalf("after purge: %v, %v", ds, err)
	}
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }
