package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/simulator/torque"
	"github.com/keiline/keiline/stations"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The record latency benchmark (issue 15): one simulated controller
// tightens, one tightening at a time, and either a bare TCP loop reads its
// MID 0061 frame and acknowledges it at once — the baseline, in the same
// run — or the whole path records it: the agent makes it a durable event
// (JetStream, file store) and acknowledges it, the tracker commits its row
// to PostgreSQL. Each tightening's time runs from the controller's result
// to the frame read, or to the row committed.

// benchController is a simulated controller whose tool is enabled.
func benchController(b *testing.B) *torque.Controller {
	c, err := torque.New(torque.Config{Name: "B01-NR1", Enabled: true,
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
	return c
}

// opFrame is an Open Protocol frame of mid at revision rev.
func opFrame(mid, rev int, data string) string {
	return fmt.Sprintf("%04d%04d%03d         %s\x00", 20+len(data), mid, rev, data)
}

// benchBareLink starts a bare client of c that sends each MID 0061's
// arrival on got and acknowledges it at once; first it downloads v and
// selects pset 1.
func benchBareLink(b *testing.B, c *torque.Controller, v string, got chan<- time.Time) {
	conn, err := net.Dial("tcp", c.Addr())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
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
	for _, f := range []string{opFrame(1, 6, ""), opFrame(50, 1, fmt.Sprintf("%-25s", v)), opFrame(18, 1, "001"), opFrame(60, 7, "")} {
		if _, err := io.WriteString(conn, f); err != nil {
			b.Fatal(err)
		}
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
				got <- time.Now()
				_, _ = io.WriteString(conn, opFrame(62, 1, ""))
			}
		}
	}()
}

// benchPreselect downloads v and selects pset 1 over a link of its own:
// the agent without an interlock leaves the tool as it is.
func benchPreselect(b *testing.B, c *torque.Controller, v string) {
	conn, err := net.Dial("tcp", c.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for _, f := range []string{opFrame(1, 6, ""), opFrame(50, 1, fmt.Sprintf("%-25s", v)), opFrame(18, 1, "001"), opFrame(3, 1, "")} {
		if _, err := io.WriteString(conn, f); err != nil {
			b.Fatal(err)
		}
	}
	_, _ = io.Copy(io.Discard, conn)
}

// reportLatency reports the median and p99 of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkTighteningToRow(b *testing.B) {
	v, err := vin.Make("7KL", "KW1NA", 2027, 'U', 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bare TCP read loop", func(b *testing.B) {
		c := benchController(b)
		got := make(chan time.Time, 1)
		benchBareLink(b, c, v, got)
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if _, err := c.Tighten(b.Context(), 1); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, (<-got).Sub(start))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
	b.Run("agent, tracker, committed row", func(b *testing.B) {
		c := benchController(b)
		benchPreselect(b, c, v)
		tr, store := benchRecordPath(b, c)
		sub, unsubscribe := tr.Subscribe()
		defer unsubscribe()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			x, err := c.Tighten(b.Context(), 1)
			if err != nil {
				b.Fatal(err)
			}
			id := "US1.L1.B01.tightening.B01-NR1." + strconv.FormatUint(uint64(x.ID), 10)
			for !benchRowThere(b, store, id) {
				select {
				case <-sub:
				case <-time.After(time.Second):
				}
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		reportLatency(b, lat)
	})
}

// benchRowThere reports whether the tightening row of event id is
// committed.
func benchRowThere(b *testing.B, s *schema.Store, id string) bool {
	var n int
	if err := s.Pool().QueryRow(b.Context(), `SELECT count(*) FROM tightenings WHERE event_id = $1`, id).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n > 0
}

// benchRecordPath starts the broker, the agent of controller c (station
// B01, no PLC interlock) and a tracker recording into a database of its
// own.
func benchRecordPath(b *testing.B, c *torque.Controller) (*pipeline.Tracker, *schema.Store) {
	dir := b.TempDir()
	store, err := schema.Open(b.Context(), pgtest.NewDB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
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
	lc := &line.Config{Version: 1, Plant: "US1", Line: "L1", NodePattern: "ns=1;s={station}.{tag}"}
	lc.Stations = append(lc.Stations, line.Station{ID: "B01", Endpoint: "opc.tcp://127.0.0.1:1",
		Nodes:       map[string]line.Tag{"VinPresent": line.AbsentTag(), "Result.BodyNo": line.AbsentTag()},
		Controllers: []line.Controller{{ID: "B01-NR1", Address: c.Addr(), Joints: []line.JointSpec{{Name: "j{n}", Count: 4, Class: "A"}}, PsetDefault: 1}}})
	if err := lc.Validate(); err != nil {
		b.Fatal(err)
	}
	agent, err := stations.NewAgent(stations.AgentConfig{Line: lc, Publisher: streams.NewPublisher(js), Spool: spool, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: pipeline.Route{Plant: "US1", Line: "L1", Stations: []pipeline.RouteStation{{ID: "B01"}}},
		Store: store, JetStream: js, Logger: slog.New(slog.DiscardHandler), Torque: &pipeline.TorqueConfig{ClassA: lc.ClassAJoints}})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Setup(b.Context()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(b.Context()))
	done := make(chan error, 2)
	go func() { done <- agent.Run(ctx) }()
	go func() { done <- tr.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done; <-done })
	for !c.Stats().Subscribed {
		time.Sleep(time.Millisecond)
	}
	return tr, store
}
