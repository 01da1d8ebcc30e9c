package torque

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hangGuard bounds a read that should succeed, so a broken controller
// fails the test instead of hanging it; it is no timing assertion.
const hangGuard = 10 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func wheelPset() Pset {
	return Pset{Name: "wheel nut", TorqueMin: 100, TorqueMax: 140, TorqueTarget: 120,
		AngleMin: 20, AngleMax: 80, AngleTarget: 50, BatchSize: 4}
}

func testConfig(t *testing.T) Config {
	return Config{
		Name: "C04-SIM", CellID: 4,
		Tools:  []Tool{{Channel: 1, Serial: "T0001", Psets: map[int]Pset{5: wheelPset()}}},
		Seed:   7,
		Logger: testLogger(t),
	}
}

func start(t *testing.T, cfg Config) *Controller {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// rawClient speaks the protocol by hand.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dial(t *testing.T, c *Controller) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (r *rawClient) send(mid, rev int, data string) {
	r.t.Helper()
	if _, err := r.conn.Write(frame(mid, rev, data)); err != nil {
		r.t.Fatalf("send MID %04d: %v", mid, err)
	}
}

func (r *rawClient) recv() (message, error) {
	r.conn.SetReadDeadline(time.Now().Add(hangGuard))
	return readMessage(r.br)
}

func (r *rawClient) expect(mid int) message {
	r.t.Helper()
	m, err := r.recv()
	if err != nil {
		r.t.Fatalf("want MID %04d: %v", mid, err)
	}
	if m.mid != mid {
		r.t.Fatalf("got MID %04d %q, want MID %04d", m.mid, m.data, mid)
	}
	return m
}

// startComm runs the communication start at revision 1.
func (r *rawClient) startComm() {
	r.t.Helper()
	r.send(midCommStart, 1, "")
	r.expect(midCommStartAck)
}

func (r *rawClient) command(mid int, data string) {
	r.t.Helper()
	r.send(mid, 1, data)
	if m := r.expect(midAccepted); m.data != fmt.Sprintf("%04d", mid) {
		r.t.Fatalf("MID 0005 accepts %q, want %04d", m.data, mid)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCommunicationStartRevisions(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRevision = 3
	c := start(t, cfg)
	r := dial(t, c)
	r.send(midCommStart, 4, "")
	if m := r.expect(midError); m.data != "000197" {
		t.Fatalf("MID 0001 rev 4 answered %q, want error 97", m.data)
	}
	r.send(midCommStart, 3, "")
	m := r.expect(midCommStartAck)
	if m.rev != 3 {
		t.Errorf("MID 0002 revision %d, want 3", m.rev)
	}
	// Revision 3 carries parameters 01 to 07: cell, channel, name,
	// supplier, three versions.
	want := "010004" + "0201" + "03C04-SIM" + strings.Repeat(" ", 18) + "04SIM" + "052.8.0"
	if !strings.HasPrefix(m.data, want) || !strings.Contains(m.data, "07keiline-sim") || len(m.data) != 105 {
		t.Errorf("MID 0002 data %q", m.data)
	}
	r.send(midCommStart, 1, "")
	if m := r.expect(midError); m.data != "000196" {
		t.Errorf("second MID 0001 answered %q, want error 96", m.data)
	}
}

func TestSecondClientRefused(t *testing.T) {
	c := start(t, testConfig(t))
	a := dial(t, c)
	a.startComm()
	b := dial(t, c)
	b.send(midCommStart, 1, "")
	if m := b.expect(midError); m.data != "000196" {
		t.Fatalf("second client answered %q, want error 96", m.data)
	}
	if _, err := b.recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("second client not closed: %v", err)
	}
	a.send(midKeepAlive, 1, "")
	a.expect(midKeepAlive)
}

func TestUnknownMIDAndBeforeStart(t *testing.T) {
	c := start(t, testConfig(t))
	r := dial(t, c)
	r.startComm()
	r.send(123, 1, "")
	if m := r.expect(midError); m.data != "012399" {
		t.Fatalf("unknown MID answered %q, want error 99", m.data)
	}
	early := dial(t, c.withoutClient(t, r))
	early.send(midKeepAlive, 1, "")
	if _, err := early.recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("a client talking before MID 0001 is not closed: %v", err)
	}
}

// withoutClient closes r and waits until the controller has let it go.
func (c *Controller) withoutClient(t *testing.T, r *rawClient) *Controller {
	r.conn.Close()
	waitFor(t, "the client gone", func() bool { return !c.Stats().Connected })
	return c
}

func TestTightenOnlyWhenEnabled(t *testing.T) {
	ctx := t.Context()
	c := start(t, testConfig(t))
	if _, err := c.Tighten(ctx, 1); !errors.Is(err, ErrToolDisabled) {
		t.Fatalf("tighten of a never enabled tool: %v, want ErrToolDisabled", err)
	}
	r := dial(t, c)
	r.startComm()
	r.command(midEnable, "")
	if _, err := c.Tighten(ctx, 1); !errors.Is(err, ErrNoPset) {
		t.Fatalf("tighten with no parameter set: %v, want ErrNoPset", err)
	}
	r.command(midSelectPset, "005")
	r.command(midVIN, "VINAAA0000000001"+strings.Repeat(" ", 9))
	t1, err := c.Tighten(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.command(midDisable, "")
	if _, err := c.Tighten(ctx, 1); !errors.Is(err, ErrToolDisabled) {
		t.Fatalf("tighten of a disabled tool: %v, want ErrToolDisabled", err)
	}
	if _, err := c.Tighten(ctx, 2); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("tighten on channel 2: %v, want ErrUnknownChannel", err)
	}
	r.command(midEnable, "")
	t2, err := c.Tighten(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if t1.ID != 1 || t2.ID != 2 || t1.VIN != "VINAAA0000000001" || t1.Pset != 5 {
		t.Errorf("tightenings %d %q pset %d, then %d; want ids 1, 2 for the VIN with pset 5", t1.ID, t1.VIN, t1.Pset, t2.ID)
	}
	if got := c.Truth(); len(got) != 2 {
		t.Errorf("truth holds %d tightenings, want the 2 made while enabled", len(got))
	}
	r.send(midSelectPset, 1, "006")
	if m := r.expect(midError); m.data != "001802" {
		t.Errorf("select unknown pset answered %q, want error 02", m.data)
	}
}

func TestValuesFromSeedWithinLimits(t *testing.T) {
	ctx := t.Context()
	make := func(seed uint64, nok float64) []Tightening {
		cfg := testConfig(t)
		cfg.Seed, cfg.NOKRate, cfg.Enabled = seed, nok, true
		c := start(t, cfg)
		r := dial(t, c)
		r.startComm()
		r.command(midSelectPset, "005")
		for range 40 {
			if _, err := c.Tighten(ctx, 1); err != nil {
				t.Fatal(err)
			}
		}
		c.withoutClient(t, r)
		return c.Truth()
	}
	a, b, other := make(11, 0.3), make(11, 0.3), make(12, 0.3)
	torques := func(ts []Tightening) []int {
		var out []int
		for _, t := range ts {
			out = append(out, t.Torque, t.Angle)
		}
		return out
	}
	if !reflect.DeepEqual(torques(a), torques(b)) {
		t.Error("the same seed made different values")
	}
	if reflect.DeepEqual(torques(a), torques(other)) {
		t.Error("another seed made the same values")
	}
	p := wheelPset()
	for _, tc := range []struct {
		name string
		ts   []Tightening
		ok   bool
	}{{"all OK", make(3, 0), true}, {"all NOK", make(3, 1), false}} {
		for _, tg := range tc.ts {
			inside := tg.Torque >= centi(p.TorqueMin) && tg.Torque <= centi(p.TorqueMax)
			if tg.OK != tc.ok || inside != tc.ok || (tg.TorqueStatus == 1) != tc.ok {
				t.Fatalf("%s: tightening %d torque %d status %d OK %v", tc.name, tg.ID, tg.Torque, tg.TorqueStatus, tg.OK)
			}
			if tg.TorqueStatus == 0 && tg.Torque >= centi(p.TorqueMin) || tg.TorqueStatus == 2 && tg.Torque <= centi(p.TorqueMax) {
				t.Fatalf("%s: tightening %d torque %d does not match status %d", tc.name, tg.ID, tg.Torque, tg.TorqueStatus)
			}
			if tg.Angle < p.AngleMin || tg.Angle > p.AngleMax {
				t.Fatalf("%s: angle %d outside its limits", tc.name, tg.Angle)
			}
		}
	}
}

func TestPushResendAndAcknowledge(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig(t)
	cfg.Enabled, cfg.AckTimeout, cfg.AckRetries = true, 30*time.Millisecond, 2
	c := start(t, cfg)
	r := dial(t, c)
	r.startComm()
	r.command(midSelectPset, "005")
	r.command(midSubscribe, "")
	if _, err := c.Tighten(ctx, 1); err != nil {
		t.Fatal(err)
	}
	first := r.expect(midResult)
	again := r.expect(midResult) // unacknowledged: sent again after AckTimeout
	if first.data != again.data || !strings.Contains(first.data, "23"+"0000000001") {
		t.Fatalf("resent %q, first %q", again.data, first.data)
	}
	r.send(midResultAck, 1, "")
	waitFor(t, "the acknowledge", func() bool { return c.Stats().Unacknowledged == 0 })
	if _, err := c.Tighten(ctx, 1); err != nil {
		t.Fatal(err)
	}
	second := r.expect(midResult)
	if !strings.Contains(second.data, "230000000002") {
		t.Fatalf("next result %q is not tightening 2", second.data)
	}
	// Never acknowledged: two resends, then the link is closed as broken.
	r.expect(midResult)
	r.expect(midResult)
	if _, err := r.recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("link not closed after the retries: %v", err)
	}
	if got := c.Stats().Unacknowledged; got != 1 {
		t.Errorf("%d results unacknowledged, want tightening 2 kept", got)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig(t)
	cfg.StateDir, cfg.Enabled = t.TempDir(), true
	c := start(t, cfg)
	r := dial(t, c)
	r.startComm()
	r.command(midSelectPset, "005")
	r.command(midVIN, "VINBBB")
	r.command(midSubscribe, "")
	for range 3 {
		if _, err := c.Tighten(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	r.expect(midResult) // tightening 1, not acknowledged
	before := c.Truth()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}

	cfg.Addr = c.Addr()
	d := start(t, cfg) // a new controller on the same state dir
	if got := d.Truth(); !sameTruth(t, got, before) {
		t.Fatalf("truth after restart:\n%+v\nwant\n%+v", got, before)
	}
	if d.Pset() != 5 || d.VIN() != "VINBBB" || !d.Enabled() {
		t.Errorf("state after restart: pset %d VIN %q enabled %v", d.Pset(), d.VIN(), d.Enabled())
	}
	r = dial(t, d)
	r.startComm()
	r.command(midSubscribe, "")
	for id := range 3 {
		m := r.expect(midResult)
		if !strings.Contains(m.data, fmt.Sprintf("23%010d", id+1)) {
			t.Fatalf("pushed after restart %q, want tightening %d", m.data, id+1)
		}
		r.send(midResultAck, 1, "")
	}
	t4, err := d.Tighten(ctx, 1)
	if err != nil || t4.ID != 4 {
		t.Fatalf("tightening after restart: id %d, %v; want id 4", t4.ID, err)
	}
}

// sameTruth compares tightenings as their JSON lines (time.Time values
// read back carry another *Location).
func sameTruth(t *testing.T, a, b []Tightening) bool {
	var ja, jb bytes.Buffer
	if err := WriteTruth(&ja, a); err != nil {
		t.Fatal(err)
	}
	if err := WriteTruth(&jb, b); err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja.Bytes(), jb.Bytes())
}

func TestOldResults(t *testing.T) {
	ctx := t.Context()
	cfg := testConfig(t)
	cfg.Enabled, cfg.MaxResultRevision = true, 2
	c := start(t, cfg)
	r := dial(t, c)
	r.startComm()
	r.send(midOldRequest, 1, "0000000000")
	if m := r.expect(midError); m.data != "006415" {
		t.Fatalf("newest of no tightening answered %q, want error 15", m.data)
	}
	r.command(midSelectPset, "005")
	for range 3 {
		if _, err := c.Tighten(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		rev      int
		id, want string
	}{{1, "0000000002", "010000000002"}, {2, "0000000000", "010000000003"}} {
		r.send(midOldRequest, tc.rev, tc.id)
		m := r.expect(midOldResult)
		if m.rev != tc.rev || !strings.HasPrefix(m.data, tc.want) {
			t.Errorf("MID 0064 rev %d for %s: rev %d %q", tc.rev, tc.id, m.rev, m.data)
		}
	}
	r.send(midOldRequest, 3, "0000000001")
	if m := r.expect(midError); m.data != "006497" {
		t.Errorf("MID 0064 rev 3 above MaxResultRevision answered %q, want error 97", m.data)
	}
	r.send(midOldRequest, 1, "0000000009")
	if m := r.expect(midError); m.data != "006415" {
		t.Errorf("unknown tightening answered %q, want error 15", m.data)
	}
}

func TestSilentClientDropped(t *testing.T) {
	cfg := testConfig(t)
	cfg.KeepAliveTimeout = 50 * time.Millisecond
	c := start(t, cfg)
	r := dial(t, c)
	r.startComm()
	if _, err := r.recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("silent client not dropped: %v", err)
	}
}

func TestTruthRoundTrip(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	in := []Tightening{
		{ID: 1, Controller: "A", VIN: "V1", Pset: 5, OK: true, Torque: 12000, Time: now},
		{ID: 2, Controller: "A", VIN: "V1", Pset: 5, TorqueStatus: 2, Torque: 15000, Time: now.Add(time.Second)},
	}
	var b bytes.Buffer
	if err := WriteTruth(&b, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadTruth(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d tightenings, want %d", len(out), len(in))
	}
	for i := range in {
		if !out[i].Time.Equal(in[i].Time) {
			t.Errorf("tightening %d time %v, want %v", i, out[i].Time, in[i].Time)
		}
		out[i].Time = in[i].Time
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", out, in)
	}
	if _, err := ReadTruth(strings.NewReader("{\"tightening_id\":1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v, want an error naming line 2", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no tools", func(c *Config) { c.Tools = nil }, "Tools"},
		{"bad channel", func(c *Config) { c.Tools[0].Channel = 100 }, "Channel"},
		{"torque order", func(c *Config) { p := wheelPset(); p.TorqueTarget = 200; c.Tools[0].Psets[5] = p }, "Psets[5]"},
		{"revision", func(c *Config) { c.MaxRevision = 9 }, "MaxRevision"},
		{"nok rate", func(c *Config) { c.NOKRate = 2 }, "NOKRate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.edit(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v does not name %s", err, tc.field)
			}
		})
	}
	var stopped Controller
	if err := stopped.Stop(); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
}
