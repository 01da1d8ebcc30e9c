package openprotocol

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/simulator/torque"
)

func TestRevisionFallback(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		ctrlRev, ctrlResultRev int
		rev, minRev, resultRev int
		wantRev, wantResultRev int
		wantErr                error
	}{
		{name: "controller rev 1, client asks 2", ctrlRev: 1, ctrlResultRev: 7, rev: 2, resultRev: 2, wantRev: 1, wantResultRev: 2},
		{name: "controller rev 3, client asks 6", ctrlRev: 3, ctrlResultRev: 7, rev: 6, resultRev: 7, wantRev: 3, wantResultRev: 7},
		{name: "both rev 6", ctrlRev: 6, ctrlResultRev: 7, rev: 6, resultRev: 7, wantRev: 6, wantResultRev: 7},
		{name: "results rev 1, client asks 2", ctrlRev: 6, ctrlResultRev: 1, rev: 6, resultRev: 2, wantRev: 6, wantResultRev: 1},
		{name: "results rev 3, client asks 7", ctrlRev: 2, ctrlResultRev: 3, rev: 6, resultRev: 7, wantRev: 2, wantResultRev: 3},
		{name: "below the client's minimum", ctrlRev: 2, ctrlResultRev: 7, rev: 6, minRev: 3, resultRev: 7, wantErr: ErrRevisionUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrl := newController(t, func(c *torque.Config) { c.MaxRevision, c.MaxResultRevision = tc.ctrlRev, tc.ctrlResultRev })
			cfg := testConfig(ctrl, "C04-T1")
			cfg.Revision, cfg.MinRevision, cfg.ResultRevision = tc.rev, tc.minRev, tc.resultRev
			c, _ := startClient(t, cfg)
			if tc.wantErr != nil {
				var err error
				waitFor(t, "the handshake to fail", func() bool {
					err = c.Status().LastError
					return errors.Is(err, tc.wantErr)
				})
				if !strings.Contains(err.Error(), "C04-T1") || c.Status().Connects != 0 {
					t.Fatalf("error %v does not name the controller, or the client connected", err)
				}
				return
			}
			waitConnected(t, c, 1)
			st := c.Status()
			if st.Info.Revision != tc.wantRev || st.ResultRevision != tc.wantResultRev {
				t.Fatalf("revisions %d/%d, want %d/%d", st.Info.Revision, st.ResultRevision, tc.wantRev, tc.wantResultRev)
			}
			if st.Info.ControllerName != "C04 wheel nutrunner" || st.Info.CellID != 4 || st.Info.ChannelID != 1 {
				t.Errorf("MID 0002 info %+v", st.Info)
			}
			if tc.wantRev >= 2 && st.Info.SupplierCode != "SIM" || tc.wantRev >= 6 && !st.Info.SequenceNumberSupport {
				t.Errorf("MID 0002 rev %d fields %+v", tc.wantRev, st.Info)
			}
			prepare(t, c, "JA4KEI0000000001")
			want := tighten(t, ctrl, 1)[0]
			r := recvResult(t, c)
			if r.Revision != tc.wantResultRev {
				t.Errorf("result revision %d, want %d", r.Revision, tc.wantResultRev)
			}
			checkResult(t, r, want)
		})
	}
}

func TestKeepAliveHoldsTheLink(t *testing.T) {
	ctrl := newController(t, func(c *torque.Config) { c.KeepAliveTimeout = 300 * time.Millisecond })
	cfg := testConfig(ctrl, "C04-T1")
	cfg.KeepAlive = 30 * time.Millisecond
	c, _ := startClient(t, cfg)
	waitConnected(t, c, 1)
	// Ten keep-alives at 30 ms outlast the controller's 300 ms timeout.
	waitFor(t, "keep-alives", func() bool { return ctrl.Stats().Received[9999] >= 12 })
	if st := ctrl.Stats(); st.Accepts != 1 || c.Status().Connects != 1 {
		t.Fatalf("the link dropped: %d accepts, %d connects", st.Accepts, c.Status().Connects)
	}
}

func TestSilentControllerIsDeclaredDead(t *testing.T) {
	ctrl := newController(t, nil)
	cfg := testConfig(ctrl, "C04-T1")
	cfg.KeepAlive, cfg.ReplyTimeout = 20*time.Millisecond, 100*time.Millisecond
	c, logs := startClient(t, cfg)
	waitConnected(t, c, 1)
	ctrl.SetFaults(torque.Faults{Silent: true})
	waitFor(t, "the link declared dead", func() bool { return errors.Is(c.Status().LastError, ErrNoReply) })
	if len(logs.lines("controller=C04-T1", "address="+ctrl.Addr(), "did not answer")) == 0 {
		t.Errorf("no log line names the controller and the silence:\n%s", logs)
	}
	ctrl.SetFaults(torque.Faults{})
	waitConnected(t, c, 2)
}

func TestSecondClientRefused(t *testing.T) {
	ctrl := newController(t, nil)
	a, _ := startClient(t, testConfig(ctrl, "C04-T1"))
	waitConnected(t, a, 1)
	b, logs := startClient(t, testConfig(ctrl, "C04-T1-spare"))
	var err error
	waitFor(t, "the refusal", func() bool {
		err = b.Status().LastError
		return errors.Is(err, ErrClientAlreadyConnected)
	})
	if b.Status().Connected {
		t.Fatal("the second client connected")
	}
	for _, want := range []string{"C04-T1-spare", ctrl.Addr(), "error 96", "client already connected"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(logs.lines("another client holds the controller")) == 0 {
		t.Errorf("no log line says another client holds the controller:\n%s", logs)
	}
	if err := a.EnableTool(t.Context()); err != nil || !ctrl.Enabled() {
		t.Fatalf("the first client lost the controller: %v", err)
	}
	a.Close()
	waitConnected(t, b, 1)
}

func TestUnknownMIDs(t *testing.T) {
	ctrl := newController(t, nil)
	c, logs := startClient(t, testConfig(ctrl, "C04-T1"))
	waitConnected(t, c, 1)

	_, err := c.Do(t.Context(), Frame{MID: 123}, 0)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Code != CodeUnknownMID || !errors.Is(err, ErrUnknownMID) {
		t.Fatalf("unknown MID sent: %v, want a CommandError 99", err)
	}
	for _, want := range []string{"C04-T1", "MID 0123", "error 99 unknown MID"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	for range 2 {
		if err := ctrl.SendRaw(Frame{MID: 777, Data: []byte("whatever")}.Append(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.EnableTool(t.Context()); err != nil { // answered after both: they were read
		t.Fatal(err)
	}
	if got := logs.lines("unknown MID received", "mid=777"); len(got) != 1 {
		t.Errorf("unknown MID received logged %d times, want once:\n%s", len(got), logs)
	}
	if ctrl.Stats().Accepts != 1 {
		t.Errorf("an unknown MID broke the link")
	}
}

func TestMalformedFramesReset(t *testing.T) {
	good := Frame{MID: 9999}.Append(nil)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"bad length digits", []byte("00a0999900100        \x00")},
		{"length below a header", []byte("0019999900100       \x00")},
		{"length beyond the maximum", append([]byte("0500"), good[4:]...)},
		{"missing NUL", append(append([]byte(nil), good[:20]...), 'X')},
		{"non-ASCII header", []byte("00209999001\xff        \x00")},
		{"garbage", []byte("\x01\x02hello, controller\x00\x00\x00\x00\x00\x00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrl := newController(t, nil)
			cfg := testConfig(ctrl, "C04-T1")
			cfg.MaxFrameLength = 400
			c, logs := startClient(t, cfg)
			waitConnected(t, c, 1)
			if err := ctrl.SendRaw(tc.b); err != nil {
				t.Fatal(err)
			}
			waitConnected(t, c, 2)
			if len(logs.lines("controller=C04-T1", "address="+ctrl.Addr(), "malformed frame", "redialing")) == 0 {
				t.Fatalf("no log line names the controller and the malformed frame:\n%s", logs)
			}
			if err := c.EnableTool(t.Context()); err != nil {
				t.Fatalf("after the reset: %v", err)
			}
		})
	}
}

func TestSplitAndMergedFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults torque.Faults
	}{
		{"byte by byte", torque.Faults{SplitWrites: 1}},
		{"in 7-byte pieces", torque.Faults{SplitWrites: 7}},
		{"four in one write", torque.Faults{MergeWrites: 4}},
		{"merged and split", torque.Faults{MergeWrites: 3, SplitWrites: 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrl := newController(t, func(c *torque.Config) { c.PushWindow = 4 })
			c, _ := startClient(t, testConfig(ctrl, "C04-T1"))
			waitConnected(t, c, 1)
			ctrl.SetFaults(tc.faults)
			prepare(t, c, "JA4KEI0000000002")
			want := tighten(t, ctrl, 8)
			for i := range want {
				r := recvResult(t, c)
				checkResult(t, r, want[i])
				if err := c.Ack(t.Context(), r); err != nil {
					t.Fatal(err)
				}
			}
			old, err := c.OldResult(t.Context(), want[2].ID)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, old, want[2])
		})
	}
}

func TestCommands(t *testing.T) {
	ctrl := newController(t, nil)
	c, _ := startClient(t, testConfig(ctrl, "C04-T1"))
	ctx := t.Context()
	waitConnected(t, c, 1)

	if err := c.EnableTool(ctx); err != nil || !ctrl.Enabled() {
		t.Fatalf("enable tool: %v (enabled %v)", err, ctrl.Enabled())
	}
	if err := c.DisableTool(ctx); err != nil || ctrl.Enabled() {
		t.Fatalf("disable tool: %v (enabled %v)", err, ctrl.Enabled())
	}
	if err := c.SelectPset(ctx, 7); err != nil || ctrl.Pset() != 7 {
		t.Fatalf("select pset 7: %v (pset %d)", err, ctrl.Pset())
	}
	err := c.SelectPset(ctx, 8)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Code != CodePsetNotPresent || ce.MID != 18 || ctrl.Pset() != 7 {
		t.Fatalf("select unknown pset 8: %v", err)
	}
	if !strings.Contains(err.Error(), "MID 0018") || !strings.Contains(err.Error(), "parameter set ID not present") {
		t.Errorf("error %q does not name the MID and the code's meaning", err)
	}
	if err := c.SelectPset(ctx, 1000); err == nil {
		t.Error("pset 1000 accepted")
	}
	if err := c.DownloadVIN(ctx, "JA4KEI0000000003"); err != nil || ctrl.VIN() != "JA4KEI0000000003" {
		t.Fatalf("download VIN: %v (VIN %q)", err, ctrl.VIN())
	}
	for _, vin := range []string{strings.Repeat("V", 26), "JA4\x00KEI"} {
		if err := c.DownloadVIN(ctx, vin); err == nil {
			t.Errorf("VIN %q accepted", vin)
		}
	}
	if err := c.Unsubscribe(ctx); err != nil || ctrl.Stats().Subscribed {
		t.Fatalf("unsubscribe: %v", err)
	}
	if err := c.Unsubscribe(ctx); !errors.As(err, &ce) || ce.Code != CodeResultSubscriptionMissing {
		t.Fatalf("second unsubscribe: %v, want error 10", err)
	}
	if err := c.Subscribe(ctx); err != nil || !ctrl.Stats().Subscribed {
		t.Fatalf("subscribe: %v", err)
	}
	if err := c.Subscribe(ctx); err != nil {
		t.Fatalf("subscribe when subscribed: %v, want nil", err)
	}
	if _, err := c.OldResult(ctx, 0); !errors.Is(err, ErrTighteningNotFound) {
		t.Fatalf("newest of no tightening: %v, want ErrTighteningNotFound", err)
	}
	if err := c.EnableTool(ctx); err != nil {
		t.Fatal(err)
	}
	made := tighten(t, ctrl, 3)
	for _, id := range []uint32{0, 2} {
		r, err := c.OldResult(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := made[2]
		if id != 0 {
			want = made[id-1]
		}
		checkResult(t, r, want)
	}
	if _, err := c.OldResult(ctx, 99); !errors.Is(err, ErrTighteningNotFound) || !strings.Contains(err.Error(), "C04-T1") {
		t.Fatalf("unknown tightening: %v", err)
	}
}

func TestTightenWhileDisabledDoesNotHappen(t *testing.T) {
	ctrl := newController(t, nil)
	c, _ := startClient(t, testConfig(ctrl, "C04-T1"))
	ctx := t.Context()
	waitConnected(t, c, 1)
	prepare(t, c, "JA4KEI0000000004")
	if err := c.DisableTool(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.Tighten(ctx, 1); !errors.Is(err, torque.ErrToolDisabled) {
		t.Fatalf("tighten while disabled: %v, want ErrToolDisabled", err)
	}
	if n := len(ctrl.Truth()); n != 0 {
		t.Fatalf("%d tightenings made while disabled", n)
	}
	if err := c.EnableTool(ctx); err != nil {
		t.Fatal(err)
	}
	want := tighten(t, ctrl, 1)[0]
	r := recvResult(t, c)
	if r.TighteningID != 1 {
		t.Fatalf("first result is tightening %d, want 1: the disabled attempt used an id", r.TighteningID)
	}
	checkResult(t, r, want)
}

func TestResultRevisions(t *testing.T) {
	for rev := 1; rev <= ResultRevisionMax; rev++ {
		t.Run(fmt.Sprintf("rev %d", rev), func(t *testing.T) {
			ctrl := newController(t, func(c *torque.Config) { c.MaxResultRevision, c.NOKRate = rev, 0.5 })
			c, _ := startClient(t, testConfig(ctrl, "C04-T1"))
			waitConnected(t, c, 1)
			prepare(t, c, "JA4KEI0000000005")
			want := tighten(t, ctrl, 6)
			for _, w := range want {
				r := recvResult(t, c)
				if r.MID != 61 || r.Revision != rev {
					t.Fatalf("MID %04d revision %d, want 0061 revision %d", r.MID, r.Revision, rev)
				}
				checkResult(t, r, w)
				if err := c.Ack(t.Context(), r); err != nil {
					t.Fatal(err)
				}
			}
			old, err := c.OldResult(t.Context(), want[3].ID)
			if err != nil {
				t.Fatal(err)
			}
			if old.MID != 65 || old.Revision != min(rev, OldResultRevisionMax) {
				t.Errorf("old result MID %04d revision %d", old.MID, old.Revision)
			}
			checkResult(t, old, want[3])
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no id", func(c *Config) { c.ID = "" }, "ID"},
		{"no address", func(c *Config) { c.Address = "" }, "Address"},
		{"address without port", func(c *Config) { c.Address = "10.0.0.1" }, "Address"},
		{"revision", func(c *Config) { c.Revision = 8 }, "Revision"},
		{"min above revision", func(c *Config) { c.Revision, c.MinRevision = 2, 3 }, "MinRevision"},
		{"result revision", func(c *Config) { c.ResultRevision = 9 }, "ResultRevision"},
		{"keep-alive too long", func(c *Config) { c.KeepAlive = 15 * time.Second }, "KeepAlive"},
		{"reply timeout", func(c *Config) { c.ReplyTimeout = time.Millisecond }, "ReplyTimeout"},
		{"redial order", func(c *Config) { c.RedialMin, c.RedialMax = time.Second, time.Millisecond }, "RedialMax"},
		{"max frame", func(c *Config) { c.MaxFrameLength = 10 }, "MaxFrameLength"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ID: "C04-T1", Address: "127.0.0.1:4545"}
			tc.edit(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v does not name %s", err, tc.field)
			}
		})
	}
	cfg := Config{ID: "C04-T1", Address: "127.0.0.1:4545"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.KeepAlive != KeepAliveDefault || cfg.Revision != RevisionDefault || cfg.Location == nil || cfg.Logger == nil {
		t.Errorf("defaults not filled: %+v", cfg)
	}
}

func TestCloseTwiceAndBeforeRun(t *testing.T) {
	c, err := New(Config{ID: "C04-T1", Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	if err := c.Run(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
	if _, ok := <-c.Results(); ok {
		t.Fatal("results open after Close")
	}
	if err := c.EnableTool(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("command after Close: %v, want ErrClosed", err)
	}

	ctrl := newController(t, nil)
	d, _ := startClient(t, testConfig(ctrl, "C04-T1"))
	waitConnected(t, d, 1)
	d.Close()
	d.Close()
	waitFor(t, "MID 0003", func() bool { return ctrl.Stats().Received[3] == 1 })
}

func TestDelayedAnswers(t *testing.T) {
	ctrl := newController(t, nil)
	cfg := testConfig(ctrl, "C04-T1")
	cfg.ReplyTimeout = 150 * time.Millisecond
	c, _ := startClient(t, cfg)
	waitConnected(t, c, 1)
	ctrl.SetFaults(torque.Faults{ReplyDelay: 20 * time.Millisecond}) // slow, within the timeout
	if err := c.EnableTool(t.Context()); err != nil {
		t.Fatalf("a slow answer: %v", err)
	}
	ctrl.SetFaults(torque.Faults{ReplyDelay: 600 * time.Millisecond}) // beyond it
	err := c.DisableTool(t.Context())
	if !errors.Is(err, ErrNoReply) && !errors.Is(err, ErrLinkLost) {
		t.Fatalf("an answer beyond the timeout: %v, want the link declared dead", err)
	}
	if !strings.Contains(err.Error(), "C04-T1") {
		t.Errorf("error %q does not name the controller", err)
	}
	waitFor(t, "the dead link", func() bool { return errors.Is(c.Status().LastError, ErrNoReply) })
	ctrl.SetFaults(torque.Faults{})
	waitConnected(t, c, 2)
	if err := c.DisableTool(t.Context()); err != nil || ctrl.Enabled() {
		t.Fatalf("after the redial: %v", err)
	}
}

func TestTwoTools(t *testing.T) {
	ctrl := newController(t, func(c *torque.Config) {
		c.Tools = append(c.Tools, torque.Tool{Channel: 2, Serial: "NR-0002", Psets: map[int]torque.Pset{7: wheelPset()}})
	})
	c, _ := startClient(t, testConfig(ctrl, "C04-T1"))
	waitConnected(t, c, 1)
	prepare(t, c, "JA4KEI0000000006")
	for _, ch := range []int{2, 1, 2} {
		want, err := ctrl.Tighten(t.Context(), ch)
		if err != nil {
			t.Fatal(err)
		}
		r := recvResult(t, c)
		if r.ChannelID != ch {
			t.Errorf("result on channel %d, want %d", r.ChannelID, ch)
		}
		checkResult(t, r, want)
		if err := c.Ack(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
}
