package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var route = pipeline.Route{Plant: "US1", Line: "L1", Stations: []pipeline.RouteStation{
	{ID: "W01"}, {ID: "W02"}, {ID: "C01"}, {ID: "R01", Optional: true}, {ID: "Q05"}, {ID: "S01"},
}}

// env is a real nats-server with JetStream and a real PostgreSQL database.
type env struct {
	t     testing.TB
	js    jetstream.JetStream
	store *schema.Store
	pub   *streams.Publisher
}

func newEnv(t testing.TB) *env {
	t.Helper()
	b, err := broker.Start(broker.Config{StoreDir: t.TempDir()})
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
	store, err := schema.Open(t.Context(), pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := streams.Ensure(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, js: js, store: store, pub: streams.NewPublisher(js)}
}

// run starts a tracker and returns it with a stop function that waits for it.
func (e *env) run() (*pipeline.Tracker, func()) {
	return e.runBatch(16)
}

// runBatch is run with a batch size.
func (e *env) runBatch(size int) (*pipeline.Tracker, func()) {
	e.t.Helper()
	return e.runWith(pipeline.TrackerConfig{Route: route, BatchSize: size})
}

// runWith starts a tracker of cfg on the env's store and stream; stop
// stops it.
func (e *env) runWith(cfg pipeline.TrackerConfig) (tr *pipeline.Tracker, stop func()) {
	e.t.Helper()
	cfg.Store, cfg.JetStream = e.store, e.js
	tr, err := pipeline.NewTracker(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := tr.Setup(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.t.Context())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	return tr, func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("tracker: %v", err)
		}
	}
}

// drain waits until the tracker has acknowledged every message.
func drain(t testing.TB, tr *pipeline.Tracker) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := tr.Pending(t.Context())
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tracker still has %d messages pending (err %v)", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// t0 is the first event's time in these tests: an hour ago, so that the
// record's partitions are the ones a live line needs.
var t0 = time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)

func mkVIN(t testing.TB, serial int) string {
	v, err := vin.Make("7KL", "KW1NA", 2027, 'U', serial)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func cycleEvent(t *testing.T, station, v string, counter uint32, at time.Time, result string, joints ...event.Joint) *event.Event {
	t.Helper()
	c := &event.Cycle{Counter: counter, Result: result, Model: "KW", Variant: "NA", Colour: "mint",
		Parts:  []event.Part{{PartNumber: "P-" + station, Serial: fmt.Sprintf("S-%s-%d", station, counter), Lot: "L1", Supplier: "SUP"}},
		Joints: joints, Tests: []event.Test{{Name: "gap", Value: new(3.1), Unit: "mm", Low: new(2.5), High: new(3.5), OK: new(true)}}}
	if c.Joints == nil {
		c.Joints = []event.Joint{}
	}
	ev, err := event.NewEvent("US1", "L1", station, event.KindCycle, v, 0, uint64(counter), at, at, c)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (e *env) publish(evs ...*event.Event) {
	e.t.Helper()
	for _, ev := range evs {
		if err := e.pub.Publish(e.t.Context(), ev); err != nil {
			e.t.Fatal(err)
		}
	}
}

// publishRaw publishes body on subject without a Nats-Msg-Id, so JetStream
// does not deduplicate it: only the tracker can.
func (e *env) publishRaw(subject string, body []byte) {
	e.t.Helper()
	if _, err := e.js.Publish(e.t.Context(), subject, body); err != nil {
		e.t.Fatal(err)
	}
}

func count(t testing.TB, store *schema.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := store.Pool().QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestTrackerRecordsEachEventOnce(t *testing.T) {
	e := newEnv(t)
	v := mkVIN(t, 1)
	w01 := cycleEvent(t, "W01", v, 1, t0, "OK")
	e.publish(w01, cycleEvent(t, "W02", v, 1, t0.Add(time.Minute), "OK"))
	// The same cycle again, past JetStream's duplicate window (no msg id):
	// the tracker must not record it twice.
	body, _ := json.Marshal(w01)
	e.publishRaw(event.Subject("US1", "L1", "W01", "cycle"), body)
	tr, stop := e.run()
	drain(t, tr)
	// And once more after a restart of the tracker.
	stop()
	e.publishRaw(event.Subject("US1", "L1", "W01", "cycle"), body)
	tr, stop = e.run()
	defer stop()
	drain(t, tr)

	if n := count(t, e.store, `SELECT count(*) FROM event_log`); n != 2 {
		t.Errorf("event_log has %d rows, want 2", n)
	}
	if n := count(t, e.store, `SELECT count(*) FROM station_visits WHERE vin = $1`, v); n != 2 {
		t.Errorf("station_visits has %d rows, want 2", n)
	}
	if n := count(t, e.store, `SELECT count(*) FROM installed_parts WHERE vin = $1`, v); n != 2 {
		t.Errorf("installed_parts has %d rows, want 2", n)
	}
	if n := count(t, e.store, `SELECT count(*) FROM holds`); n != 0 {
		t.Errorf("holds = %d, want 0", n)
	}
	if st := tr.Stats(); st.Duplicates != 1 || st.Recorded != 0 {
		t.Errorf("second tracker stats = %+v, want 1 duplicate and nothing recorded", st)
	}
	n, problem, err := e.store.VerifyChain(t.Context())
	if err != nil || problem != nil || n != 2 {
		t.Fatalf("VerifyChain = %d, %v, %v", n, problem, err)
	}
}

func TestTrackerHoldsNOKAndRouteViolations(t *testing.T) {
	e := newEnv(t)
	ok := event.Joint{Joint: "J1", Tool: "T1", TorqueNm: new(55.1), AngleDeg: new(40.0), OK: new(true)}
	nok := event.Joint{Joint: "J2", Tool: "T1", TorqueNm: new(70.3), AngleDeg: new(41.0), OK: new(false)}
	nokCar, skipCar, backCar, lateCar, reordered := mkVIN(t, 10), mkVIN(t, 11), mkVIN(t, 12), mkVIN(t, 13), mkVIN(t, 14)
	e.publish(
		// NOK at C01, repaired at R01: the hold opens, then closes.
		cycleEvent(t, "W01", nokCar, 1, t0, "OK"),
		cycleEvent(t, "W02", nokCar, 1, t0.Add(1*time.Minute), "OK"),
		cycleEvent(t, "C01", nokCar, 1, t0.Add(2*time.Minute), "NOK", ok, nok),
		cycleEvent(t, "R01", nokCar, 1, t0.Add(3*time.Minute), "OK"),
		cycleEvent(t, "Q05", nokCar, 1, t0.Add(4*time.Minute), "OK"),
		// Skips W02.
		cycleEvent(t, "W01", skipCar, 2, t0, "OK"),
		cycleEvent(t, "C01", skipCar, 2, t0.Add(2*time.Minute), "OK"),
		// Arrives at W02 after C01: out of order, and must not move back.
		cycleEvent(t, "W01", backCar, 3, t0, "OK"),
		cycleEvent(t, "W02", backCar, 3, t0.Add(1*time.Minute), "OK"),
		cycleEvent(t, "C01", backCar, 3, t0.Add(2*time.Minute), "OK"),
		cycleEvent(t, "W02", backCar, 4, t0.Add(3*time.Minute), "OK"),
		// First seen at C01.
		cycleEvent(t, "C01", lateCar, 5, t0.Add(2*time.Minute), "OK"),
		// W02's event arrives after C01's (a spooled agent): the skip hold
		// opens, then closes when W02 turns up; nothing is out of order.
		cycleEvent(t, "W01", reordered, 6, t0, "OK"),
		cycleEvent(t, "C01", reordered, 6, t0.Add(2*time.Minute), "OK"),
		cycleEvent(t, "W02", reordered, 6, t0.Add(1*time.Minute), "OK"),
	)
	tr, stop := e.run()
	defer stop()
	drain(t, tr)

	type hold struct {
		vin, kind, station string
		open               bool
		reason             string
	}
	rows, err := e.store.Pool().Query(t.Context(), `SELECT vin, kind, station, closed_at IS NULL, reason FROM holds ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (hold, error) {
		var h hold
		return h, r.Scan(&h.vin, &h.kind, &h.station, &h.open, &h.reason)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []hold{
		{nokCar, schema.HoldNOK, "C01", false, "NOK at C01: joint J2 70.30 Nm 41.0°"},
		{skipCar, schema.HoldRoute, "W02", true, "skipped W02: seen at C01 after W01"},
		{backCar, schema.HoldRoute, "W02", true, "out of order: cycle at W02 after C01"},
		{lateCar, schema.HoldRoute, "W01", true, "skipped W01: first seen at C01"},
		{lateCar, schema.HoldRoute, "W02", true, "skipped W02: first seen at C01"},
		{reordered, schema.HoldRoute, "W02", false, "skipped W02: seen at C01 after W01"},
	}
	if len(got) != len(want) {
		t.Fatalf("holds = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("hold %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	tc, err := e.store.Trace(t.Context(), backCar)
	if err != nil {
		t.Fatal(err)
	}
	if tc.Vehicle.LastStation != "C01" {
		t.Errorf("out-of-order car moved back to %s, want it to stay at C01", tc.Vehicle.LastStation)
	}
}

func TestTrackerDeadLettersBadMessages(t *testing.T) {
	e := newEnv(t)
	good := cycleEvent(t, "W01", mkVIN(t, 20), 1, t0, "OK")
	unknown := cycleEvent(t, "X99", mkVIN(t, 21), 1, t0, "OK")
	unknownBody, _ := json.Marshal(unknown)
	wrong := []byte(mkVIN(t, 22))
	wrong[8] = map[bool]byte{true: '1', false: '2'}[wrong[8] != '1'] // a wrong check digit
	badVIN := cycleEvent(t, "W02", string(wrong), 7, t0, "OK")
	badVINBody, _ := json.Marshal(badVIN)
	e.publishRaw("keiline.US1.L1.W01.cycle", []byte(`{"version":1,"id":`))
	e.publishRaw("keiline.junk", []byte(`not json at all`))
	e.publishRaw(event.Subject("US1", "L1", "X99", "cycle"), unknownBody)
	e.publishRaw(event.Subject("US1", "L1", "W02", "cycle"), badVINBody)
	e.publish(good)
	tr, stop := e.run()
	defer stop()
	drain(t, tr)

	if st := tr.Stats(); st.DeadLettered != 4 || st.Recorded != 1 {
		t.Fatalf("stats = %+v, want 4 dead-lettered and 1 recorded", st)
	}
	if n := count(t, e.store, `SELECT count(*) FROM event_log`); n != 1 {
		t.Errorf("event_log has %d rows, want only the good event", n)
	}
	got := deadLetters(t, e)
	for subj, want := range map[string]struct{ reason, body string }{
		"keiline.US1.L1.W01.cycle": {"malformed event", `{"version":1,"id":`},
		"keiline.junk":             {"malformed event", "not json at all"},
		"keiline.US1.L1.X99.cycle": {`unknown station "X99"`, string(unknownBody)},
		"keiline.US1.L1.W02.cycle": {"check digit", string(badVINBody)},
	} {
		dl, ok := got[subj]
		if !ok {
			t.Errorf("no dead letter of %s", subj)
			continue
		}
		if !strings.Contains(dl.reason, want.reason) {
			t.Errorf("dead letter of %s: reason %q, want it to mention %q", subj, dl.reason, want.reason)
		}
		if dl.body != want.body {
			t.Errorf("dead letter of %s: body %q, want the message's own %q", subj, dl.body, want.body)
		}
		if dl.subject != event.DeadLetterPrefix+subj {
			t.Errorf("dead letter of %s on subject %s, want %s", subj, dl.subject, event.DeadLetterPrefix+subj)
		}
		if dl.n != 1 {
			t.Errorf("dead letter of %s stored %d times, want once", subj, dl.n)
		}
	}
	if len(got) != 4 {
		t.Errorf("dead letters of %d subjects, want 4", len(got))
	}
	// The four were stored as one atomic batch: one disk sync, not four.
	batches := map[string]bool{}
	for _, dl := range got {
		batches[dl.batch] = true
	}
	if len(batches) != 1 || batches[""] {
		t.Errorf("dead letters stored in batches %v, want one atomic batch", batches)
	}
}

// deadLetter is a message of the dead-letter stream.
type deadLetter struct {
	subject, reason, body, batch string
	// n counts the dead letters of the same original subject.
	n int
}

// deadLetters reads the dead-letter stream, by original subject.
func deadLetters(t *testing.T, e *env) map[string]deadLetter {
	t.Helper()
	s, err := e.js.Stream(t.Context(), event.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]deadLetter{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		subj := m.Header.Get(event.HeaderSubject)
		got[subj] = deadLetter{subject: m.Subject, reason: m.Header.Get(event.HeaderReason), body: string(m.Data),
			batch: m.Header.Get("Nats-Batch-Id"), n: got[subj].n + 1}
	}
	return got
}

// TestTrackerDeadLettersOnceAfterRedelivery: a tracker that stored dead
// letters but stopped before it acked the messages gets them again; the
// dead-letter stream then holds each message once, and the others of the
// batch are not lost with the duplicate.
func TestTrackerDeadLettersOnceAfterRedelivery(t *testing.T) {
	e := newEnv(t)
	subjects := []string{"keiline.US1.L1.W01.cycle", "keiline.US1.L1.W02.cycle", "keiline.US1.L1.C01.cycle"}
	for _, subj := range subjects {
		e.publishRaw(subj, []byte(`{"version":1,"id":`))
	}
	// The dead letter a tracker made of the second (stream sequence 2)
	// before it stopped: same subject, headers and message id.
	dl := &nats.Msg{Subject: event.DeadLetterPrefix + subjects[1], Data: []byte(`{"version":1,"id":`), Header: nats.Header{}}
	dl.Header.Set(event.HeaderReason, "malformed event: unexpected end of JSON input")
	dl.Header.Set(event.HeaderSubject, subjects[1])
	dl.Header.Set(jetstream.MsgIDHeader, "dlq.2")
	if _, err := e.js.PublishMsg(t.Context(), dl); err != nil {
		t.Fatal(err)
	}
	good := cycleEvent(t, "W01", mkVIN(t, 30), 1, t0, "OK")
	e.publish(good)
	tr, stop := e.run()
	defer stop()
	drain(t, tr)

	if st := tr.Stats(); st.DeadLettered != 3 || st.Recorded != 1 {
		t.Fatalf("stats = %+v, want 3 dead-lettered and 1 recorded", st)
	}
	got := deadLetters(t, e)
	for _, subj := range subjects {
		if got[subj].n != 1 || !strings.Contains(got[subj].reason, "malformed event") {
			t.Errorf("dead letter of %s: %+v, want it stored once with its reason", subj, got[subj])
		}
	}
	if len(got) != len(subjects) {
		t.Errorf("dead letters of %d subjects, want %d", len(got), len(subjects))
	}
}
