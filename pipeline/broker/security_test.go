package broker_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// forEachServer runs test against the embedded server and against a
// separate nats-server process started from WriteConfig's file.
func forEachServer(t *testing.T, test func(t *testing.T, r *rig)) {
	for _, s := range []struct {
		name  string
		start func(*testing.T) *rig
	}{{"embedded", startEmbedded}, {"process", startProcess}} {
		t.Run(s.name, func(t *testing.T) { test(t, s.start(t)) })
	}
}

func cycleEvent(t *testing.T, station string, counter uint32) *event.Event {
	t.Helper()
	now := time.Now()
	ev, err := event.NewEvent("US1", "L1", station, event.KindCycle, "", 0, uint64(counter), now, now, &event.Cycle{Counter: counter, Result: "OK"})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func rawEvent(t *testing.T, ev *event.Event) *nats.Msg {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: event.Subject(ev.Plant, ev.Line, ev.Station, ev.Kind), Data: b, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	return m
}

// streamMsgs returns the subjects stored in stream, read as the admin.
func (r *rig) streamSubjects(stream string) []string {
	r.t.Helper()
	js := r.js(r.conn("admin"))
	s, err := js.Stream(r.t.Context(), stream)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(r.t.Context(), seq)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, m.Subject)
	}
	return out
}

func TestRefusesUnauthenticatedClients(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		t.Run("no TLS", func(t *testing.T) {
			u, err := url.Parse(r.url)
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			info, err := br.ReadString('\n')
			if err != nil || !strings.Contains(info, `"tls_required":true`) {
				t.Fatalf("INFO %q (%v): want tls_required", info, err)
			}
			_, _ = c.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n"))
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			rest, _ := br.ReadString(0) // until the server closes
			if strings.Contains(rest, "PONG") {
				t.Errorf("a plain-text client got %q", rest)
			}
		})
		t.Run("unknown nkey", func(t *testing.T) {
			c := *r.creds("agent-W01")
			kp, err := nkeys.CreateUser()
			if err != nil {
				t.Fatal(err)
			}
			seed, _ := kp.Seed()
			c.NKeyFile = filepath.Join(t.TempDir(), "stranger.nk")
			if err := os.WriteFile(c.NKeyFile, seed, 0o600); err != nil {
				t.Fatal(err)
			}
			if nc, err := c.Connect(r.url, nats.NoReconnect()); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
				if nc != nil {
					nc.Close()
				}
				t.Errorf("a stranger's nkey: %v, want an authorization violation", err)
			}
		})
		t.Run("no client certificate", func(t *testing.T) {
			c := r.creds("agent-W01")
			nk, err := nats.NkeyOptionFromSeed(c.NKeyFile)
			if err != nil {
				t.Fatal(err)
			}
			if nc, err := nats.Connect(r.url, nk, nats.RootCAs(c.CAFile), nats.NoReconnect()); err == nil {
				nc.Close()
				t.Error("a client without a certificate connected")
			}
		})
		t.Run("certificate of another CA", func(t *testing.T) {
			_, other := provision(t)
			c := *r.creds("agent-W01")
			o := other.Credentials["agent-W01"]
			c.CertFile, c.KeyFile = o.CertFile, o.KeyFile
			if nc, err := c.Connect(r.url, nats.NoReconnect()); err == nil {
				nc.Close()
				t.Error("a certificate of another CA connected")
			}
		})
	})
}

func TestAgentPublishesOnlyItsStations(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		w01 := r.conn("agent-W01")
		forged := rawEvent(t, cycleEvent(t, "T02", 7))
		if err := w01.PublishMsg(forged); err != nil {
			t.Fatal(err)
		}
		w01.denied(t, forged.Subject)
		dl := &nats.Msg{Subject: event.DeadLetterPrefix + forged.Subject, Data: forged.Data}
		if err := w01.PublishMsg(dl); err != nil {
			t.Fatal(err)
		}
		w01.denied(t, dl.Subject)
		// Its own station's event, as the agent publishes it.
		own := cycleEvent(t, "W01", 1)
		if err := streams.NewPublisher(r.js(w01)).Publish(t.Context(), own); err != nil {
			t.Fatalf("agent W01 publishing its own event: %v", err)
		}
		got := r.streamSubjects(event.StreamName)
		if want := event.Subject("US1", "L1", "W01", event.KindCycle); len(got) != 1 || got[0] != want {
			t.Errorf("stream KEILINE holds %v, want only %s", got, want)
		}
		if got := r.streamSubjects(event.DeadLetterStream); len(got) != 0 {
			t.Errorf("stream KEILINE_DLQ holds %v, want nothing", got)
		}
	})
}

func TestAgentCannotReadEvents(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		w01 := r.conn("agent-W01")
		js := r.js(w01)
		w01.deniedCall(t, "$JS.API.CONSUMER.CREATE.KEILINE.spy.keiline.>", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, event.StreamName, jetstream.ConsumerConfig{Durable: "spy", FilterSubject: event.SubjectAll})
			return err
		})
		w01.deniedCall(t, "$JS.API.DIRECT.GET.KEILINE", func(ctx context.Context) error {
			_, err := w01.RequestWithContext(ctx, "$JS.API.DIRECT.GET.KEILINE", []byte(`{"seq":1}`))
			return err
		})
		w01.deniedCall(t, "$JS.API.STREAM.MSG.GET.KEILINE", func(ctx context.Context) error {
			_, err := w01.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KEILINE", []byte(`{"seq":1}`))
			return err
		})
		for _, subj := range []string{event.SubjectAll, "_INBOX.agent-T02.>", "_INBOX.>"} {
			if _, err := w01.SubscribeSync(subj); err != nil {
				t.Fatal(err)
			}
			w01.denied(t, subj)
		}
	})
}

func TestManifestRequestReachesOnlyItsAgent(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		w01 := r.conn("agent-W01")
		subj := event.ManifestSubject("US1", "L1", "W01")
		sub, err := w01.QueueSubscribe(subj, "keiline-agent", func(m *nats.Msg) { _ = m.Respond([]byte(`{"last_seq":4}`)) })
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := w01.Flush(); err != nil {
			t.Fatal(err)
		}
		tr := r.conn("tracker-L1")
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		rep, err := tr.RequestWithContext(ctx, subj, []byte(`{"cars":[]}`))
		if err != nil || string(rep.Data) != `{"last_seq":4}` {
			t.Fatalf("tracker L1's manifest request: %v %v", rep, err)
		}
		t02 := r.conn("agent-T02")
		if _, err := t02.QueueSubscribe(subj, "keiline-agent", func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		t02.denied(t, subj)
		l2 := r.conn("tracker-L2")
		if err := l2.Publish(subj, []byte(`{"cars":[]}`)); err != nil {
			t.Fatal(err)
		}
		l2.denied(t, subj)
	})
}

func TestTrackerConsumesOnlyItsLine(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		if err := streams.NewPublisher(r.js(r.conn("agent-W01"))).Publish(t.Context(), cycleEvent(t, "W01", 1)); err != nil {
			t.Fatal(err)
		}
		tr := r.conn("tracker-L1")
		js := r.js(tr)
		own := broker.TrackerConsumer("US1", "L1")
		for _, tc := range []struct {
			durable, filter string
		}{
			{own, broker.TrackerFilter("US1", "L2")},
			{own, event.SubjectAll},
			{broker.TrackerConsumer("US1", "L2"), broker.TrackerFilter("US1", "L2")},
		} {
			tr.deniedCall(t, "$JS.API.CONSUMER.CREATE.KEILINE."+tc.durable+"."+tc.filter, func(ctx context.Context) error {
				_, err := js.CreateOrUpdateConsumer(ctx, event.StreamName, jetstream.ConsumerConfig{Durable: tc.durable, FilterSubject: tc.filter, AckPolicy: jetstream.AckExplicitPolicy})
				return err
			})
		}
		tr.deniedCall(t, "$JS.API.STREAM.UPDATE.KEILINE", func(ctx context.Context) error {
			return streams.Ensure(ctx, js, 1)
		})
		// Its own durable consumer on its line, as the tracker makes it.
		cons, err := js.CreateOrUpdateConsumer(t.Context(), event.StreamName, jetstream.ConsumerConfig{Durable: own,
			FilterSubject: broker.TrackerFilter("US1", "L1"), AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy})
		if err != nil {
			t.Fatalf("tracker L1's own consumer: %v", err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := m.DoubleAck(t.Context()); err != nil {
				t.Errorf("double ack: %v", err)
			}
		}
		if n != 1 {
			t.Fatalf("tracker L1 fetched %d events, want 1 (%v)", n, batch.Error())
		}
		info, err := cons.Info(t.Context())
		if err != nil || info.AckFloor.Stream != 1 || info.NumAckPending != 0 {
			t.Errorf("consumer info after the ack: %+v %v", info, err)
		}
		// Dead letters and JIS broadcasts of its own line only.
		for _, tc := range []struct {
			subj, stream string
		}{
			{event.DeadLetterPrefix + "keiline.US1.L1.W01.cycle", event.DeadLetterStream},
			{event.BroadcastSubject("US1", "L1", "seats"), event.BroadcastStream},
		} {
			ack, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: tc.subj, Data: []byte("{}")}, jetstream.WithExpectStream(tc.stream))
			if err != nil || ack.Stream != tc.stream {
				t.Errorf("tracker L1 publishing %s: %v %v", tc.subj, ack, err)
			}
		}
		for _, subj := range []string{event.DeadLetterPrefix + "keiline.US1.L2.W01.cycle", event.BroadcastSubject("US1", "L2", "seats")} {
			if err := tr.Publish(subj, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			tr.denied(t, subj)
		}
		// Line 2's tracker has its consumer; line 1's cannot pull from it.
		if _, err := r.js(r.conn("tracker-L2")).CreateOrUpdateConsumer(t.Context(), event.StreamName, jetstream.ConsumerConfig{
			Durable: broker.TrackerConsumer("US1", "L2"), FilterSubject: broker.TrackerFilter("US1", "L2"), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
		next := "$JS.API.CONSUMER.MSG.NEXT.KEILINE." + broker.TrackerConsumer("US1", "L2")
		tr.deniedCall(t, next, func(ctx context.Context) error {
			_, err := tr.RequestWithContext(ctx, next, []byte(`{"batch":1}`))
			return err
		})
	})
}

func TestDashboardReadsAndNeverPublishes(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		tjs := r.js(r.conn("tracker-L1"))
		dlSubj := event.DeadLetterPrefix + "keiline.US1.L1.W01.cycle"
		if _, err := tjs.PublishMsg(t.Context(), &nats.Msg{Subject: dlSubj, Data: []byte("bad")}); err != nil {
			t.Fatal(err)
		}
		if _, err := tjs.CreateOrUpdateConsumer(t.Context(), event.StreamName, jetstream.ConsumerConfig{
			Durable: broker.TrackerConsumer("US1", "L1"), FilterSubject: broker.TrackerFilter("US1", "L1"), AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
		sup := broker.SupplierConsumer("US1", "L1", "seats")
		if _, err := r.js(r.conn("supplier-seats")).CreateOrUpdateConsumer(t.Context(), event.BroadcastStream, jetstream.ConsumerConfig{
			Durable: sup, FilterSubject: event.BroadcastSubject("US1", "L1", "seats"), AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1}); err != nil {
			t.Fatalf("the supplier's own consumer: %v", err)
		}

		d := r.conn("dashboard")
		for _, subj := range []string{event.Subject("US1", "L1", "W01", event.KindCycle), dlSubj, event.BroadcastSubject("US1", "L1", "seats"),
			event.ManifestSubject("US1", "L1", "W01")} {
			if err := d.Publish(subj, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			d.denied(t, subj)
		}
		js := r.js(d)
		for _, st := range []string{event.StreamName, event.DeadLetterStream, event.BroadcastStream} {
			if _, err := js.Stream(t.Context(), st); err != nil {
				t.Errorf("dashboard: stream info %s: %v", st, err)
			}
		}
		if _, err := js.Consumer(t.Context(), event.StreamName, broker.TrackerConsumer("US1", "L1")); err != nil {
			t.Errorf("dashboard: the tracker's consumer info: %v", err)
		}
		// The dead letters, by an ordered consumer and by message get.
		oc, err := js.OrderedConsumer(t.Context(), event.DeadLetterStream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		m, err := oc.Next(jetstream.FetchContext(ctx))
		if err != nil || m.Subject() != dlSubj {
			t.Fatalf("dashboard listing dead letters: %v %v", m, err)
		}
		s, err := js.Stream(t.Context(), event.DeadLetterStream)
		if err != nil {
			t.Fatal(err)
		}
		if rm, err := s.GetMsg(t.Context(), 1); err != nil || string(rm.Data) != "bad" {
			t.Errorf("dashboard: dead letter 1: %v %v", rm, err)
		}
		// No consumer on the events, none on another part's durable.
		d.deniedCall(t, "$JS.API.CONSUMER.CREATE.KEILINE.peek", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, event.StreamName, jetstream.ConsumerConfig{Name: "peek"})
			return err
		})
		next := "$JS.API.CONSUMER.MSG.NEXT.KEILINE_JIS." + sup
		d.deniedCall(t, next, func(ctx context.Context) error {
			_, err := d.RequestWithContext(ctx, next, []byte(`{"batch":1}`))
			return err
		})
		d.deniedCall(t, "$JS.API.CONSUMER.CREATE.KEILINE_JIS."+sup, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, event.BroadcastStream, jetstream.ConsumerConfig{Durable: sup})
			return err
		})
	})
}

func TestRevokedCertificateIsRefused(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		open := r.conn("agent-W01")
		r.revoke("agent-W01")
		waitFor(t, "the revoked certificate's connection to close", open.IsClosed)
		if c, err := r.dial("agent-W01"); err == nil {
			c.Close()
			t.Fatal("a revoked certificate connected")
		}
		// Everyone else still connects and works.
		if err := streams.NewPublisher(r.js(r.conn("agent-T02"))).Publish(t.Context(), cycleEvent(t, "T02", 1)); err != nil {
			t.Errorf("agent T02 after W01's revocation: %v", err)
		}
	})
}

func TestStartRefusesOpenServerBeyondLoopback(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "192.0.2.1", "::"} {
		if b, err := broker.Start(broker.Config{StoreDir: t.TempDir(), Host: host}); err == nil {
			b.Shutdown()
			t.Errorf("Start on %s without Security: no error", host)
		}
	}
}

// deadLetter publishes ev's message on the dead-letter stream as the
// tracker of its line does, and returns its sequence number there.
func deadLetter(t *testing.T, r *rig, tracker string, ev *event.Event) uint64 {
	t.Helper()
	m := rawEvent(t, ev)
	dl := &nats.Msg{Subject: event.DeadLetterPrefix + m.Subject, Data: m.Data, Header: nats.Header{}}
	dl.Header.Set(event.HeaderSubject, m.Subject)
	dl.Header.Set(event.HeaderReason, "test: unknown station")
	ack, err := r.js(r.conn(tracker)).PublishMsg(t.Context(), dl)
	if err != nil {
		t.Fatalf("%s dead-lettering %s: %v", tracker, ev.ID, err)
	}
	return ack.Sequence
}

// TestOperatorReplaysOnlyItsLine: keiline dlq's identity reads every dead
// letter, replays one of its own line onto the event stream and removes
// it, may not replay another line's, and cannot read the events as a
// tracker would.
func TestOperatorReplaysOnlyItsLine(t *testing.T) {
	forEachServer(t, func(t *testing.T, r *rig) {
		own := cycleEvent(t, "W01", 3)
		other := cycleEvent(t, "W01", 4)
		other.Line = "L2"
		other.ID = strings.Replace(other.ID, ".L1.", ".L2.", 1)
		ownSeq := deadLetter(t, r, "tracker-L1", own)
		otherSeq := deadLetter(t, r, "tracker-L2", other)

		op := r.conn("operator-L1")
		js := r.js(op)
		list, err := streams.DeadLetters(t.Context(), js, 0, 0)
		if err != nil {
			t.Fatalf("operator listing dead letters: %v", err)
		}
		if len(list) != 2 || list[0].EventID != own.ID || list[1].EventID != other.ID {
			t.Fatalf("operator lists %+v, want %s and %s", list, own.ID, other.ID)
		}
		if _, err := streams.Replay(t.Context(), js, ownSeq); err != nil {
			t.Fatalf("operator replaying its line's dead letter %d: %v", ownSeq, err)
		}
		if got, want := r.streamSubjects(event.StreamName), event.Subject("US1", "L1", "W01", event.KindCycle); len(got) != 1 || got[0] != want {
			t.Errorf("after the replay KEILINE holds %v, want %s", got, want)
		}
		if _, err := streams.GetDeadLetter(t.Context(), js, ownSeq); !errors.Is(err, streams.ErrNoDeadLetter) {
			t.Errorf("replayed dead letter %d still there: %v", ownSeq, err)
		}
		op.deniedCall(t, event.Subject("US1", "L2", "W01", event.KindCycle), func(ctx context.Context) error {
			_, err := streams.Replay(ctx, js, otherSeq)
			return err
		})
		if _, err := streams.GetDeadLetter(t.Context(), js, otherSeq); err != nil {
			t.Errorf("line L2's dead letter %d after a refused replay: %v", otherSeq, err)
		}
		op.deniedCall(t, "$JS.API.CONSUMER.CREATE.KEILINE.spy.keiline.>", func(ctx context.Context) error {
			_, err := js.CreateOrUpdateConsumer(ctx, event.StreamName, jetstream.ConsumerConfig{Durable: "spy", FilterSubject: event.SubjectAll})
			return err
		})
	})
}
