package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTP server timeouts and limits. An event stream extends its write
// deadline before each write (http.ResponseController) instead of living
// within WriteTimeout.
const (
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading a whole request: an orders upload of
	// 10 MiB over a slow plant network fits.
	ReadTimeout  = 60 * time.Second
	WriteTimeout = 30 * time.Second
	IdleTimeout  = 2 * time.Minute
	// HeaderMax is the most bytes of request headers read.
	HeaderMax = 64 << 10
)

// ServerConfig configures Listen.
type ServerConfig struct {
	// Addr is the listen address ("127.0.0.1:8443"; port 0 picks one).
	// Required.
	Addr string
	// Handler serves every request: Auth.Handler(mux). Required.
	Handler http.Handler
	// TLS, when set, makes the server HTTPS (LoadTLS, SelfSignedTLS).
	TLS *tls.Config
	// MetricsAddr, when set, is an address of its own serving only
	// Metrics at GET /metrics, plain HTTP (for a scraper on the plant's
	// monitoring network).
	MetricsAddr string
	// Metrics is what MetricsAddr serves. Required with MetricsAddr.
	Metrics http.Handler
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate checks the config and fills its defaults.
func (c *ServerConfig) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("web server config: Addr is required")
	case c.Handler == nil:
		return errors.New("web server config: Handler is required (Auth.Handler)")
	case c.MetricsAddr != "" && c.Metrics == nil:
		return errors.New("web server config: Metrics is required with MetricsAddr")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Server is a listening web server. Stop it with Shutdown.
type Server struct {
	log     *slog.Logger
	srv     *http.Server
	ln      net.Listener
	url     string
	metrics *http.Server
	mln     net.Listener
	wg      sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	err     error
}

// Listen listens on cfg.Addr (and cfg.MetricsAddr) and serves until
// Shutdown. It returns once connections are accepted, or the error that
// kept it from listening, naming the address.
func Listen(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("web: listen %s: %w", cfg.Addr, err)
	}
	s := &Server{log: cfg.Logger.With("component", "web"), ln: ln, srv: newHTTPServer(cfg.Handler, cfg.Logger)}
	scheme := "http"
	if cfg.TLS != nil {
		s.srv.TLSConfig = cfg.TLS.Clone()
		s.ln = tls.NewListener(ln, s.srv.TLSConfig)
		scheme = "https"
	}
	s.url = scheme + "://" + ln.Addr().String() + "/"
	if cfg.MetricsAddr != "" {
		if s.mln, err = lc.Listen(ctx, "tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("web: listen for metrics %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", cfg.Metrics)
		s.metrics = newHTTPServer(mux, cfg.Logger)
		s.serve(s.metrics, s.mln)
	}
	s.serve(s.srv, s.ln)
	s.log.Info("web server listening", "url", s.url)
	return s, nil
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout, WriteTimeout: WriteTimeout,
		IdleTimeout: IdleTimeout, MaxHeaderBytes: HeaderMax, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	s.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("web server stopped", "addr", ln.Addr().String(), "err", err)
		}
	})
}

// URL is the server's address, e.g. https://127.0.0.1:8443/.
func (s *Server) URL() string { return s.url }

// MetricsURL is the metrics address's URL, or "" without one.
func (s *Server) MetricsURL() string {
	if s.mln == nil {
		return ""
	}
	return "http://" + s.mln.Addr().String() + "/metrics"
}

// Shutdown stops accepting requests and waits for those in flight until
// ctx is done, then closes what is left. It is safe to call twice; the
// second call returns the first one's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return s.err
	}
	s.stopped = true
	var errs []error
	for _, srv := range []*http.Server{s.srv, s.metrics} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("web: shutdown: %w", err), srv.Close())
		}
	}
	s.wg.Wait()
	s.err = errors.Join(errs...)
	return s.err
}
