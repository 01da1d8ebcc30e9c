package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/simulator/torque"
	"github.com/keiline/keiline/stations/openprotocol"
)

// TestTorqueCheck: torque check talks to each controller of the config
// and names the one it cannot reach and the one another client holds.
func TestTorqueCheck(t *testing.T) {
	ctl, err := torque.New(torque.Config{Name: "C04-NR1", Addr: "127.0.0.1:0", CellID: 4, MaxRevision: 3, Logger: slog.New(slog.DiscardHandler),
		Tools: []torque.Tool{{Channel: 1, Serial: "NR1-0001", Psets: map[int]torque.Pset{1: {Name: "M12", TorqueMin: 95, TorqueMax: 120, TorqueTarget: 108, AngleMax: 60, AngleTarget: 45, BatchSize: 4}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Stop() })
	ln, err := net.Listen("tcp", "127.0.0.1:0") // an address where no controller answers
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	lc := line.Default()
	addrs := map[string]string{}
	for _, sc := range lc.Controllers() {
		addrs[sc.Controller.ID] = dead
	}
	addrs["C04-NR1"] = ctl.Addr()
	if err := lc.SetControllerAddresses(addrs); err != nil {
		t.Fatal(err)
	}
	y, err := lc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "line.yaml")
	if err := os.WriteFile(cfg, y, 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err = torqueCheck(t.Context(), []string{"--config", cfg, "--station", "C04", "--timeout", "5s"}, &out)
	if err == nil || !strings.Contains(err.Error(), "3 of 4 controllers failed") {
		t.Errorf("check of C04: err %v, want 3 of 4 failed\n%s", err, out.String())
	}
	var nr1, nr2 string
	for _, l := range strings.Split(out.String(), "\n") {
		switch {
		case strings.HasPrefix(l, "C04 ") && strings.Contains(l, "C04-NR1"):
			nr1 = l
		case strings.Contains(l, "C04-NR2"):
			nr2 = l
		}
	}
	if !strings.Contains(nr1, " 3 ") || !strings.Contains(nr1, "none kept") || !strings.HasSuffix(strings.TrimSpace(nr1), "OK") {
		t.Errorf("C04-NR1 line %q, want revision 3 (the controller's highest), no tightening yet, OK", nr1)
	}
	if !strings.Contains(nr2, "FAIL") || !strings.Contains(nr2, "C04-NR2 ("+dead+")") {
		t.Errorf("C04-NR2 line %q, want a failure naming the controller and its address", nr2)
	}

	// Another client (the agent) holds the controller: the check says so.
	agent, err := openprotocol.New(openprotocol.Config{ID: "C04-NR1", Address: ctl.Addr(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- agent.Run(t.Context()) }()
	defer func() { agent.Close(); <-done }()
	go func() {
		for range agent.Results() {
		}
	}()
	for deadline := time.Now().Add(time.Minute); !agent.Status().Connected; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first client never connected")
		}
	}
	out.Reset()
	if err := torqueCheck(t.Context(), []string{"--config", cfg, "--station", "C04", "--timeout", "5s"}, &out); err == nil ||
		!strings.Contains(err.Error(), "4 of 4 controllers failed") {
		t.Errorf("with the controller held: err %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "error 96 client already connected") {
		t.Errorf("the held controller's line does not say another client holds it:\n%s", out.String())
	}
}

// TestTorqueWatch: watch shows the newest tightening and acknowledges
// nothing: the controller still waits for the agent's MID 0062.
func TestTorqueWatch(t *testing.T) {
	ctl, err := torque.New(torque.Config{Name: "C04-NR1", Addr: "127.0.0.1:0", CellID: 4, Enabled: true, Logger: slog.New(slog.DiscardHandler),
		Tools: []torque.Tool{{Channel: 1, Serial: "NR1-0001", Psets: map[int]torque.Pset{1: {Name: "M12", TorqueMin: 95, TorqueMax: 120, TorqueTarget: 108, AngleMax: 60, AngleTarget: 45, BatchSize: 4}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Stop() })
	lc := line.Default()
	addrs := map[string]string{}
	for _, sc := range lc.Controllers() {
		addrs[sc.Controller.ID] = "127.0.0.1:1"
	}
	addrs["C04-NR1"] = ctl.Addr()
	if err := lc.SetControllerAddresses(addrs); err != nil {
		t.Fatal(err)
	}
	y, err := lc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "line.yaml")
	if err := os.WriteFile(cfg, y, 0o644); err != nil {
		t.Fatal(err)
	}
	// The agent selected pset 1 before it stopped.
	conn, err := net.Dial("tcp", ctl.Addr())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"00200001006         \x00", "00230018001         001\x00", "00200003001         \x00"} {
		if _, err := io.WriteString(conn, f); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = io.Copy(io.Discard, conn) // until the controller closes after MID 0003
	conn.Close()
	out := &lockedOut{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- torqueWatch(ctx, []string{"--config", cfg, "--controller", "C04-NR1", "--every", "10ms"}, out)
	}()
	for !ctl.Stats().Subscribed {
		time.Sleep(time.Millisecond)
	}
	x, err := ctl.Tighten(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("tightening %d ", x.ID)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(out.String(), want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("watch never showed %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(out.String(), "joint lug_fl_1 class A") {
		t.Errorf("watch does not name the joint:\n%s", out.String())
	}
	if n := ctl.Stats().Unacknowledged; n != 1 {
		t.Errorf("%d results unacknowledged, want the one: watch must acknowledge nothing", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch: %v", err)
	}
}

// lockedOut is an io.Writer the test reads while the tool writes.
type lockedOut struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedOut) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedOut) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
