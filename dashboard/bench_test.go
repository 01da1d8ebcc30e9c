package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/simulator"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchLine is the default line's layout (the simulator's, not started).
func benchLine(b *testing.B) []dashboard.Station {
	b.Helper()
	p, err := simulator.New(simulator.Config{})
	if err != nil {
		b.Fatal(err)
	}
	var out []dashboard.Station
	for _, s := range p.Stations() {
		out = append(out, dashboard.Station{ID: s.ID, Name: s.Name, Zone: s.Zone, Optional: s.Optional})
	}
	return out
}

// benchEvents makes about n events of cars going down the line: at each
// station a state change that brings the car in and the cycle on it, with
// 3 parts, 12 joints and 4 tests (as pipeline's BenchmarkIngest).
func benchEvents(b *testing.B, line []dashboard.Station, n int, start time.Time) []*event.Event {
	b.Helper()
	counter := map[string]uint32{}
	var evs []*event.Event
	at := start
	for car := 1; len(evs) < n; car++ {
		v, err := vin.Make("7KL", "KW1NA", 2027, 'U', car)
		if err != nil {
			b.Fatal(err)
		}
		for _, st := range line {
			if st.Optional {
				continue
			}
			at = at.Add(10 * time.Millisecond)
			counter[st.ID+"s"]++
			state, err := event.NewEvent("US1", "L1", st.ID, event.KindState, "", 0, uint64(counter[st.ID+"s"]), at, at,
				&event.State{Counter: uint64(counter[st.ID+"s"]), State: "running", VinPresent: v})
			if err != nil {
				b.Fatal(err)
			}
			c := &event.Cycle{Result: "OK", Model: "KW", Variant: "NA", Colour: "mint", StartedAt: at, Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}}
			for p := range 3 {
				c.Parts = append(c.Parts, event.Part{PartNumber: fmt.Sprintf("PN-%s-%d", st.ID, p), Serial: fmt.Sprintf("SN-%d-%d", car, p), Lot: "LOT-42", Supplier: "SUP-A"})
			}
			for j := range 12 {
				c.Joints = append(c.Joints, event.Joint{Joint: fmt.Sprintf("J%d", j+1), Tool: st.ID + "-NR1", TorqueNm: new(108.25), AngleDeg: new(42.5), OK: new(true)})
			}
			for x := range 4 {
				c.Tests = append(c.Tests, event.Test{Name: fmt.Sprintf("T%d", x+1), Value: new(3.2), Unit: "mm", Low: new(2.5), High: new(3.5), OK: new(true)})
			}
			counter[st.ID+"c"]++
			c.Counter = counter[st.ID+"c"]
			at = at.Add(10 * time.Millisecond)
			cycle, err := event.NewEvent("US1", "L1", st.ID, event.KindCycle, v, 0, uint64(c.Counter), at, at, c)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, state, cycle)
		}
	}
	return evs
}

// ingestEnv is a fresh database and JetStream stream with the events
// waiting in it, and a tracker ready to consume them.
type ingestEnv struct {
	store   *schema.Store // the tracker's
	view    *schema.Store // the dashboard's: the read-only role on its own pool
	tracker *pipeline.Tracker
}

func newIngestEnv(b *testing.B, line []dashboard.Station, evs []*event.Event) *ingestEnv {
	b.Helper()
	quiet := slog.New(slog.DiscardHandler)
	url := pgtest.NewDB(b)
	store, err := schema.Open(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(store.Close)
	view, err := schema.OpenAs(b.Context(), url, schema.RoleAuditor)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(view.Close)
	br, err := broker.Start(broker.Config{StoreDir: filepath.Join(b.TempDir(), "nats"), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Shutdown)
	nc, err := nats.Connect(br.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	route := pipeline.Route{Plant: "US1", Line: "L1"}
	for _, s := range line {
		route.Stations = append(route.Stations, pipeline.RouteStation{ID: s.ID, Optional: s.Optional})
	}
	tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: route, Store: store, JetStream: js, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.Setup(b.Context()); err != nil {
		b.Fatal(err)
	}
	pub := streams.NewPublisher(js)
	for _, ev := range evs {
		if err := pub.Publish(b.Context(), ev); err != nil {
			b.Fatal(err)
		}
	}
	return &ingestEnv{store: store, view: view, tracker: tr}
}

// ingest runs the tracker until every event is recorded and returns how
// long it took.
func (e *ingestEnv) ingest(b *testing.B) time.Duration {
	b.Helper()
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- e.tracker.Run(ctx) }()
	for {
		if n, err := e.tracker.Pending(b.Context()); err == nil && n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return d
}

// streamClient reads a dashboard's event stream as a page does, and keeps
// the newest line document.
type streamClient struct {
	mu     sync.Mutex
	events int
	bytes  int
	seq    int64
	ready  chan struct{}
}

func (c *streamClient) run(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<22)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var v struct {
			Seq int64 `json:"seq"`
		}
		if event == "line" {
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				return err
			}
		}
		c.mu.Lock()
		first := c.events == 0
		c.events++
		c.bytes += len(data)
		c.seq = max(c.seq, v.Seq)
		c.mu.Unlock()
		if first {
			close(c.ready)
		}
	}
	return nil
}

// BenchmarkIngestWithStreams measures the tracker's ingest of pre-published
// events alone and with the dashboard following the record and 50 pages
// streaming its updates, in the same run, and reports both rates and their
// ratio (the goal: at least 0.95). Each iteration measures both, one right
// after the other, on fresh databases and streams; the figures are medians
// over the iterations (the ratio the median of each iteration's ratio), so
// a burst of load from the shared machine in one iteration does not decide.
//
//	go test -run XXX -bench IngestWithStreams -benchtime 3x ./dashboard/
func BenchmarkIngestWithStreams(b *testing.B) {
	const n, clients = 4000, 50
	line := benchLine(b)
	var alone, streamed []time.Duration
	var pushes, pushBytes int
	b.StopTimer()
	for i := range b.N {
		evs := benchEvents(b, line, n, time.Now().Add(-time.Hour))
		// Alternate which goes first, so neither gets the warmer machine.
		for _, withStreams := range slices.Backward([]bool{i%2 == 0, i%2 != 0}) {
			e := newIngestEnv(b, line, evs)
			if !withStreams {
				alone = append(alone, e.ingest(b))
				continue
			}
			wake, unsubscribe := e.tracker.Subscribe()
			dash, err := dashboard.Start(b.Context(), dashboard.Config{Addr: "127.0.0.1:0", Store: e.view, Plant: "US1", Line: "L1", Stations: line,
				Wake: wake, ShiftStart: time.Now().Add(-2 * time.Hour), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			var wg sync.WaitGroup
			cs := make([]*streamClient, clients)
			for k := range cs {
				cs[k] = &streamClient{ready: make(chan struct{})}
				wg.Go(func() {
					if err := cs[k].run(ctx, dash.URL()+"api/v1/stream"); err != nil && ctx.Err() == nil {
						b.Error(err)
					}
				})
				<-cs[k].ready
			}
			b.StartTimer()
			streamed = append(streamed, e.ingest(b))
			b.StopTimer()
			// Every page catches up with the record.
			last, err := e.store.LastSeq(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for _, c := range cs {
				for {
					c.mu.Lock()
					seq, events, size := c.seq, c.events, c.bytes
					c.mu.Unlock()
					if seq == last {
						pushes += events
						pushBytes += size
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("a page is at event %d, the record at %d", seq, last)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			cancel()
			sctx, scancel := context.WithTimeout(context.WithoutCancel(b.Context()), 10*time.Second)
			if err := dash.Shutdown(sctx); err != nil {
				b.Error(err)
			}
			scancel()
			wg.Wait()
			unsubscribe()
		}
	}
	b.StartTimer()
	ratios := make([]float64, b.N)
	for i := range b.N {
		ratios[i] = alone[i].Seconds() / streamed[i].Seconds()
	}
	slices.Sort(ratios)
	slices.Sort(alone)
	slices.Sort(streamed)
	b.ReportMetric(n/alone[b.N/2].Seconds(), "events/s-alone")
	b.ReportMetric(n/streamed[b.N/2].Seconds(), "events/s-streamed")
	b.ReportMetric(ratios[b.N/2], "ratio")
	b.ReportMetric(ratios[0], "ratio-min")
	b.ReportMetric(ratios[b.N-1], "ratio-max")
	b.ReportMetric(float64(pushes)/float64(clients*b.N), "pushes/page")
	b.ReportMetric(float64(pushBytes)/float64(pushes), "bytes/push")
}

// BenchmarkFaultToPage measures how long a station fault takes from the
// PLC to the page: the whole line as `keiline up` runs it (agents polling
// every 100 ms, the default), a takt of 1 s; faults injected in the
// simulated PLCs one after another at stations along the line. It reports
// the latency to the event stream (a page's EventSource) and, when Chromium
// is installed, to the page's DOM.
//
//	go test -run XXX -bench FaultToPage -benchtime 1x ./dashboard/
func BenchmarkFaultToPage(b *testing.B) {
	const faults = 20
	var sse, dom []time.Duration
	for range b.N {
		r := newRig(b, rigOptions{speed: 60, cars: 100000, seed: 9, poll: 100 * time.Millisecond})
		seen := make(chan string, 64)
		ctx, cancel := context.WithCancel(b.Context())
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		wg.Go(func() { followFaults(ctx, b, r.url("/api/v1/stream"), seen) })
		var br *browser
		if chromium() != "" {
			br = newBrowser(b, 1600, 1000)
			br.do(b, chromedpNavigateLive(r.dash.URL())...)
		}
		var ids []string
		for _, s := range r.cfg.Stations {
			if !s.Optional {
				ids = append(ids, s.ID)
			}
		}
		for k := range faults {
			st, text := ids[(k*5)%len(ids)], fmt.Sprintf("bench fault %d", k)
			start := time.Now()
			if err := r.plant.InjectFault(st, 599, text, 300*time.Millisecond); err != nil {
				b.Fatal(err)
			}
			timeout := time.After(10 * time.Second)
		wait:
			for {
				select {
				case got := <-seen:
					if got == st+" "+text {
						sse = append(sse, time.Since(start))
						break wait
					}
				case <-timeout:
					b.Fatalf("fault %q at %s never reached the stream", text, st)
				}
			}
			if br != nil {
				pollDOM(b, br, fmt.Sprintf(`document.querySelector('.station[data-station="%s"] .st-fault').textContent === '599 %s'`, st, text))
				dom = append(dom, time.Since(start))
			}
			time.Sleep(500 * time.Millisecond) // let the fault clear
		}
	}
	report := func(name string, ds []time.Duration) {
		if len(ds) == 0 {
			return
		}
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(ds[(len(ds)*99)/100].Milliseconds()), name+"-p99-ms")
		b.ReportMetric(float64(ds[len(ds)-1].Milliseconds()), name+"-max-ms")
	}
	report("stream", sse)
	report("page", dom)
}

// followFaults sends "<station> <fault text>" for each station in fault in
// each line event of the stream at url.
func followFaults(ctx context.Context, b *testing.B, url string, seen chan<- string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		b.Error(err)
		return
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			b.Error(err)
		}
		return
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<22)
	event := ""
	sent := map[string]bool{}
	for sc.Scan() {
		if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			event = e
		}
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || event != "line" {
			continue
		}
		var v dashboard.LineView
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			b.Error(err)
			return
		}
		for _, s := range v.Stations {
			if f := s.ID + " " + s.FaultText; s.State == "fault" && strings.HasPrefix(s.FaultText, "bench fault") && !sent[f] {
				sent[f] = true
				select {
				case seen <- f:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}
