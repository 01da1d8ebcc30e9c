// Package web is keiline's one HTTP security layer: sign-in, sessions,
// roles, API tokens, CSRF protection, security headers, request limits,
// error pages and TLS, in front of every page and API (the dashboard, the
// trace pages, the orders API).
//
// Every route states who may use it (a Policy), so nothing is open by
// mistake:
//
//	auth, err := web.New(web.Config{Store: webStore, Logger: log})
//	m := web.NewMux()
//	m.Handle("/", web.SignedIn.OrScope(web.ScopeDashboardRead), dashboard)
//	m.Handle("/trace/", web.Require(web.Auditor, web.QualityInspector, web.Supervisor), trace)
//	m.Handle("/api/orders", web.Require(web.Planner).OrScope(web.ScopeOrdersWrite).WithBodyMax(orders.BodyMax), ordersAPI)
//	m.Handle("GET /healthz", web.Public, health)
//	srv, err := web.Listen(ctx, web.ServerConfig{Addr: addr, Handler: auth.Handler(m), TLS: tlsConfig})
//
// Auth.Handler serves the sign-in pages itself (PathLogin, PathLogout,
// PathSession, PathPassword, PathKiosk, PathStatic) and, for every other
// request: sets the security headers, recovers panics, authenticates (a
// session cookie, or an API token as "Authorization: Bearer kl_…"),
// answers an anonymous state-changing request 401, and a session's
// state-changing request without its CSRF token or from another origin
// 403. The route's Policy then answers 401 or 403, or passes the request
// on with its Identity in the context (IdentityFrom).
//
// The web server connects to PostgreSQL as schema.RoleWeb. Users and
// tokens are administered with the schema's owner (CreateUser,
// CreateToken, FirstAdmin; keiline users|tokens).
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/keiline/keiline/schema"
)

// Defaults and limits of Config.
const (
	// IdleTimeoutDefault ends a session this long after its last request;
	// IdleTimeoutMin is the shortest allowed.
	IdleTimeoutDefault = 30 * time.Minute
	IdleTimeoutMin     = time.Minute
	// AbsoluteTimeoutDefault ends a session this long after sign-in, busy
	// or not: a shift and its handover.
	AbsoluteTimeoutDefault = 12 * time.Hour
	// LockoutThresholdDefault wrong passwords in a row lock an account for
	// LockoutDurationDefault.
	LockoutThresholdDefault = 10
	LockoutDurationDefault  = 15 * time.Minute
	// BodyMaxDefault is the largest request body a route takes unless its
	// Policy says otherwise (WithBodyMax).
	BodyMaxDefault = 1 << 20
	// FormBodyMax is the largest body of the sign-in, password and kiosk
	// forms.
	FormBodyMax = 16 << 10
	// PasswordHashersDefault is how many argon2id computations run at once
	// (each takes Argon2MemoryKiB).
	PasswordHashersDefault = 4
	// SessionTouchInterval is how often a session's last-seen time is
	// written (at most once per this, and per a tenth of the idle timeout):
	// the idle expiry is that much coarse.
	SessionTouchInterval = time.Minute
	// LoginFailureRetention is how long failed sign-ins are kept.
	LoginFailureRetention = 90 * 24 * time.Hour
	// pruneInterval is how often a sign-in also deletes expired sessions
	// and old failures.
	pruneInterval = time.Minute
)

// Config configures an Auth.
type Config struct {
	// Store is the users' database, connected as schema.RoleWeb. Required.
	Store *schema.Store
	// IdleTimeout defaults to IdleTimeoutDefault, at least IdleTimeoutMin.
	IdleTimeout time.Duration
	// AbsoluteTimeout defaults to AbsoluteTimeoutDefault, at least
	// IdleTimeout.
	AbsoluteTimeout time.Duration
	// LockoutThreshold defaults to LockoutThresholdDefault, at least 1.
	LockoutThreshold int
	// LockoutDuration defaults to LockoutDurationDefault.
	LockoutDuration time.Duration
	// BodyMax defaults to BodyMaxDefault.
	BodyMax int64
	// CSP is the Content-Security-Policy of every response a handler does
	// not give its own. Defaults to DefaultCSP().
	CSP CSP
	// BehindTLS says clients reach the server over TLS through a proxy
	// that terminates it: cookies are then Secure and HSTS is sent even
	// though the request itself is plain HTTP.
	BehindTLS bool
	// TrustedOrigins are other origins ("https://mes.plant.example") whose
	// pages may send state-changing requests: a proxy's public name when
	// it changes the Host header. Optional.
	TrustedOrigins []string
	// PasswordHashers defaults to PasswordHashersDefault.
	PasswordHashers int
	// Logger defaults to slog.Default(). Nothing secret is ever logged:
	// no password, session id, CSRF token or API token.
	Logger *slog.Logger
	// Now is the clock of expiry, lockout and rate limits. Defaults to
	// time.Now.
	Now func() time.Time
}

// Validate checks the config and fills its defaults. The error names the
// first bad field.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("web config: Store is required (connected as " + schema.RoleWeb + ")")
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = IdleTimeoutDefault
	}
	if c.IdleTimeout < IdleTimeoutMin {
		return fmt.Errorf("web config: IdleTimeout %v: want at least %v (default %v)", c.IdleTimeout, IdleTimeoutMin, IdleTimeoutDefault)
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = max(AbsoluteTimeoutDefault, c.IdleTimeout)
	}
	if c.AbsoluteTimeout < c.IdleTimeout {
		return fmt.Errorf("web config: AbsoluteTimeout %v: want at least IdleTimeout %v (default %v)", c.AbsoluteTimeout, c.IdleTimeout, AbsoluteTimeoutDefault)
	}
	if c.LockoutThreshold == 0 {
		c.LockoutThreshold = LockoutThresholdDefault
	}
	if c.LockoutThreshold < 1 {
		return fmt.Errorf("web config: LockoutThreshold %d: want at least 1 (default %d)", c.LockoutThreshold, LockoutThresholdDefault)
	}
	if c.LockoutDuration == 0 {
		c.LockoutDuration = LockoutDurationDefault
	}
	if c.LockoutDuration < 0 {
		return fmt.Errorf("web config: LockoutDuration %v: want more than 0 (default %v)", c.LockoutDuration, LockoutDurationDefault)
	}
	if c.BodyMax == 0 {
		c.BodyMax = BodyMaxDefault
	}
	if c.BodyMax < FormBodyMax {
		return fmt.Errorf("web config: BodyMax %d: want at least %d bytes (default %d)", c.BodyMax, FormBodyMax, BodyMaxDefault)
	}
	if len(c.CSP.directives) == 0 {
		c.CSP = DefaultCSP()
	}
	if c.PasswordHashers == 0 {
		c.PasswordHashers = PasswordHashersDefault
	}
	if c.PasswordHashers < 1 {
		return fmt.Errorf("web config: PasswordHashers %d: want at least 1 (default %d)", c.PasswordHashers, PasswordHashersDefault)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Auth is the security middleware and the sign-in pages over one users'
// database. Make it with New; it starts no goroutine.
type Auth struct {
	cfg   Config
	store *schema.Store
	log   *slog.Logger
	now   func() time.Time
	csp   string

	cop        *http.CrossOriginProtection
	trusted    map[string]bool
	touchEvery time.Duration
	hasher     *hasher
	dummyHash  string // verified for names that are no user, so they take as long
	byAddr     *limiter
	byName     *limiter
	pages      *pages

	pruneMu   sync.Mutex
	lastPrune time.Time
}

// New checks cfg and returns the middleware. It hashes one password (the
// stand-in verified for unknown names), which takes a moment.
func New(cfg Config) (*Auth, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Auth{cfg: cfg, store: cfg.Store, log: cfg.Logger.With("component", "web"), now: cfg.Now, csp: cfg.CSP.String(),
		cop: http.NewCrossOriginProtection(), trusted: map[string]bool{}, touchEvery: min(SessionTouchInterval, cfg.IdleTimeout/10),
		hasher: newHasher(cfg.PasswordHashers),
		byAddr: newLimiter(LoginAddressEvery, LoginAddressBurst), byName: newLimiter(LoginAccountEvery, LoginAccountBurst)}
	for _, o := range cfg.TrustedOrigins {
		if err := a.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("web config: TrustedOrigins: %w", err)
		}
		a.trusted[o] = true
	}
	var err error
	if a.pages, err = newPages(); err != nil {
		return nil, err
	}
	if a.dummyHash, err = HashPassword(GeneratePassword()); err != nil {
		return nil, err
	}
	return a, nil
}

// safeMethod reports whether m is one the middleware takes to change
// nothing: GET and HEAD (RFC 9110 section 9.2.1). Every other method —
// OPTIONS and TRACE too, which a route without a method would also serve —
// is checked as a state change.
func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

type bodyMaxKey struct{}

// Handler returns the one security middleware in front of m (see the
// package documentation).
func (a *Auth) Handler(m *Mux) http.Handler {
	own := a.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer a.recoverPanic(w, r)
		setSecurityHeaders(w.Header(), a.csp, a.secure(r))
		ctx := context.WithValue(r.Context(), loggerKey{}, a.log)
		ctx = context.WithValue(ctx, bodyMaxKey{}, a.cfg.BodyMax)
		r = r.WithContext(ctx)
		if _, pattern := own.Handler(r); pattern != "" {
			own.ServeHTTP(w, r) // (Handler does not set path values)
			return
		}
		id, err := a.identify(w, r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if !safeMethod(r.Method) {
			if err := a.checkStateChange(w, r, id); err != nil {
				writeError(w, r, err)
				return
			}
		}
		if id != nil {
			r = r.WithContext(withIdentity(r.Context(), id))
		}
		m.ServeHTTP(w, r)
	})
}

// identify returns who sent r: an API token in the Authorization header
// (which must then be valid), else the session cookie's identity, else nil.
func (a *Auth) identify(w http.ResponseWriter, r *http.Request) (*Identity, error) {
	if tok, ok := bearer(r); ok {
		return a.tokenIdentity(r, tok)
	}
	id, err := a.sessionIdentity(w, r)
	if errors.Is(err, errNoSession) {
		return nil, nil
	}
	return id, err
}

// checkStateChange applies the rules of state-changing requests: an
// identity is needed; a session's request must come from the same origin
// and carry the session's CSRF token. A bearer token needs neither: a
// browser never sends one by itself.
func (a *Auth) checkStateChange(w http.ResponseWriter, r *http.Request, id *Identity) error {
	if id == nil {
		metricRefused.WithLabelValues("unauthenticated").Inc()
		return ErrUnauthenticated
	}
	if id.Kind == KindToken {
		return nil
	}
	if err := a.checkOrigin(r); err != nil {
		metricRefused.WithLabelValues("cross_origin").Inc()
		a.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "client", clientAddr(r), "who", id.String())
		return err
	}
	if err := checkCSRF(w, r, id, a.cfg.BodyMax); err != nil {
		if errors.Is(err, ErrCSRF) {
			metricRefused.WithLabelValues("csrf").Inc()
			a.log.Warn("request without its CSRF token refused", "method", r.Method, "path", r.URL.Path, "client", clientAddr(r), "who", id.String())
		}
		return err
	}
	return nil
}

// recoverPanic turns a handler's panic into a 500 with a safe message and
// logs it with its stack.
func (a *Auth) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	a.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	writeError(w, r, &Error{Status: http.StatusInternalServerError, Msg: internalMsg})
}

// Mux is a request router whose every route has a Policy. Put it behind
// Auth.Handler.
type Mux struct {
	mux *http.ServeMux
}

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{mux: http.NewServeMux()} }

// Handle registers h for pattern (http.ServeMux patterns) behind p. It
// panics, like http.ServeMux, on a bad or repeated pattern.
func (m *Mux) Handle(pattern string, p Policy, h http.Handler) {
	m.mux.Handle(pattern, route{p, h})
}

// HandleFunc registers f for pattern behind p; f's error is answered as
// HandlerFunc says.
func (m *Mux) HandleFunc(pattern string, p Policy, f HandlerFunc) { m.Handle(pattern, p, f) }

// ServeHTTP routes r. A request that matches no route is 404 — or, when
// anonymous, sent to sign in (pages) or 401, telling nothing of routes.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := m.mux.Handler(r); pattern == "" && IdentityFrom(r.Context()) == nil {
		unauthenticated(w, r)
		return
	}
	m.mux.ServeHTTP(w, r)
}

type route struct {
	p Policy
	h http.Handler
}

func (rt route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := IdentityFrom(r.Context())
	if err := rt.p.Check(id); err != nil {
		if id == nil {
			unauthenticated(w, r)
			return
		}
		metricRefused.WithLabelValues("forbidden").Inc()
		logger(r.Context()).Info("request refused: role or scope", "method", r.Method, "path", r.URL.Path, "who", id.String())
		writeError(w, r, err)
		return
	}
	n := rt.p.bodyMax
	if n == 0 {
		n, _ = r.Context().Value(bodyMaxKey{}).(int64)
	}
	if n > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, n)
	}
	rt.h.ServeHTTP(w, r)
}

// unauthenticated sends a browser asking for a page to the sign-in page
// (coming back to the page after) and answers anything else 401.
func unauthenticated(w http.ResponseWriter, r *http.Request) {
	metricRefused.WithLabelValues("unauthenticated").Inc()
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && wantsHTML(r) {
		next := r.URL.RequestURI()
		target := PathLogin
		if next != "/" && safeNext(next) == next {
			target += "?next=" + url.QueryEscape(next)
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	writeError(w, r, ErrUnauthenticated)
}

// safeNext returns next when it is a path on this site to go back to after
// signing in, else "/": never another site (//host, /\host, a scheme),
// never a control character, never an unreadable URL.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 2048 || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" {
		return "/"
	}
	return next
}
