package openprotocol

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/simulator/torque"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hangGuard bounds waits that should end, so a broken link fails a test
// instead of hanging it; it is no timing assertion.
const hangGuard = 15 * time.Second

// plantZone is the controllers' time zone in tests: not the machine's, so
// a client reading timestamps in the wrong zone fails.
var plantZone = time.FixedZone("JST", 9*3600)

// logBuf is a log sink the test can read while the client writes.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lines returns the log lines holding every one of subs.
func (l *logBuf) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wheelPset() torque.Pset {
	return torque.Pset{Name: "wheel nut M12", TorqueMin: 110, TorqueMax: 130, TorqueTarget: 120,
		AngleMin: 30, AngleMax: 90, AngleTarget: 60, BatchSize: 5, Strategy: 2}
}

// newController starts a simulated controller, stopped when the test ends.
func newController(t testing.TB, edit func(*torque.Config)) *torque.Controller {
	t.Helper()
	cfg := torque.Config{
		Name: "C04 wheel nutrunner", CellID: 4,
		Tools:    []torque.Tool{{Channel: 1, Serial: "NR-0001", Psets: map[int]torque.Pset{7: wheelPset()}}},
		Seed:     42,
		NOKRate:  0.2,
		Location: plantZone,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := torque.New(cfg)
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

// testConfig is a client config for ctrl with test-sized timings.
func testConfig(ctrl *torque.Controller, id string) Config {
	return Config{
		ID: id, Address: ctrl.Addr(), Location: plantZone,
		KeepAlive: time.Second, ReplyTimeout: 5 * time.Second,
		RedialMin: 5 * time.Millisecond, RedialMax: 50 * time.Millisecond, BusyBackoff: 20 * time.Millisecond,
	}
}

// startClient runs a client until the test ends, logging to the test and
// to the returned buffer.
func startClient(t testing.TB, cfg Config) (*Client, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(t.Context()) }()
	t.Cleanup(func() {
		c.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("client log:\n%s", logs.String())
		}
	})
	return c, logs
}

func waitConnected(t testing.TB, c *Client, connects int) {
	t.Helper()
	waitFor(t, "the client connected", func() bool {
		s := c.Status()
		return s.Connected && s.Connects >= connects
	})
}

func recvResult(t testing.TB, c *Client) Result {
	t.Helper()
	select {
	case r, ok := <-c.Results():
		if !ok {
			t.Fatal("results closed")
		}
		return r
	case <-time.After(hangGuard):
		t.Fatal("timed out waiting for a result")
	}
	return Result{}
}

// prepare enables the tool, selects the pset and downloads a VIN.
func prepare(t testing.TB, c *Client, vin string) {
	t.Helper()
	ctx := t.Context()
	for _, err := range []error{c.EnableTool(ctx), c.SelectPset(ctx, 7), c.DownloadVIN(ctx, vin)} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func tighten(t testing.TB, ctrl *torque.Controller, n int) []torque.Tightening {
	t.Helper()
	var out []torque.Tightening
	for range n {
		tg, err := ctrl.Tighten(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tg)
	}
	return out
}

// checkResult compares a client's result with the controller's truth, for
// every field the result's MID and revision carry.
func checkResult(t *testing.T, r Result, want torque.Tightening) {
	t.Helper()
	nm := func(cnm int) float64 { return float64(cnm) / 100 }
	eq := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	type field struct {
		name      string
		got, want any
	}
	fields := []field{
		{"tightening id", r.TighteningID, want.ID},
		{"VIN", r.VIN, want.VIN},
		{"pset", r.Pset, want.Pset},
		{"batch counter", r.BatchCounter, want.BatchCounter},
		{"batch status", int(r.BatchStatus), want.BatchStatus},
		{"OK", r.OK, want.OK},
		{"torque status", int(r.TorqueStatus), want.TorqueStatus},
		{"angle status", int(r.AngleStatus), want.AngleStatus},
		{"torque", eq(r.Torque, nm(want.Torque)), true},
		{"angle", r.Angle, want.Angle},
		{"time", r.Time.Equal(want.Time), true},
		{"cell", r.CellID, want.CellID},
		{"channel", r.ChannelID, want.Channel},
		{"controller name", r.ControllerName, want.Controller},
	}
	if r.MID == 61 || r.Revision >= 2 {
		fields = append(fields, field{"job id", r.JobID, want.JobID}, field{"batch size", r.BatchSize, want.BatchSize})
	}
	if r.MID == 61 {
		if r.Limits == nil {
			t.Fatalf("tightening %d: MID 0061 without limits", r.TighteningID)
		}
		l := r.Limits
		fields = append(fields,
			field{"torque min", eq(l.TorqueMin, nm(want.TorqueMin)), true},
			field{"torque max", eq(l.TorqueMax, nm(want.TorqueMax)), true},
			field{"torque target", eq(l.TorqueTarget, nm(want.TorqueTarget)), true},
			field{"angle min", l.AngleMin, want.AngleMin},
			field{"angle max", l.AngleMax, want.AngleMax},
			field{"angle target", l.AngleTarget, want.AngleTarget},
			field{"pset changed", r.PsetChanged.Equal(want.PsetChanged), true})
	} else if r.Limits != nil {
		t.Errorf("tightening %d: MID 0065 with limits %+v", r.TighteningID, r.Limits)
	}
	if r.Revision >= 2 {
		d := r.Detail
		if d == nil {
			t.Fatalf("tightening %d: revision %d without detail", r.TighteningID, r.Revision)
		}
		fields = append(fields,
			field{"strategy", d.Strategy, want.Strategy},
			field{"tool serial", d.ToolSerial, want.ToolSerial},
			field{"error status", d.TighteningErrorStatus, want.ErrorStatus})
		if r.Revision >= 3 {
			fields = append(fields, field{"torque unit", d.TorqueUnit, 1})
			if r.MID == 61 {
				fields = append(fields, field{"pset name", d.PsetName, want.PsetName})
			}
		}
		if r.MID == 61 && r.Revision >= 7 {
			fields = append(fields, field{"compensated angle", eq(d.CompensatedAngle, float64(want.Angle)), true})
		}
	} else if r.Detail != nil {
		t.Errorf("tightening %d: revision 1 with detail", r.TighteningID)
	}
	for _, f := range fields {
		if f.got != f.want {
			t.Errorf("tightening %d (MID %04d rev %d) %s: got %v, want %v", r.TighteningID, r.MID, r.Revision, f.name, f.got, f.want)
		}
	}
	if r.Controller == "" || len(r.Raw) == 0 || r.Raw[len(r.Raw)-1] != 0 {
		t.Errorf("tightening %d: controller %q raw %q", r.TighteningID, r.Controller, r.Raw)
	}
}

// sink is a caller that makes results durable: it keeps each tightening
// once (dedup by tightening id), acknowledges every result it receives,
// and knows the last id up to which it has them all.
type sink struct {
	mu         sync.Mutex
	got        map[uint32]Result
	deliveries int
	mark       uint32 // every id from the first received to mark is kept
	done       chan struct{}
}

func newSink() *sink { return &sink{got: map[uint32]Result{}, done: make(chan struct{})} }

// run consumes c's results until they close.
func (s *sink) run(t *testing.T, c *Client) {
	go func() {
		defer close(s.done)
		for r := range c.Results() {
			s.add(r)
			if err := c.Ack(context.WithoutCancel(t.Context()), r); err != nil && !errors.Is(err, ErrLinkLost) {
				t.Errorf("ack: %v", err)
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-s.done })
}

func (s *sink) add(r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries++
	if _, ok := s.got[r.TighteningID]; !ok {
		s.got[r.TighteningID] = r
	}
	if s.mark == 0 {
		s.mark = r.TighteningID
	}
	for {
		if _, ok := s.got[s.mark+1]; !ok {
			break
		}
		s.mark++
	}
}

func (s *sink) lastDurable(context.Context) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mark, nil
}

func (s *sink) has(ids ...uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.got[id]; !ok {
			return false
		}
	}
	return true
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *sink) result(id uint32) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[id]
}

func ids(ts []torque.Tightening) []uint32 {
	var out []uint32
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}
