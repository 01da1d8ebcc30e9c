package openprotocol

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keiline/keiline/simulator/torque"
)

// TestAckOnlyOnCallersCall: the client sends MID 0062 for a result only
// when the caller calls Ack, and the controller pushes the next result
// only then.
func TestAckOnlyOnCallersCall(t *testing.T) {
	ctrl := newController(t, func(c *torque.Config) { c.AckTimeout = time.Hour })
	cfg := testConfig(ctrl, "C04-T1")
	cfg.KeepAlive = 20 * time.Millisecond
	c, _ := startClient(t, cfg)
	waitConnected(t, c, 1)
	prepare(t, c, "JA4KEI0000000010")
	want := tighten(t, ctrl, 2)
	r := recvResult(t, c)
	checkResult(t, r, want[0])
	// Keep-alive round trips after the delivery: the link is live and the
	// client has had its chance to acknowledge on its own.
	seen := ctrl.Stats().Received[9999]
	waitFor(t, "keep-alives after the delivery", func() bool { return ctrl.Stats().Received[9999] >= seen+3 })
	if st := ctrl.Stats(); st.Received[62] != 0 || st.Unacknowledged != 2 {
		t.Fatalf("before Ack: %d MID 0062, %d unacknowledged; want 0 and 2", st.Received[62], st.Unacknowledged)
	}
	if err := c.Ack(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	next := recvResult(t, c) // pushed once the first is acknowledged
	checkResult(t, next, want[1])
	if err := c.Ack(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(t.Context(), next); err != nil { // a second Ack does nothing
		t.Fatal(err)
	}
	waitFor(t, "both acknowledged", func() bool { return ctrl.Stats().Unacknowledged == 0 })
	seen = ctrl.Stats().Received[9999]
	waitFor(t, "a keep-alive after the acks", func() bool { return ctrl.Stats().Received[9999] > seen })
	if got := ctrl.Stats().Received[62]; got != 2 {
		t.Errorf("%d MID 0062 received, want 2", got)
	}
}

// TestAcksGoOutInDeliveryOrder: MID 0062 carries no id, so an Ack of a
// later result waits for the earlier ones.
func TestAcksGoOutInDeliveryOrder(t *testing.T) {
	ctrl := newController(t, func(c *torque.Config) { c.AckTimeout, c.PushWindow = time.Hour, 3 })
	cfg := testConfig(ctrl, "C04-T1")
	cfg.KeepAlive = 20 * time.Millisecond
	c, _ := startClient(t, cfg)
	waitConnected(t, c, 1)
	prepare(t, c, "JA4KEI0000000011")
	tighten(t, ctrl, 3)
	rs := []Result{recvResult(t, c), recvResult(t, c), recvResult(t, c)}
	ack := func(r Result) {
		if err := c.Ack(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	settle := func() { // a keep-alive round trip after the acks
		seen := ctrl.Stats().Received[9999]
		waitFor(t, "a keep-alive", func() bool { return ctrl.Stats().Received[9999] > seen })
	}
	ack(rs[2])
	settle()
	if got := ctrl.Stats().Received[62]; got != 0 {
		t.Fatalf("ack of the third result sent %d MID 0062 before the first two", got)
	}
	ack(rs[0])
	waitFor(t, "one acknowledge", func() bool { return ctrl.Stats().Unacknowledged == 2 })
	ack(rs[1])
	waitFor(t, "all acknowledged", func() bool { return ctrl.Stats().Unacknowledged == 0 })
	settle()
	if got := ctrl.Stats().Received[62]; got != 3 {
		t.Errorf("%d MID 0062, want 3", got)
	}
}

// TestResendOnTheSameLinkNotDeliveredTwice: a result the controller sends
// again for a late acknowledge is not delivered again, and costs no extra
// MID 0062 (which would acknowledge the next result unseen).
func TestResendOnTheSameLinkNotDeliveredTwice(t *testing.T) {
	ctrl := newController(t, func(c *torque.Config) { c.AckTimeout, c.AckRetries = 10*time.Millisecond, -1 })
	c, _ := startClient(t, testConfig(ctrl, "C04-T1"))
	waitConnected(t, c, 1)
	prepare(t, c, "JA4KEI0000000012")
	want := tighten(t, ctrl, 2)
	r := recvResult(t, c)
	waitFor(t, "resends seen by the client", func() bool { return ctrl.Stats().Resends >= 3 && c.Status().Duplicates >= 3 })
	select {
	case dup := <-c.Results():
		t.Fatalf("tightening %d delivered again", dup.TighteningID)
	default:
	}
	if err := c.Ack(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	next := recvResult(t, c)
	checkResult(t, next, want[1])
	if err := c.Ack(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both acknowledged", func() bool { return ctrl.Stats().Unacknowledged == 0 })
	if got := ctrl.Stats().Received[62]; got != 2 {
		t.Errorf("%d MID 0062 for 2 results", got)
	}
}

// TestUnacknowledgedRedeliveredAfterReconnect: a result not acknowledged
// when the link breaks comes again on the next link.
func TestUnacknowledgedRedeliveredAfterReconnect(t *testing.T) {
	for _, tc := range []struct {
		name      string
		edit      func(*torque.Config)
		breakLink func(*testing.T, *torque.Controller)
	}{
		{"link cut", nil, func(_ *testing.T, ctrl *torque.Controller) { ctrl.CutLink() }},
		{"ack retries exhausted", func(c *torque.Config) { c.AckTimeout, c.AckRetries = 10*time.Millisecond, 2 }, func(*testing.T, *torque.Controller) {}},
		{"controller restart", nil, func(t *testing.T, ctrl *torque.Controller) {
			if err := ctrl.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := ctrl.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrl := newController(t, func(c *torque.Config) {
				c.StateDir = t.TempDir()
				if tc.edit != nil {
					tc.edit(c)
				}
			})
			c, _ := startClient(t, testConfig(ctrl, "C04-T1"))
			waitConnected(t, c, 1)
			prepare(t, c, "JA4KEI0000000013")
			want := tighten(t, ctrl, 1)[0]
			first := recvResult(t, c)
			tc.breakLink(t, ctrl)
			again := recvResult(t, c)
			if again.TighteningID != first.TighteningID || again.MID != 61 {
				t.Fatalf("after the break: MID %04d tightening %d, want tightening %d again", again.MID, again.TighteningID, first.TighteningID)
			}
			checkResult(t, again, want)
			waitConnected(t, c, 2) // redelivered on a new link
			if err := c.Ack(t.Context(), first); !errors.Is(err, ErrLinkLost) {
				t.Errorf("ack on the broken link: %v, want ErrLinkLost", err)
			}
			if err := c.Ack(t.Context(), again); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the acknowledge", func() bool { return ctrl.Stats().Unacknowledged == 0 })
		})
	}
}

// exactlyOnce checks the sink kept every tightening the controller made,
// with the controller's values.
func exactlyOnce(t *testing.T, s *sink, ctrl *torque.Controller) {
	t.Helper()
	truth := ctrl.Truth()
	waitFor(t, "every tightening received", func() bool { return s.has(ids(truth)...) })
	if s.count() != len(truth) {
		t.Fatalf("the sink keeps %d tightenings, the controller made %d", s.count(), len(truth))
	}
	for _, tg := range truth {
		checkResult(t, s.result(tg.ID), tg)
	}
}

// TestCutLinkMidBatch: the link is cut again and again while the tool
// tightens; with the caller deduplicating by tightening id, every
// tightening arrives exactly once: pushed, pushed again, or fetched with
// MID 0064 for LastDurable.
func TestCutLinkMidBatch(t *testing.T) {
	ctrl := newController(t, nil)
	s := newSink()
	cfg := testConfig(ctrl, "C04-T1")
	cfg.LastDurable = s.lastDurable
	c, logs := startClient(t, cfg)
	s.run(t, c)
	waitConnected(t, c, 1)
	prepare(t, c, "JA4KEI0000000014")
	connects := 1
	for i := 1; i <= 40; i++ {
		tighten(t, ctrl, 1)
		if i%8 == 0 {
			ctrl.CutLink()
			tighten(t, ctrl, 1) // while the link is down
			connects++
			waitConnected(t, c, connects)
		}
	}
	exactlyOnce(t, s, ctrl)
	if len(logs.lines("fetched results made while disconnected")) == 0 {
		t.Error("no result was fetched with MID 0064")
	}
	waitFor(t, "all acknowledged", func() bool { return ctrl.Stats().Unacknowledged == 0 })
}

// TestControllerRestartMidBatch: the controller restarts (its state on
// disk) while the tool tightens; every tightening arrives exactly once.
func TestControllerRestartMidBatch(t *testing.T) {
	dir := t.TempDir()
	ctrl := newController(t, func(c *torque.Config) { c.StateDir = dir })
	s := newSink()
	cfg := testConfig(ctrl, "C04-T1")
	cfg.LastDurable = s.lastDurable
	c, _ := startClient(t, cfg)
	s.run(t, c)
	waitConnected(t, c, 1)
	prepare(t, c, "JA4KEI0000000015")
	for round := 1; round <= 3; round++ {
		tighten(t, ctrl, 7)
		if err := ctrl.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := ctrl.Tighten(t.Context(), 1); !errors.Is(err, torque.ErrNotRunning) {
			t.Fatalf("a stopped controller tightened: %v", err)
		}
		if err := ctrl.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		tighten(t, ctrl, 2) // before the client is back
		waitConnected(t, c, round+1)
	}
	tighten(t, ctrl, 3)
	exactlyOnce(t, s, ctrl)
	if n := len(ctrl.Truth()); n != 3*9+3 {
		t.Errorf("the controller made %d tightenings, want 30", n)
	}
}

// TestLongDisconnectFetchedWithOldResults: no client for a while; the
// results made meanwhile are fetched with MID 0064 when one comes back.
func TestLongDisconnectFetchedWithOldResults(t *testing.T) {
	ctrl := newController(t, nil)
	s := newSink()
	cfg := testConfig(ctrl, "C04-T1")
	cfg.LastDurable = s.lastDurable
	a, _ := startClient(t, cfg)
	ctx := t.Context()
	waitConnected(t, a, 1)
	prepare(t, a, "JA4KEI0000000016")
	for range 3 {
		tighten(t, ctrl, 1)
		r := recvResult(t, a)
		s.add(r)
		if err := a.Ack(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "acknowledged", func() bool { return ctrl.Stats().Unacknowledged == 0 })
	a.Close()
	waitFor(t, "the client gone", func() bool { return !ctrl.Stats().Connected })
	meanwhile := tighten(t, ctrl, 12)

	b, _ := startClient(t, cfg) // the agent back, knowing its last durable tightening
	s.run(t, b)
	exactlyOnce(t, s, ctrl)
	for _, id := range ids(meanwhile) {
		if r := s.result(id); r.MID != 65 {
			t.Errorf("tightening %d came as MID %04d, want a MID 0065 fetched", id, r.MID)
		}
	}
	// The caller can fetch them itself too.
	rs, err := b.ResultsSince(ctx, meanwhile[4].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids2(rs); !slices.Equal(got, ids(meanwhile[5:])) {
		t.Errorf("ResultsSince(%d) = %v, want %v", meanwhile[4].ID, got, ids(meanwhile[5:]))
	}
}

func ids2(rs []Result) []uint32 {
	var out []uint32
	for _, r := range rs {
		out = append(out, r.TighteningID)
	}
	return out
}

// TestBadResultHoldsBackAcknowledges: a MID 0061 that does not parse is
// never acknowledged, and no later result of the connection is either (a
// MID 0062 would acknowledge the bad one, oldest first): it stays in the
// controller, a named fault, while the good results still arrive.
func TestBadResultHoldsBackAcknowledges(t *testing.T) {
	ctrl := newController(t, nil)
	cfg := testConfig(ctrl, "C04-T1")
	cfg.KeepAlive = 20 * time.Millisecond
	c, logs := startClient(t, cfg)
	waitConnected(t, c, 1)
	prepare(t, c, "JA4KEI0000000017")
	bad := Frame{MID: 61, Revision: 1, Data: []byte("0100040201" + "03 torque for VIN X")}.Append(nil)
	if err := ctrl.SendRaw(bad); err != nil {
		t.Fatal(err)
	}
	want := tighten(t, ctrl, 1)[0]
	r := recvResult(t, c)
	checkResult(t, r, want)
	if err := c.Ack(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	seen := ctrl.Stats().Received[9999]
	waitFor(t, "keep-alives after the ack", func() bool { return ctrl.Stats().Received[9999] >= seen+2 })
	if got := ctrl.Stats().Received[62]; got != 0 {
		t.Fatalf("%d MID 0062 sent behind a result that did not parse", got)
	}
	if c.Status().BadResults != 1 || len(logs.lines("controller=C04-T1", "does not parse", "parameter 03")) != 1 {
		t.Errorf("bad result not reported: %d, log:\n%s", c.Status().BadResults, logs)
	}
}

// TestOldResultsNoLongerKept: ids the controller no longer keeps are
// named in the error, with the results it still has.
func TestOldResultsNoLongerKept(t *testing.T) {
	ctrl := newController(t, func(c *torque.Config) { c.Keep = 5 })
	c, _ := startClient(t, testConfig(ctrl, "C04-T1"))
	waitConnected(t, c, 1)
	if err := c.Unsubscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	prepare(t, c, "JA4KEI0000000018")
	made := tighten(t, ctrl, 12)
	rs, err := c.ResultsSince(t.Context(), 1)
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrTighteningNotFound) || !slices.Equal(nf.IDs, []uint32{2, 3, 4, 5, 6, 7}) {
		t.Fatalf("error %v, want ids 2..7 not found", err)
	}
	if got := ids2(rs); !slices.Equal(got, ids(made[7:])) {
		t.Fatalf("results %v, want %v", got, ids(made[7:]))
	}
	for i, r := range rs {
		checkResult(t, r, made[7+i])
	}
}

// TestCatchUpLimit: a caller too far behind gets the newest CatchUpMax
// results and the range skipped.
func TestCatchUpLimit(t *testing.T) {
	ctrl := newController(t, nil)
	cfg := testConfig(ctrl, "C04-T1")
	cfg.CatchUpMax = 3
	c, _ := startClient(t, cfg)
	waitConnected(t, c, 1)
	if err := c.Unsubscribe(t.Context()); err != nil {
		t.Fatal(err)
	}
	prepare(t, c, "JA4KEI0000000019")
	made := tighten(t, ctrl, 10)
	rs, err := c.ResultsSince(t.Context(), 2)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.SkippedFrom != 3 || nf.SkippedTo != 7 || len(nf.IDs) != 0 {
		t.Fatalf("error %v, want ids 3..7 skipped", err)
	}
	if got := ids2(rs); !slices.Equal(got, ids(made[7:])) {
		t.Fatalf("results %v, want %v", got, ids(made[7:]))
	}
}
