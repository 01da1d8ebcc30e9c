package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/traceweb"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed assets
var assets embed.FS

// Languages the page speaks; the first is the default.
var languages = []string{"en", "ja"}

// LangCookie remembers the language chosen with the page's switch.
const LangCookie = "keiline_lang"

// contentSecurityPolicy allows the page only its own scripts, styles and
// connections: no inline script or style, nothing from elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// page is the dashboard's HTML, rendered per language.
type page struct {
	tmpl  *template.Template
	texts map[string]map[string]string
	plant string
	line  string
}

func newPage(cfg Config) (*page, error) {
	b, err := assets.ReadFile("assets/i18n.json")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	p := &page{plant: cfg.Plant, line: cfg.Line}
	if err := json.Unmarshal(b, &p.texts); err != nil {
		return nil, fmt.Errorf("dashboard: i18n.json: %w", err)
	}
	for _, l := range languages {
		if len(p.texts[l]) == 0 {
			return nil, fmt.Errorf("dashboard: i18n.json: no texts for %q", l)
		}
	}
	if p.tmpl, err = template.ParseFS(assets, "assets/index.html"); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	return p, nil
}

// httpError is an error with the status and the message a user may see.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return strconv.Itoa(e.status) + " " + e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func notFound(msg string) error { return &httpError{http.StatusNotFound, msg} }

// handlerFunc is an HTTP handler that returns its error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle turns a handlerFunc into an http.Handler: an *httpError is shown
// as it is; any other error is logged with its cause and shown as a
// generic message.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, "internal error; see the server log"}
		}
		writeJSON(w, he.status, map[string]string{"error": he.msg})
	})
}

// secure sets the headers every response carries.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) routes(p *page) http.Handler {
	static, _ := fs.Sub(assets, "assets") // cannot fail: the directory is embedded
	files := http.FileServerFS(static)
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", s.handle(p.serve))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "index.html" || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	mux.Handle("GET /favicon.ico", http.RedirectHandler("/static/favicon.svg", http.StatusMovedPermanently))
	mux.Handle("GET /api/v1/line", s.handle(s.apiLine))
	mux.Handle("GET /api/v1/shift", s.handle(s.apiShift))
	mux.Handle("GET /api/v1/cars", s.handle(s.apiFindCars))
	mux.Handle("GET /api/v1/cars/{vin}", s.handle(s.apiCar))
	mux.Handle("GET /api/v1/cars/{vin}/trace", s.handle(s.apiTrace))
	mux.Handle("GET /api/v1/stream", s.handle(s.stream))
	s.spcRoutes(mux) // the SPC pages and the shift report (spcpages.go)
	// The quality auditor's trace pages and API, on the dashboard's own
	// store (the read-only auditor role). They set their own content
	// security policy: no script at all, their inline styles by hash.
	mux.Handle("GET "+traceweb.BaseDefault+"/", http.StripPrefix(traceweb.BaseDefault, traceweb.Handler(s.cfg.Store, traceweb.Config{
		Base: traceweb.BaseDefault, Plant: s.cfg.Plant + " " + s.cfg.Line, Logger: s.log, Now: s.cfg.Now,
	})))
	if s.cfg.Orders != nil {
		mux.Handle("/api/orders", s.cfg.Orders)
		mux.Handle("/api/orders/", s.cfg.Orders)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
		return nil
	}))
	mux.Handle("/", s.handle(func(w http.ResponseWriter, r *http.Request) error { return notFound("no such page") }))
	return secure(mux)
}

// serve renders the page in the visitor's language.
func (p *page) serve(w http.ResponseWriter, r *http.Request) error {
	lang := ""
	if q := r.URL.Query().Get("lang"); q != "" {
		lang = supported(q)
		if lang != "" {
			http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode})
		}
	}
	if lang == "" {
		if c, err := r.Cookie(LangCookie); err == nil {
			lang = supported(c.Value)
		}
	}
	if lang == "" {
		lang = negotiate(r.Header.Get("Accept-Language"))
	}
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, map[string]any{"Lang": lang, "T": p.texts[lang], "Plant": p.plant, "Line": p.line}); err != nil {
		return fmt.Errorf("render page: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", lang)
	h.Set("Vary", "Accept-Language, Cookie")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes()) // a failed write means the client went away
	return nil
}

// supported returns the supported language tag names, or "".
func supported(tag string) string {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	for _, l := range languages {
		if base == l {
			return l
		}
	}
	return ""
}

// negotiate picks the page's language from an Accept-Language header: the
// supported language the visitor prefers most, else the default.
func negotiate(header string) string {
	type choice struct {
		lang string
		q    float64
		pos  int
	}
	var cs []choice
	for i, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(part, ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		if l := supported(tag); l != "" && q > 0 {
			cs = append(cs, choice{l, q, i})
		}
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].q > cs[b].q })
	if len(cs) > 0 {
		return cs[0].lang
	}
	return languages[0]
}

// writeJSON writes v as the response. It returns an error only when v
// cannot be encoded; a failed write means the client went away.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	writeDoc(w, status, b)
	return nil
}

// writeDoc writes a JSON document as the response.
func writeDoc(w http.ResponseWriter, status int, doc []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(doc[:len(doc):len(doc)], '\n'))
}

func (s *Server) apiLine(w http.ResponseWriter, r *http.Request) error {
	s.feed.mu.Lock()
	v := s.feed.lineView()
	s.feed.mu.Unlock()
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiShift(w http.ResponseWriter, r *http.Request) error {
	doc, err := s.feed.shiftDoc(r.Context())
	if err != nil {
		return err
	}
	writeDoc(w, http.StatusOK, doc)
	return nil
}

// CarSummary is one car a search found.
type CarSummary struct {
	VIN         string     `json:"vin"`
	Model       string     `json:"model"`
	Variant     string     `json:"variant"`
	Colour      string     `json:"colour"`
	LastStation string     `json:"last_station"`
	LastSeenAt  time.Time  `json:"last_seen_at"`
	ShippedAt   *time.Time `json:"shipped_at,omitempty"`
}

func (s *Server) apiFindCars(w http.ResponseWriter, r *http.Request) error {
	q := strings.ToUpper(strings.TrimSpace(r.URL.Query().Get("q")))
	if len(q) < 6 || len(q) > vin.Len || strings.IndexFunc(q, func(c rune) bool { return !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') }) >= 0 {
		return badRequest("q: give a VIN or its last 6 or more characters (letters and digits)")
	}
	vs, err := s.cfg.Store.FindCars(r.Context(), q)
	if err != nil {
		return err
	}
	out := struct {
		Cars []CarSummary `json:"cars"`
	}{Cars: []CarSummary{}}
	for _, v := range vs {
		out.Cars = append(out.Cars, CarSummary{VIN: v.VIN, Model: v.Model, Variant: v.Variant, Colour: v.Colour,
			LastStation: v.LastStation, LastSeenAt: v.LastSeenAt, ShippedAt: timePtr(v.ShippedAt)})
	}
	return writeJSON(w, http.StatusOK, out)
}

// CarDetail is one car: where it is, its route with times and results, its
// holds and where its full trace is.
type CarDetail struct {
	VIN     string `json:"vin"`
	Model   string `json:"model"`
	Variant string `json:"variant"`
	Colour  string `json:"colour"`
	// Status is on_line (Station is the station it is in), shipped, or
	// off_line (a car the live line does not show; Station is the last it
	// finished).
	Status    string     `json:"status"`
	Station   string     `json:"station"`
	Done      bool       `json:"done"`
	ShippedAt *time.Time `json:"shipped_at,omitempty"`
	// Route is every station cycle on the car, in the order they finished.
	Route     []RouteStep  `json:"route"`
	OpenHolds int          `json:"open_holds"`
	Holds     []HoldRecord `json:"holds"`
	// Trace is the URL of the car's full record.
	Trace string `json:"trace"`
}

// RouteStep is one station cycle on a car with a summary of its results.
type RouteStep struct {
	Station    string     `json:"station"`
	Result     string     `json:"result"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt time.Time  `json:"finished_at"`
	EventID    string     `json:"event_id"`
	Parts      int        `json:"parts"`
	Joints     int        `json:"joints"`
	JointsNOK  int        `json:"joints_nok"`
	Tests      int        `json:"tests"`
	TestsNOK   int        `json:"tests_nok"`
	// Problems describes each NOK joint and test and each bad PLC value.
	Problems []string `json:"problems"`
}

// HoldRecord is a hold on a car, closed or not.
type HoldRecord struct {
	Station       string     `json:"station"`
	Kind          string     `json:"kind"`
	Reason        string     `json:"reason"`
	OpenedEventID string     `json:"opened_event_id"`
	OpenedAt      time.Time  `json:"opened_at"`
	ClosedEventID string     `json:"closed_event_id,omitempty"`
	ClosedAt      *time.Time `json:"closed_at,omitempty"`
}

// carTrace reads vin's record; a malformed VIN or an unknown car is a
// user's error.
func (s *Server) carTrace(r *http.Request) (*schema.CarTrace, error) {
	v := r.PathValue("vin")
	if err := vin.Validate(v); err != nil {
		return nil, badRequest("%q is not a VIN", v)
	}
	t, err := s.cfg.Store.Trace(r.Context(), v)
	if errors.Is(err, schema.ErrNotFound) {
		return nil, notFound("no car with VIN " + v)
	}
	return t, err
}

func (s *Server) apiCar(w http.ResponseWriter, r *http.Request) error {
	t, err := s.carTrace(r)
	if err != nil {
		return err
	}
	v := t.Vehicle
	d := CarDetail{VIN: v.VIN, Model: v.Model, Variant: v.Variant, Colour: v.Colour, Status: "off_line", Station: v.LastStation,
		ShippedAt: timePtr(v.ShippedAt), Route: []RouteStep{}, Holds: []HoldRecord{}, Trace: "/api/v1/cars/" + v.VIN + "/trace"}
	s.feed.mu.Lock()
	st, done, on := s.feed.model.position(v.VIN)
	s.feed.mu.Unlock()
	switch {
	case !v.ShippedAt.IsZero():
		d.Status = "shipped"
	case on:
		d.Status, d.Station, d.Done = "on_line", st, done
	}
	for _, x := range t.Visits {
		step := RouteStep{Station: x.Station, Result: x.Result, StartedAt: timePtr(x.StartedAt), FinishedAt: x.FinishedAt, EventID: x.EventID,
			Parts: len(x.Parts), Joints: len(x.Joints), Tests: len(x.Tests), Problems: []string{}}
		for _, j := range x.Joints {
			if event.IsOK(j.OK) {
				continue
			}
			if event.IsNOK(j.OK) {
				step.JointsNOK++
			}
			step.Problems = append(step.Problems, fmt.Sprintf("joint %s %s: %s", j.Joint, event.Verdict(j.OK), j.Describe()))
		}
		for _, e := range x.Tests {
			if event.IsOK(e.OK) {
				continue
			}
			if event.IsNOK(e.OK) {
				step.TestsNOK++
			}
			step.Problems = append(step.Problems, fmt.Sprintf("test %s %s: %s", e.Name, event.Verdict(e.OK), e.Describe()))
		}
		for _, b := range x.Bad {
			step.Problems = append(step.Problems, fmt.Sprintf("bad PLC value %s: %s", b.Tag, b.Reason))
		}
		d.Route = append(d.Route, step)
	}
	for _, h := range t.Holds {
		if h.ClosedAt.IsZero() {
			d.OpenHolds++
		}
		d.Holds = append(d.Holds, HoldRecord{Station: h.Station, Kind: h.Kind, Reason: h.Reason, OpenedEventID: h.EventID, OpenedAt: h.At,
			ClosedEventID: h.ClosedEventID, ClosedAt: timePtr(h.ClosedAt)})
	}
	return writeJSON(w, http.StatusOK, d)
}

// TraceDoc is a car's full record, in the shape `keiline trace vin --json`
// prints.
type TraceDoc struct {
	VIN         string       `json:"vin"`
	Model       string       `json:"model"`
	Variant     string       `json:"variant"`
	Colour      string       `json:"colour"`
	FirstSeenAt time.Time    `json:"first_seen_at"`
	LastStation string       `json:"last_station"`
	ShippedAt   *time.Time   `json:"shipped_at,omitempty"`
	Visits      []TraceVisit `json:"visits"`
	Holds       []HoldRecord `json:"holds"`
}

// TraceVisit is one station cycle with everything it recorded.
type TraceVisit struct {
	EventID    string           `json:"event_id"`
	Station    string           `json:"station"`
	Result     string           `json:"result"`
	StartedAt  *time.Time       `json:"started_at,omitempty"`
	FinishedAt time.Time        `json:"finished_at"`
	Parts      []event.Part     `json:"parts"`
	Joints     []event.Joint    `json:"joints"`
	Tests      []event.Test     `json:"tests"`
	Bad        []event.BadValue `json:"bad_values,omitempty"`
}

func (s *Server) apiTrace(w http.ResponseWriter, r *http.Request) error {
	t, err := s.carTrace(r)
	if err != nil {
		return err
	}
	v := t.Vehicle
	d := TraceDoc{VIN: v.VIN, Model: v.Model, Variant: v.Variant, Colour: v.Colour, FirstSeenAt: v.FirstSeenAt, LastStation: v.LastStation,
		ShippedAt: timePtr(v.ShippedAt), Visits: []TraceVisit{}, Holds: []HoldRecord{}}
	for _, x := range t.Visits {
		d.Visits = append(d.Visits, TraceVisit{EventID: x.EventID, Station: x.Station, Result: x.Result, StartedAt: timePtr(x.StartedAt),
			FinishedAt: x.FinishedAt, Parts: x.Parts, Joints: x.Joints, Tests: x.Tests, Bad: x.Bad})
	}
	for _, h := range t.Holds {
		d.Holds = append(d.Holds, HoldRecord{Station: h.Station, Kind: h.Kind, Reason: h.Reason, OpenedEventID: h.EventID, OpenedAt: h.At,
			ClosedEventID: h.ClosedEventID, ClosedAt: timePtr(h.ClosedAt)})
	}
	return writeJSON(w, http.StatusOK, d)
}

// stream sends the line and the shift's numbers as server-sent events
// until the client leaves or the server shuts down: each document at once
// on connecting, then each change. A client that reads slowly skips to the
// newest document; it never holds up the others.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c := s.feed.subscribe()
	defer s.feed.unsubscribe(c)
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	send := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(WriteTimeout)); err != nil {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
		return rc.Flush()
	}
	buf.WriteString("retry: 2000\n\n")
	heartbeat := time.NewTicker(HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		line, shift := c.take()
		for _, e := range []struct {
			name string
			doc  []byte
		}{{eventLine, line}, {eventShift, shift}} {
			if e.doc != nil {
				buf.WriteString("event: " + e.name + "\ndata: ")
				buf.Write(e.doc)
				buf.WriteString("\n\n")
			}
		}
		if buf.Len() > 0 {
			if err := send(); err != nil {
				return nil // the client went away
			}
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-s.streams:
			return nil
		case <-c.wake:
		case <-heartbeat.C:
			buf.WriteString(": ping\n\n")
		}
	}
}
