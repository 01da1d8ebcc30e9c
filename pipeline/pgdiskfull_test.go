package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/tmpfs"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgserver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lockedLog is a log sink the test reads while the tracker writes.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// carEvents returns the cycles of cars first..last through the route's
// mandatory stations, a minute apart from start.
func carEvents(t *testing.T, first, last int, start time.Time) []*event.Event {
	var evs []*event.Event
	for n := first; n <= last; n++ {
		at := start.Add(time.Duration(n) * time.Minute)
		for i, st := range []string{"W01", "W02", "C01", "Q05", "S01"} {
			evs = append(evs, cycleEvent(t, st, mkVIN(t, n), uint32(n), at.Add(time.Duration(i)*time.Second), "OK"))
		}
	}
	return evs
}

// TestTrackerWaitsWhenTheDatabaseDiskIsFull runs PostgreSQL (pgserver) on
// a small filesystem that really fills (a tmpfs, as root). The tracker's
// commits fail with "could not extend file …: No space left on device";
// it keeps retrying and acknowledges nothing it did not commit, so the
// events wait in the stream. Once space is freed every event is recorded
// once and the hash chain is intact.
func TestTrackerWaitsWhenTheDatabaseDiskIsFull(t *testing.T) {
	// initdb takes ~40 MB (three databases and a 16 MB WAL segment), the
	// keiline database and its schema ~15 MB more.
	disk := tmpfs.Mount(t, 112<<20)
	srv, err := pgserver.Start(t.Context(), pgserver.Config{Dir: filepath.Join(disk, "pg"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.WithoutCancel(t.Context())) })
	if err := srv.CreateDatabase(t.Context(), "keiline"); err != nil {
		t.Fatal(err)
	}
	dbURL := srv.URL("keiline")
	if err := schema.ProvisionLogins(t.Context(), dbURL, srv.PassFile()); err != nil {
		t.Fatal(err)
	}
	owner, err := schema.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	writer, err := schema.OpenAs(t.Context(), dbURL, schema.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(writer.Close)

	b, err := broker.Start(broker.Config{StoreDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
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
	if err := streams.Ensure(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, js: js, store: writer, pub: streams.NewPublisher(js)}
	logs := &lockedLog{}
	tr, stop := e.runWith(pipeline.TrackerConfig{Route: route, BatchSize: 16, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer stop()

	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.publish(carEvents(t, 1, 4, start)...)
	drain(t, tr)
	// A fresh WAL segment (16 MB, written in full when made), so that the
	// test's WAL fits in files that exist: a full disk then shows where a
	// plant sees it first, extending a table, not as a WAL PANIC.
	if _, err := owner.Pool().Exec(t.Context(), `SELECT pg_switch_wal()`); err != nil {
		t.Fatal(err)
	}
	e.publish(carEvents(t, 5, 5, start)...)
	drain(t, tr)
	before := count(t, owner, `SELECT count(*) FROM event_log`)

	free := tmpfs.Fill(t, disk)
	late := carEvents(t, 6, 25, start)
	e.publish(late...)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "could not extend file") || strings.Count(logs.String(), "record batch failed; retrying") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no retried commit failing for want of space:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "No space left on device") {
		t.Errorf("the tracker's error does not quote the disk's:\n%s", logs.String())
	}
	// Nothing acknowledged that is not committed: every event is either in
	// the log or still waiting in the stream. (The stream first: an event
	// acknowledged before the look was committed before the count.)
	c, err := js.Consumer(t.Context(), event.StreamName, "tracker")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	waiting := int(ci.NumPending) + ci.NumAckPending
	committed := count(t, owner, `SELECT count(*) FROM event_log`)
	if total := before + len(late); committed+waiting < total || waiting == 0 {
		t.Errorf("%d events committed and %d waiting in the stream, of %d published: want none acknowledged uncommitted, some waiting", committed, waiting, total)
	}

	free()
	drain(t, tr)
	want := before + len(late)
	if n := count(t, owner, `SELECT count(*) FROM event_log`); n != want {
		t.Errorf("event_log has %d rows after space was freed, want %d", n, want)
	}
	if n := count(t, owner, `SELECT count(DISTINCT event_id) FROM event_log`); n != want {
		t.Errorf("event_log has %d distinct events, want %d", n, want)
	}
	for _, ev := range late {
		if n := count(t, owner, `SELECT count(*) FROM event_log WHERE event_id = $1`, ev.ID); n != 1 {
			t.Errorf("event %s is in the log %d times, want once", ev.ID, n)
		}
	}
	rep, err := owner.Audit(t.Context(), schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != int64(want) || len(rep.Problems) > 0 {
		t.Errorf("audit: %d rows, problems %s; want %d rows, none", rep.Rows, fmt.Sprint(rep.Problems), want)
	}
}
