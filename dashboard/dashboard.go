// Package dashboard is the line supervisor's web page and its JSON API:
// the live line, the shift's numbers, holds, andon calls and a car search,
// pushed to browsers with server-sent events, in English and Japanese.
//
// Everything it shows comes from the record (schema/): it follows the event
// log as the tracker commits it, so the page and the audit agree, and it
// runs the same inside `keiline up` and on its own (`keiline serve`). Every
// asset is embedded in the binary; the page loads nothing from elsewhere.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/schema"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults and limits of Config.
const (
	// AddrDefault is where the dashboard listens by default.
	AddrDefault = "127.0.0.1:8080"
	// TaktDefault is the line's takt (LINE.md).
	TaktDefault = 60 * time.Second
	// ShiftLengthDefault is a shift's length in plant time.
	ShiftLengthDefault = 8 * time.Hour
	// ShiftStartDefault is the time of day the first shift starts.
	ShiftStartDefault = 6 * time.Hour
	// PollIntervalDefault is how often the dashboard reads the record for
	// new events when nothing wakes it; PollIntervalMin bounds how often it
	// reads however often it is woken.
	PollIntervalDefault = 200 * time.Millisecond
	PollIntervalMin     = 50 * time.Millisecond
	// ShiftIntervalDefault is how often the shift's numbers are computed
	// while pages are connected.
	ShiftIntervalDefault = 2 * time.Second
	// HeartbeatInterval is how often an idle event stream gets a comment,
	// so proxies and browsers keep it open and dead clients are noticed.
	HeartbeatInterval = 15 * time.Second
)

// HTTP server timeouts.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	// WriteTimeout bounds each response; an event stream extends its
	// deadline before each write instead.
	WriteTimeout = 30 * time.Second
	IdleTimeout  = 2 * time.Minute
)

// NextCarsShown is how many of the next cars the shift document lists.
const NextCarsShown = 10

// Config configures a Server.
type Config struct {
	// Addr is the listen address. Defaults to AddrDefault; port 0 picks a
	// free port (see Server.URL).
	Addr string
	// Store is the record. Required.
	Store *schema.Store
	// Plant and Line name the line. Required.
	Plant, Line string
	// Stations are the line's stations in line order. Required; the last
	// one is where cars leave the line.
	Stations []Station
	// Takt is the line's takt in plant time. Defaults to TaktDefault.
	Takt time.Duration
	// Speed is the time compression of a simulated line: its takt lasts
	// Takt / Speed of wall time. Defaults to 1.
	Speed float64
	// ShiftStart is the start of any one shift; shifts follow each other
	// every ShiftLength / Speed of wall time, before and after it. Defaults
	// to ShiftStartDefault after local midnight of the day the server
	// starts.
	ShiftStart time.Time
	// ShiftLength is a shift's length in plant time. Defaults to
	// ShiftLengthDefault.
	ShiftLength time.Duration
	// Calendar, when set, is the line's shift calendar: breaks and
	// planned stops are not planned time, a shift's planned start, and
	// each station's ideal cycle (else the takt). Its times of day are
	// the plant clock, which runs Speed times faster than the wall clock
	// from ShiftStart on.
	Calendar *line.Shifts
	// SPC is the line config's spc section: each characteristic's spec,
	// chart and rules. Optional (individuals, Nelson's rules, the record's
	// limits).
	SPC *line.SPC
	// SPCWriter, when set, is a store connected as the web role
	// (schema.RoleWeb), through which quality engineers freeze control
	// limits on the SPC pages; without it the pages are read-only.
	SPCWriter *schema.Store
	// Chromium is the browser that prints the shift report as a PDF.
	// Defaults to the first of chromium, chromium-browser, google-chrome
	// found; without one the PDF is refused with a message.
	Chromium string
	// Wake, if set, signals that the record changed (Tracker.Subscribe);
	// the dashboard then reads it at once instead of at the next poll.
	Wake <-chan struct{}
	// PollInterval defaults to PollIntervalDefault, at least PollIntervalMin.
	PollInterval time.Duration
	// ShiftInterval defaults to ShiftIntervalDefault.
	ShiftInterval time.Duration
	// Orders, when set, is the planner's orders API, served at
	// /api/orders (pipeline/orders.Handler, on a store that may write
	// orders). It takes JSON or CSV bodies only, so a cross-site form
	// cannot post to it without a CORS preflight, which is not answered.
	Orders http.Handler
	// Front, when set, is put in front of the dashboard's routes: the web
	// layer (web.Auth: sign-in, roles, CSRF) with what is mounted beside
	// the dashboard on the same origin (the station terminals). It gets
	// the dashboard's handler and returns the server's.
	Front func(dashboard http.Handler) http.Handler
	// Gatherer is what /metrics serves. Defaults to
	// prometheus.DefaultGatherer, where keiline's parts register.
	Gatherer prometheus.Gatherer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Validate checks the config and fills its defaults. The error names the
// first bad field.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("dashboard config: Store is required")
	}
	if c.Plant == "" || c.Line == "" {
		return errors.New("dashboard config: Plant and Line are required")
	}
	if len(c.Stations) == 0 {
		return errors.New("dashboard config: Stations are required")
	}
	seen := map[string]bool{}
	for i, s := range c.Stations {
		if s.ID == "" || seen[s.ID] {
			return fmt.Errorf("dashboard config: Stations[%d]: id %q empty or repeated", i, s.ID)
		}
		seen[s.ID] = true
	}
	if c.Stations[len(c.Stations)-1].Optional {
		return errors.New("dashboard config: Stations: the last station must not be optional")
	}
	if c.Addr == "" {
		c.Addr = AddrDefault
	}
	if c.Takt == 0 {
		c.Takt = TaktDefault
	}
	if c.Takt < 0 {
		return fmt.Errorf("dashboard config: Takt %v: want more than 0 (default %v)", c.Takt, TaktDefault)
	}
	if c.Speed == 0 {
		c.Speed = 1
	}
	if !(c.Speed > 0) {
		return fmt.Errorf("dashboard config: Speed %v: want more than 0 (default 1)", c.Speed)
	}
	if c.ShiftLength == 0 {
		c.ShiftLength = ShiftLengthDefault
	}
	if c.ShiftLength < c.Takt {
		return fmt.Errorf("dashboard config: ShiftLength %v: want at least the takt %v (default %v)", c.ShiftLength, c.Takt, ShiftLengthDefault)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ShiftStart.IsZero() {
		y, m, d := c.Now().Date()
		c.ShiftStart = time.Date(y, m, d, 0, 0, 0, 0, time.Local).Add(ShiftStartDefault)
	}
	if c.PollInterval == 0 {
		c.PollInterval = PollIntervalDefault
	}
	if c.PollInterval < PollIntervalMin {
		return fmt.Errorf("dashboard config: PollInterval %v: want at least %v (default %v)", c.PollInterval, PollIntervalMin, PollIntervalDefault)
	}
	if c.ShiftInterval == 0 {
		c.ShiftInterval = ShiftIntervalDefault
	}
	if c.ShiftInterval < PollIntervalMin {
		return fmt.Errorf("dashboard config: ShiftInterval %v: want at least %v (default %v)", c.ShiftInterval, PollIntervalMin, ShiftIntervalDefault)
	}
	if c.Gatherer == nil {
		c.Gatherer = prometheus.DefaultGatherer
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Server is a running dashboard: the HTTP server and the feed that follows
// the record. Start it with Start, stop it with Shutdown.
type Server struct {
	cfg  Config
	log  *slog.Logger
	feed *feed
	srv  *http.Server
	ln   net.Listener

	cancel  context.CancelFunc
	streams chan struct{} // closed when event streams must end
	wg      sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	err     error
}

// Start checks cfg, reads the line's current state from the record,
// listens on cfg.Addr and serves until Shutdown. It returns once the
// dashboard accepts connections, or the error that kept it from doing so.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "dashboard"), streams: make(chan struct{})}
	page, err := newPage(cfg)
	if err != nil {
		return nil, err
	}
	s.feed = newFeed(cfg, s.log)
	if err := s.feed.load(ctx); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: listen %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	h := s.routes(page)
	if cfg.Front != nil {
		h = cfg.Front(h)
	}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Go(func() { s.feed.run(fctx) })
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("dashboard server stopped", "err", err)
		}
	})
	s.log.Info("dashboard listening", "url", s.URL())
	return s, nil
}

// URL is the dashboard's address, e.g. http://127.0.0.1:8080/.
func (s *Server) URL() string {
	return "http://" + s.ln.Addr().String() + "/"
}

// Shutdown ends the event streams, stops accepting requests, waits for the
// requests in flight until ctx is done, and stops the feed. It is safe to
// call twice; the second call returns the first one's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return s.err
	}
	s.stopped = true
	close(s.streams)
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("dashboard: shutdown: %w", err), s.srv.Close())
	}
	s.cancel()
	s.wg.Wait()
	s.err = err
	return err
}
