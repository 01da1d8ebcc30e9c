package stations_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/simulator/torque"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The tightening benchmark: 20 simulated controllers tighten as fast as
// they are acknowledged (64 results may await their MID 0062 at once), and
// either one agent makes every result a durable tightening event
// (JetStream, file store) before it acknowledges it, or a bare TCP loop
// reads the same MID 0061 frames and acknowledges each at once — the
// baseline, in the same run.

const benchControllers = 20

func benchTools(b *testing.B) []*torque.Controller {
	var out []*torque.Controller
	for i := range benchControllers {
		c, err := torque.New(torque.Config{Name: fmt.Sprintf("B%02d-NR1", i+1), Enabled: true, PushWindow: 64,
			Tools: []torque.Tool{{Channel: 1, Serial: "BENCH", Psets: map[int]torque.Pset{
				1: {Name: "bench", TorqueMin: 40, TorqueMax: 50, TorqueTarget: 45, AngleMin: 10, AngleMax: 80, AngleTarget: 45, BatchSize: 4}}}},
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Stop() })
		out = append(out, c)
	}
	return out
}

// tightenAll makes n tightenings spread over the controllers (selecting
// their pset first) and waits until every one is acknowledged.
func tightenAll(b *testing.B, cs []*torque.Controller, n int) {
	var wg sync.WaitGroup
	for i, c := range cs {
		share := n / len(cs)
		if i < n%len(cs) {
			share++
		}
		wg.Go(func() {
			for range share {
				if _, err := c.Tighten(b.Context(), 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, c := range cs {
		for c.Stats().Unacknowledged > 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// bareClient subscribes to c's results at revision 7 and acknowledges
// every MID 0061 at once; it selects pset 1 first.
func bareClient(b *testing.B, addr string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
	send := func(mid, rev int, data string) {
		if _, err := fmt.Fprintf(conn, "%04d%04d%03d         %s\x00", 20+len(data), mid, rev, data); err != nil {
			b.Fatal(err)
		}
	}
	read := func() (int, error) {
		head := make([]byte, 20)
		if _, err := io.ReadFull(r, head); err != nil {
			return 0, err
		}
		n, _ := strconv.Atoi(string(head[:4]))
		if _, err := io.ReadFull(r, make([]byte, n-20+1)); err != nil {
			return 0, err
		}
		return strconv.Atoi(string(head[4:8]))
	}
	for _, m := range []struct{ mid, rev int }{{1, 6}, {18, 1}, {60, 7}} {
		data := ""
		if m.mid == 18 {
			data = "001"
		}
		send(m.mid, m.rev, data)
		if _, err := read(); err != nil {
			b.Fatal(err)
		}
	}
	go func() {
		for {
			mid, err := read()
			if err != nil {
				return
			}
			if mid == 61 {
				send(62, 1, "")
			}
		}
	}()
}

func BenchmarkTighteningResults(b *testing.B) {
	b.Run("bare TCP read loop", func(b *testing.B) {
		cs := benchTools(b)
		for _, c := range cs {
			bareClient(b, c.Addr())
		}
		for _, c := range cs {
			for !c.Stats().Subscribed {
				time.Sleep(time.Millisecond)
			}
		}
		b.ResetTimer()
		start := time.Now()
		tightenAll(b, cs, b.N)
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "results/s")
	})
	b.Run("agent, durable in JetStream", func(b *testing.B) {
		cs := benchTools(b)
		dir := b.TempDir()
		br, err := broker.Start(broker.Config{StoreDir: filepath.Join(dir, "nats")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(br.Shutdown)
		nc, err := nats.Connect(br.URL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		if err := streams.Ensure(b.Context(), js, 1); err != nil {
			b.Fatal(err)
		}
		spool, err := stations.OpenSpool(stations.SpoolConfig{Path: filepath.Join(dir, "spool.db")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = spool.Close() })
		// Without an interlock the agent selects no pset: a first client does.
		for _, c := range cs {
			preselect(b, c.Addr())
		}
		lc := &line.Config{Version: 1, Plant: "US1", Line: "L1", NodePattern: "ns=1;s={station}.{tag}"}
		for i, c := range cs {
			// No interlock (no VinPresent): the tools stay as they are; the
			// PLC is not there, which the agent only logs.
			lc.Stations = append(lc.Stations, line.Station{ID: fmt.Sprintf("B%02d", i+1), Endpoint: "opc.tcp://127.0.0.1:1",
				Nodes: map[string]line.Tag{"VinPresent": line.AbsentTag(), "Result.BodyNo": line.AbsentTag()},
				Controllers: []line.Controller{{ID: fmt.Sprintf("B%02d-NR1", i+1), Address: c.Addr(),
					Joints: []line.JointSpec{{Name: "j{n}", Count: 4, Class: "A"}}, PsetDefault: 1}}})
		}
		if err := lc.Validate(); err != nil {
			b.Fatal(err)
		}
		agent, err := stations.NewAgent(stations.AgentConfig{Line: lc, Publisher: streams.NewPublisher(js), Spool: spool,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan error, 1)
		go func() { done <- agent.Run(ctx) }()
		b.Cleanup(func() { cancel(); <-done })
		for _, c := range cs {
			for !c.Stats().Subscribed {
				time.Sleep(time.Millisecond)
			}
		}
		b.ResetTimer()
		start := time.Now()
		tightenAll(b, cs, b.N)
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "results/s")
	})
}

// preselect selects pset 1 over a link of its own and closes it.
func preselect(b *testing.B, addr string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for _, f := range []string{"00200001006         \x00", "00230018001         001\x00", "00200003001         \x00"} {
		if _, err := io.WriteString(conn, f); err != nil {
			b.Fatal(err)
		}
	}
	_, _ = io.Copy(io.Discard, conn) // until the controller closes after MID 0003
}
