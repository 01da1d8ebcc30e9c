package stations_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/stations"
	"github.com/prometheus/client_golang/prometheus"
)

// The polling benchmark: one agent process polls 20 PLCs of 977 tags each
// (the most a station maps: 64 part, joint and test slots) every 100 ms,
// next to a bare gopcua batch-Read loop over the same nodes on the same
// schedule in the same run. The PLCs are gopcua servers in a child process
// (a re-run of this test binary), so the CPU measured in this process is
// the client's alone.

const (
	benchPLCs   = 20
	benchSlots  = line.SlotsMax
	benchPoll   = 100 * time.Millisecond
	benchRounds = 4
	benchRound  = 3 * time.Second
	benchWarmup = 500 * time.Millisecond
	benchEnv    = "KEILINE_BENCH_PLC_SERVERS"
)

// benchStation is PLC i of the benchmark: every slot of every kind.
func benchStation(i int, endpoint string) line.Station {
	id := fmt.Sprintf("B%02d", i+1)
	st := line.Station{ID: id, Endpoint: endpoint, Parts: benchSlots, Joints: benchSlots, Tests: benchSlots,
		MaxNodesPerRead: 1000, Nodes: map[string]line.Tag{}}
	for _, tag := range st.Tags() {
		st.Nodes[tag] = line.NodeTag("ns=1;s=" + id + "." + tag)
	}
	return st
}

// benchSpace is a gopcua namespace of fixed tag values.
type benchSpace struct {
	id     uint16
	values map[string]*ua.DataValue
}

func (s *benchSpace) Name() string                        { return "urn:keiline:bench" }
func (s *benchSpace) AddNode(n *server.Node) *server.Node { return n }
func (s *benchSpace) Node(*ua.NodeID) *server.Node        { return nil }
func (s *benchSpace) Objects() *server.Node               { return nil }
func (s *benchSpace) Root() *server.Node                  { return nil }
func (s *benchSpace) ID() uint16                          { return s.id }
func (s *benchSpace) SetID(id uint16)                     { s.id = id }
func (s *benchSpace) Browse(*ua.BrowseDescription) *ua.BrowseResult {
	return &ua.BrowseResult{StatusCode: ua.StatusBadNotSupported}
}
func (s *benchSpace) SetAttribute(*ua.NodeID, ua.AttributeID, *ua.DataValue) ua.StatusCode {
	return ua.StatusBadNotWritable
}
func (s *benchSpace) Attribute(n *ua.NodeID, a ua.AttributeID) *ua.DataValue {
	if dv, ok := s.values[n.StringID()]; ok && a == ua.AttributeIDValue {
		return dv
	}
	return &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}
}

// TestBenchPLCServers is the child process of BenchmarkAgentPolling: it
// serves the benchmark's PLCs until its stdin closes.
func TestBenchPLCServers(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(benchEnv))
	if n == 0 {
		t.Skip("the PLC servers of BenchmarkAgentPolling; run by the benchmark itself")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var srvs []*server.Server
	var endpoints []string
	started := time.Now()
	for i := range n {
		st := benchStation(i, "")
		space := &benchSpace{values: map[string]*ua.DataValue{}}
		for j, tag := range st.Tags() {
			var v any
			switch {
			case tag == "DataReady" || tag == "Andon" || strings.HasSuffix(tag, ".OK"):
				v = false
			case tag == "CycleCounter" || tag == "AckCounter" || tag == "StateCounter":
				v = uint32(7)
			case tag == "Heartbeat" || tag == "FaultCode":
				v = int32(j)
			case tag == "Result.StartTime" || tag == "Result.EndTime":
				v = started.UnixMilli() // the clock's, never a fixed date
			case strings.HasSuffix(tag, "Nm") || strings.HasSuffix(tag, "Deg") || strings.HasSuffix(tag, ".Value") ||
				strings.HasSuffix(tag, ".Low") || strings.HasSuffix(tag, ".High"):
				v = float64(j) / 7
			default:
				v = fmt.Sprintf("%s-%d", tag, j)
			}
			space.values[st.ID+"."+tag] = &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueServerTimestamp,
				Value: ua.MustVariant(v), ServerTimestamp: time.Now()}
		}
		port := freeTCPPort(t)
		srv := server.New(server.EndPoint("127.0.0.1", port), server.EnableSecurity("None", ua.MessageSecurityModeNone),
			server.EnableAuthMode(ua.UserTokenTypeAnonymous))
		srv.AddNamespace(space)
		if err := srv.Start(ctx); err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, srv)
		endpoints = append(endpoints, fmt.Sprintf("opc.tcp://127.0.0.1:%d", port))
	}
	b, _ := json.Marshal(endpoints)
	fmt.Printf("READY %s\n", b)
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, s := range srvs {
		_ = s.Close()
	}
	cancel()
	os.Exit(0) // a helper process: no goleak check of the servers' goroutines
}

func freeTCPPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// benchPLCs starts the PLC servers in a child process and returns their
// endpoints and the child's pid.
func startBenchPLCs(b *testing.B) ([]string, int) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchPLCServers$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", benchEnv, benchPLCs))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
			var eps []string
			if err := json.Unmarshal([]byte(rest), &eps); err != nil {
				b.Fatal(err)
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return eps, cmd.Process.Pid
		}
	}
	b.Fatalf("PLC servers did not start: %v", sc.Err())
	return nil, 0
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childCPUTime is the user+system CPU time of process pid.
func childCPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// phase is one measured run: Read requests and CPU over its wall time.
type phase struct {
	reads             int64
	wall, cpu, plcCPU time.Duration
}

func (p phase) readsPerSec() float64 { return float64(p.reads) / p.wall.Seconds() }

// measure runs during d, counting reads with count, and returns the phase.
func measure(pid int, d time.Duration, count func() int64) phase {
	r0, c0, s0, t0 := count(), cpuTime(), childCPUTime(pid), time.Now()
	time.Sleep(d)
	return phase{reads: count() - r0, wall: time.Since(t0), cpu: cpuTime() - c0, plcCPU: childCPUTime(pid) - s0}
}

// bareLoop reads every station's nodes with plain gopcua clients, one
// batched Read per PLC every interval (flat out when interval is 0),
// until ctx is done.
func bareLoop(ctx context.Context, b *testing.B, sts []line.Station, interval time.Duration, reads *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, st := range sts {
		c, err := opcua.NewClient(st.Endpoint, opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AutoReconnect(false))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Connect(ctx); err != nil {
			b.Fatal(err)
		}
		var req ua.ReadRequest
		req.TimestampsToReturn = ua.TimestampsToReturnBoth
		tags := st.Tags()
		for _, tag := range append(tags, "CycleCounter") { // the agent reads CycleCounter twice
			req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.MustParseNodeID(st.Node(tag)), AttributeID: ua.AttributeIDValue})
		}
		wg.Go(func() {
			defer c.Close(context.WithoutCancel(ctx))
			var tick <-chan time.Time
			if interval > 0 {
				t := time.NewTicker(interval)
				defer t.Stop()
				tick = t.C
			}
			for ctx.Err() == nil {
				res, err := c.Read(ctx, &req)
				if err != nil || len(res.Results) != len(req.NodesToRead) {
					continue
				}
				reads.Add(1)
				if tick != nil {
					select {
					case <-ctx.Done():
					case <-tick:
					}
				}
			}
		})
	}
	return &wg
}

// agentReads is the sum of keiline_agent_plc_reads_total.
func agentReads() int64 {
	mfs, _ := prometheus.DefaultGatherer.Gather()
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "keiline_agent_plc_reads_total" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "station" && strings.HasPrefix(l.GetValue(), "B") {
						n += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	return int64(n)
}

// BenchmarkAgentPolling compares the agent's polling with a bare gopcua
// loop over the same 20 PLCs × 977 tags at 100 ms.
//
//	go test -run XXX -bench AgentPolling -benchtime 1x ./stations/
func BenchmarkAgentPolling(b *testing.B) {
	eps, pid := startBenchPLCs(b)
	var sts []line.Station
	for i, ep := range eps {
		sts = append(sts, benchStation(i, ep))
	}
	nodes := len(sts[0].Tags()) + 1
	lc := &line.Config{Version: 1, Plant: "US1", Line: "L1", PollInterval: benchPoll, Stations: sts}
	if err := lc.Validate(); err != nil {
		b.Fatal(err)
	}
	js := natsStream(b)
	for range b.N {
		// The machine is shared: the bare loop and the agent take turns in
		// short rounds, so both see the same load.
		var bare, ag, raw phase
		add := func(to *phase, p phase) {
			to.reads += p.reads
			to.wall += p.wall
			to.cpu += p.cpu
			to.plcCPU += p.plcCPU
		}
		for range benchRounds {
			var bareReads atomic.Int64
			ctx, cancel := context.WithCancel(b.Context())
			wg := bareLoop(ctx, b, sts, benchPoll, &bareReads)
			time.Sleep(benchWarmup)
			add(&bare, measure(pid, benchRound, bareReads.Load))
			cancel()
			wg.Wait()

			agent, err := stations.NewAgent(stations.AgentConfig{Line: lc, Publisher: streams.NewPublisher(js), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel = context.WithCancel(b.Context())
			done := make(chan error, 1)
			go func() { done <- agent.Run(ctx) }()
			// Measure once every station is connected and polling, as the
			// bare loop's clients are.
			r0, deadline := agentReads(), time.Now().Add(time.Minute)
			for agentReads()-r0 < 2*benchPLCs && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(benchWarmup)
			add(&ag, measure(pid, benchRound, agentReads))
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		var rawReads atomic.Int64
		ctx, cancel := context.WithCancel(b.Context())
		wg := bareLoop(ctx, b, sts, 0, &rawReads)
		time.Sleep(benchWarmup)
		add(&raw, measure(pid, benchRound, rawReads.Load))
		cancel()
		wg.Wait()

		target := float64(benchPLCs) * float64(time.Second) / float64(benchPoll)
		b.ReportMetric(ag.readsPerSec(), "agent-reads/s")
		b.ReportMetric(bare.readsPerSec(), "bare-reads/s")
		b.ReportMetric(ag.readsPerSec()/bare.readsPerSec(), "agent/bare")
		b.ReportMetric(ag.readsPerSec()*float64(nodes), "agent-values/s")
		b.ReportMetric(float64(bare.cpu)/float64(max(bare.reads, 1))/(float64(ag.cpu)/float64(max(ag.reads, 1))), "bare/agent-cpu-per-read")
		b.ReportMetric(100*ag.cpu.Seconds()/ag.wall.Seconds(), "agent-cpu-%")
		b.ReportMetric(100*bare.cpu.Seconds()/bare.wall.Seconds(), "bare-cpu-%")
		b.Logf("%d PLCs × %d nodes per poll, target %.0f reads/s (%.0f values/s)", benchPLCs, nodes, target, target*float64(nodes))
		for _, r := range []struct {
			name string
			p    phase
		}{{"bare loop, 100 ms", bare}, {"agent, 100 ms", ag}, {"bare loop, flat out", raw}} {
			b.Logf("%-20s %7.1f reads/s %9.0f values/s  client CPU %5.1f%% (%4.0f µs per read)  PLC servers CPU %5.1f%%",
				r.name, r.p.readsPerSec(), r.p.readsPerSec()*float64(nodes), 100*r.p.cpu.Seconds()/r.p.wall.Seconds(),
				float64(r.p.cpu.Microseconds())/float64(max(r.p.reads, 1)), 100*r.p.plcCPU.Seconds()/r.p.wall.Seconds())
		}
	}
}
