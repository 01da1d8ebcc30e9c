package terminal_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/internal/vin"
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

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// users are the rig's people: name → roles. A password is the name with
// each letter shifted by one, and "-line-pw-7".
var users = map[string][]web.Role{
	"sato":  {web.Operator},
	"kato":  {web.Operator},
	"ito":   {web.QualityInspector},
	"abe":   {web.Supervisor},
	"mori":  {web.Auditor},
	"plan1": {web.Planner},
}

func password(user string) string {
	return strings.Map(func(r rune) rune { return r + 1 }, user) + "-line-pw-7"
}

// rig is the terminal behind the web layer, on a real record written by a
// real tracker from a real JetStream, with the default line.
type rig struct {
	t       *testing.T
	lc      *line.Config
	owner   *schema.Store
	auditor *schema.Store
	pub     *streams.Publisher
	url     string
	logs    *logBuf
	// startTracker starts the tracker; stopTracker stops it and waits.
	startTracker func()
	stopTracker  func()
	counters     map[string]uint64
}

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
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

type rigOpts struct {
	commitTimeout time.Duration
	noTracker     bool
	// dashboard serves the dashboard on the terminals' origin, behind the
	// same sign-in, as keiline up mounts them.
	dashboard bool
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	dbURL := pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	open := func(role string) *schema.Store {
		s, err := schema.OpenAs(t.Context(), dbURL, role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	writer, auditor, webStore := open(schema.RoleWriter), open(schema.RoleAuditor), open(schema.RoleWeb)
	b, err := broker.Start(broker.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	nc, err := nats.Connect(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := streams.Ensure(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, lc: line.Default(), owner: owner, auditor: auditor, pub: streams.NewPublisher(js), logs: &logBuf{}, counters: map[string]uint64{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var mu sync.Mutex
	var stop func()
	r.startTracker = func() {
		mu.Lock()
		defer mu.Unlock()
		tr, err := pipeline.NewTracker(pipeline.TrackerConfig{Route: routeOf(r.lc), Store: writer, JetStream: js, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
		done := make(chan error, 1)
		go func() { done <- tr.Run(ctx) }()
		stop = func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("tracker: %v", err)
			}
		}
	}
	r.stopTracker = func() {
		mu.Lock()
		defer mu.Unlock()
		if stop != nil {
			stop()
			stop = nil
		}
	}
	t.Cleanup(r.stopTracker)
	if !o.noTracker {
		r.startTracker()
	}
	auth, err := web.New(web.Config{Store: webStore, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for name, roles := range users {
		if _, err := web.CreateUser(t.Context(), owner, web.NewUser{Name: name, Password: password(name), Roles: roles}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	term, err := terminal.New(terminal.Config{Line: r.lc, Record: auditor, Publisher: r.pub, Signer: auth, CommitTimeout: o.commitTimeout, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	front := func(dash http.Handler) http.Handler {
		m := web.NewMux()
		if dash != nil {
			m.Handle("/", web.SignedIn.OrScope(web.ScopeDashboardRead), dash)
		}
		term.Routes(m)
		return auth.Handler(m)
	}
	if !o.dashboard {
		srv := httptest.NewServer(front(nil))
		t.Cleanup(srv.Close)
		r.url = srv.URL
		return r
	}
	cfg := dashboard.Config{Addr: "127.0.0.1:0", Store: auditor, Plant: r.lc.Plant, Line: r.lc.Line, ShiftInterval: 200 * time.Millisecond,
		Front: front, Logger: log}
	for _, s := range r.lc.Stations {
		cfg.Stations = append(cfg.Stations, dashboard.Station{ID: s.ID, Name: s.Name, Zone: s.Zone, Optional: s.Optional})
	}
	dash, err := dashboard.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dash.Shutdown(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("dashboard: %v", err)
		}
	})
	r.url = strings.TrimSuffix(dash.URL(), "/")
	return r
}

// routeOf is the tracker's view of the line (as keiline up makes it).
func routeOf(lc *line.Config) pipeline.Route {
	rt := pipeline.Route{Plant: lc.Plant, Line: lc.Line}
	for _, s := range lc.Stations {
		rt.Stations = append(rt.Stations, pipeline.RouteStation{ID: s.ID, Optional: s.Optional})
		if s.Zone == "quality" && !s.Optional {
			rt.Gate = s.ID
		}
	}
	return rt
}

func mkVIN(t testing.TB, serial int) string {
	t.Helper()
	v, err := vin.Make("7KL", "KW1NA", 2027, 'U', serial)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// publish publishes an agent's event of kind at station, as the agent does.
func (r *rig) publish(station, kind, car string, data any) *event.Event {
	r.t.Helper()
	r.counters[station+kind]++
	n := r.counters[station+kind]
	now := time.Now()
	switch d := data.(type) {
	case *event.Cycle:
		d.Counter = uint32(n)
	case *event.State:
		d.Counter = n
	}
	ev, err := event.NewEvent(r.lc.Plant, r.lc.Line, station, kind, car, 0, n, now, now, data)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.pub.Publish(r.t.Context(), ev); err != nil {
		r.t.Fatal(err)
	}
	return ev
}

// build runs car through the line up to and including station, OK at
// each, and reports it present at station; it waits until the record has
// it there.
func (r *rig) build(car, upTo string) {
	r.t.Helper()
	var last *event.Event
	for _, st := range r.lc.Stations {
		if st.Optional {
			continue
		}
		last = r.publish(st.ID, event.KindCycle, car, &event.Cycle{Result: "OK", Model: "KW", Variant: "4WD", Colour: "mint",
			StartedAt: time.Now().Add(-time.Minute), Parts: []event.Part{}, Joints: []event.Joint{}, Tests: []event.Test{}})
		if st.ID == upTo {
			break
		}
	}
	state := r.publish(upTo, event.KindState, "", &event.State{State: "running", VinPresent: car})
	r.waitFor("the car at "+upTo, func() bool {
		a, _ := r.auditor.HasEvent(r.t.Context(), last.ID)
		b, _ := r.auditor.HasEvent(r.t.Context(), state.ID)
		return a && b
	})
}

func (r *rig) waitFor(what string, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is one browser signed in (or not) to the rig.
type client struct {
	r    *rig
	hc   *http.Client
	csrf string
}

type response struct {
	*http.Response
	body string
}

func (r *rig) anonymous() *client {
	jar, _ := cookiejar.New(nil)
	return &client{r: r, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn signs user in and reads the session's CSRF token.
func (r *rig) signIn(user string) *client {
	r.t.Helper()
	c := r.anonymous()
	if resp := c.postForm(web.PathLogin, url.Values{"user": {user}, "password": {password(user)}}); resp.StatusCode != http.StatusSeeOther {
		r.t.Fatalf("sign in %s: %d %s", user, resp.StatusCode, resp.body)
	}
	resp := c.get(web.PathSession)
	var doc struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal([]byte(resp.body), &doc); err != nil || doc.CSRF == "" {
		r.t.Fatalf("GET /session: %d %s", resp.StatusCode, resp.body)
	}
	c.csrf = doc.CSRF
	return c
}

func (c *client) do(method, path string, body io.Reader) response {
	c.r.t.Helper()
	req, err := http.NewRequestWithContext(c.r.t.Context(), method, c.r.url+path, body)
	if err != nil {
		c.r.t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", c.r.url)
	req.Header.Set("Accept", "text/html")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp, string(b)}
}

func (c *client) get(path string) response { return c.do(http.MethodGet, path, nil) }

func (c *client) postForm(path string, v url.Values) response {
	return c.do(http.MethodPost, path, strings.NewReader(v.Encode()))
}

// post posts a form with the session's CSRF token.
func (c *client) post(path string, v url.Values) response {
	v.Set(web.CSRFField, c.csrf)
	return c.postForm(path, v)
}

// saved checks resp is the redirect a saved decision answers, and
// returns the decision's event id.
func saved(t *testing.T, what string, resp response) string {
	t.Helper()
	loc := resp.Header.Get("Location")
	_, id, ok := strings.Cut(loc, "?saved=")
	if resp.StatusCode != http.StatusSeeOther || !ok {
		t.Fatalf("%s: %d %q %s, want 303 to the page saying saved", what, resp.StatusCode, loc, resp.body)
	}
	return id
}
