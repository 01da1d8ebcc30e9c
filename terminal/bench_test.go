package terminal_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/pipeline/streams"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/terminal"
	"github.com/keiline/keiline/web"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchEvents makes about n events of cars going down the default line:
// at each station a state change bringing the car in and its cycle, with 3
// parts, 12 joints and 4 tests.
func benchEvents(b *testing.B, lc *line.Config, n int, start time.Time) []*event.Event {
	b.Helper()
	counter := map[string]uint32{}
	var evs []*event.Event
	at := start
	for car := 1; len(evs) < n; car++ {
		v := mkVIN(b, car)
		for _, st := range lc.Stations {
			if st.Optional {
				continue
			}
			at = at.Add(10 * time.Millisecond)
			counter[st.ID+"s"]++
			state, err := event.NewEvent(lc.Plant, lc.Line, st.ID, event.KindState, "", 0, uint64(counter[st.ID+"s"]), at, at,
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
			cycle, err := event.NewEvent(lc.Plant, lc.Line, st.ID, event.KindCycle, v, 0, uint64(c.Counter), at, at, c)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, state, cycle)
		}
	}
	return evs
}

// benchEnv is a fresh record and stream with the events waiting in it, a
// tracker ready to consume them, and the dashboard with the terminals
// behind sign-in.
type benchEnv struct {
	tracker *pipeline.Tracker
	url     string
	dash    *dashboard.Server
	users   []string
}

func newBenchEnv(b *testing.B, lc *line.Config, evs []*event.Event, people int) *benchEnv {
	b.Helper()
	quiet := slog.New(slog.DiscardHandler)
	dbURL := pgtest.NewDB(b)
	owner, err := schema.Open(b.Context(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(owner.Close)
	open := func(role string) *schema.Store {
		s, err := schema.OpenAs(b.Context(), dbURL, role)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		return s
	}
	writer, view, users := open(schema.RoleWriter), open(schema.RoleAuditor), open(schema.RoleWeb)
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
	tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: routeOf(lc), Store: writer, JetStream: js, Logger: quiet})
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
	e := &benchEnv{tracker: tr}
	if people == 0 {
		return e
	}
	auth, err := web.New(web.Config{Store: users, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	for k := range people {
		name := fmt.Sprintf("op%d", k)
		if _, err := web.CreateUser(b.Context(), owner, web.NewUser{Name: name, Password: password(name), Roles: []web.Role{web.Operator}}, time.Now()); err != nil {
			b.Fatal(err)
		}
		e.users = append(e.users, name)
	}
	term, err := terminal.New(terminal.Config{Line: lc, Record: view, Publisher: pub, Signer: auth, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	wake, unsubscribe := tr.Subscribe()
	b.Cleanup(unsubscribe)
	cfg := dashboard.Config{Addr: "127.0.0.1:0", Store: view, Plant: lc.Plant, Line: lc.Line, Wake: wake, ShiftStart: time.Now().Add(-2 * time.Hour), Logger: quiet,
		Front: func(dash http.Handler) http.Handler {
			m := web.NewMux()
			m.Handle("/", web.SignedIn, dash)
			term.Routes(m)
			return auth.Handler(m)
		}}
	for _, s := range lc.Stations {
		cfg.Stations = append(cfg.Stations, dashboard.Station{ID: s.ID, Name: s.Name, Zone: s.Zone, Optional: s.Optional})
	}
	if e.dash, err = dashboard.Start(b.Context(), cfg); err != nil {
		b.Fatal(err)
	}
	e.url = strings.TrimSuffix(e.dash.URL(), "/")
	return e
}

// ingest runs the tracker until every event is recorded and returns how
// long it took.
func (e *benchEnv) ingest(b *testing.B) time.Duration {
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

// signedIn is an HTTP client signed in as user, connecting from loopback
// address 127.0.0.<2+k> (the sign-in rate limit is per address: each
// tablet has its own).
func signedIn(b *testing.B, base, user string, k int) *http.Client {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+k))}}
	tr := &http.Transport{DialContext: d.DialContext}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(b.Context(), http.MethodPost, base+web.PathLogin,
		strings.NewReader(url.Values{"user": {user}, "password": {password(user)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	res, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign in %s: %d", user, res.StatusCode)
	}
	return hc
}

// BenchmarkIngestWithPeople measures the tracker's ingest of pre-published
// events alone and with 50 signed-in station terminals (each reloading its
// station's page every TerminalReload, as a tablet left open might) and 50
// signed-in dashboards following the line's event stream, in the same run,
// and reports both rates and their ratio (the goal: at least 0.95).
// Each iteration measures both on fresh databases and streams, alternating
// which goes first; the figures are medians over the iterations.
//
//	go test -run XXX -bench IngestWithPeople -benchtime 3x ./terminal/
func BenchmarkIngestWithPeople(b *testing.B) {
	const n, terminals, dashboards = 4000, 50, 50
	const reload = time.Second
	lc := line.Default()
	var alone, busy []time.Duration
	var pages, pushes int
	b.StopTimer()
	for i := range b.N {
		evs := benchEvents(b, lc, n, time.Now().Add(-time.Hour))
		for _, withPeople := range slices.Backward([]bool{i%2 == 0, i%2 != 0}) {
			if !withPeople {
				alone = append(alone, newBenchEnv(b, lc, evs, 0).ingest(b))
				continue
			}
			e := newBenchEnv(b, lc, evs, terminals+dashboards)
			ctx, cancel := context.WithCancel(b.Context())
			var wg sync.WaitGroup
			var mu sync.Mutex
			ready := make(chan struct{}, terminals+dashboards)
			stations := lc.Stations
			for k, user := range e.users {
				hc := signedIn(b, e.url, user, k)
				if k < terminals {
					path := e.url + terminal.PathPrefix + stations[k%len(stations)].ID
					wg.Go(func() {
						tick := time.NewTicker(reload)
						defer tick.Stop()
						first := true
						for {
							req, _ := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
							res, err := hc.Do(req)
							if err != nil {
								return
							}
							_, _ = io.Copy(io.Discard, res.Body)
							res.Body.Close()
							if res.StatusCode != http.StatusOK && ctx.Err() == nil {
								b.Errorf("terminal %s: %d", path, res.StatusCode)
								return
							}
							mu.Lock()
							pages++
							mu.Unlock()
							if first {
								ready <- struct{}{}
								first = false
							}
							select {
							case <-ctx.Done():
								return
							case <-tick.C:
							}
						}
					})
					continue
				}
				wg.Go(func() {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/stream", nil)
					res, err := hc.Do(req)
					if err != nil {
						return
					}
					defer res.Body.Close()
					sc := bufio.NewScanner(res.Body)
					sc.Buffer(nil, 1<<22)
					first := true
					for sc.Scan() {
						if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && json.Valid([]byte(data)) {
							mu.Lock()
							pushes++
							mu.Unlock()
							if first {
								ready <- struct{}{}
								first = false
							}
						}
					}
				})
			}
			for range terminals + dashboards {
				<-ready
			}
			b.StartTimer()
			busy = append(busy, e.ingest(b))
			b.StopTimer()
			cancel()
			sctx, scancel := context.WithTimeout(context.WithoutCancel(b.Context()), 10*time.Second)
			if err := e.dash.Shutdown(sctx); err != nil {
				b.Error(err)
			}
			scancel()
			wg.Wait()
		}
	}
	b.StartTimer()
	ratios := make([]float64, b.N)
	for i := range b.N {
		ratios[i] = alone[i].Seconds() / busy[i].Seconds()
	}
	slices.Sort(ratios)
	slices.Sort(alone)
	slices.Sort(busy)
	b.ReportMetric(n/alone[b.N/2].Seconds(), "events/s-alone")
	b.ReportMetric(n/busy[b.N/2].Seconds(), "events/s-with-people")
	b.ReportMetric(ratios[b.N/2], "ratio")
	b.ReportMetric(ratios[0], "ratio-min")
	b.ReportMetric(ratios[b.N-1], "ratio-max")
	b.ReportMetric(float64(pages)/float64(b.N), "terminal-pages/run")
	b.ReportMetric(float64(pushes)/float64(b.N*dashboards), "pushes/dashboard")
}
