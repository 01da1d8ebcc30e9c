package web_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/web"
)

// clock is the injected clock: tests move it, never sleep.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// logBuf keeps everything the middleware logged.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// The rig's users: name, password, roles.
var rigUsers = []struct {
	name, password string
	roles          []web.Role
}{
	{"olga", "line-side terminal 4 password", []web.Role{web.Operator}},
	{"quinn", "checks every torque twice", []web.Role{web.QualityInspector}},
	{"pia", "plans the week ahead on monday", []web.Role{web.Planner}},
	{"ada", "administers keiline carefully", []web.Role{web.Admin, web.Auditor}},
}

func password(name string) string {
	for _, u := range rigUsers {
		if u.name == name {
			return u.password
		}
	}
	panic("no rig user " + name)
}

// rig is a web server over a real database and TCP, with the test routes
// below and the rig's users.
type rig struct {
	t     testing.TB
	owner *schema.Store
	store *schema.Store // as schema.RoleWeb
	auth  *web.Auth
	clock *clock
	logs  *logBuf
	srv   *httptest.Server
	url   string
}

type rigOpts struct {
	tls     bool
	noUsers bool
	cfg     func(*web.Config)
}

// migrating serialises the first migrations of parallel tests: 00001
// creates the cluster-wide roles without tolerating a concurrent creator.
var migrating sync.Mutex

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	dbURL := pgtest.NewDB(t)
	migrating.Lock()
	owner, err := schema.Open(t.Context(), dbURL)
	migrating.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	store, err := schema.OpenAs(t.Context(), dbURL, schema.RoleWeb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	r := &rig{t: t, owner: owner, store: store, clock: &clock{t: time.Now().UTC()}, logs: &logBuf{}}
	cfg := web.Config{Store: store, Now: r.clock.Now, Logger: slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if r.auth, err = web.New(cfg); err != nil {
		t.Fatal(err)
	}
	for _, u := range rigUsers {
		if o.noUsers {
			break
		}
		if _, err := web.CreateUser(t.Context(), owner, web.NewUser{Name: u.name, Password: u.password, Roles: u.roles}, r.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	h := r.auth.Handler(rigMux(r.auth))
	if o.tls {
		r.srv = httptest.NewTLSServer(h)
	} else {
		r.srv = httptest.NewServer(h)
	}
	t.Cleanup(r.srv.Close)
	r.url = r.srv.URL
	return r
}

// rigMux is how an application mounts its routes behind the middleware.
func rigMux(auth *web.Auth) *web.Mux {
	m := web.NewMux()
	who := func(w http.ResponseWriter, r *http.Request) error {
		_, err := fmt.Fprintf(w, "%s %s\n", r.URL.Path, web.IdentityFrom(r.Context()))
		return err
	}
	m.HandleFunc("GET /{$}", web.SignedIn.OrScope(web.ScopeDashboardRead), who)
	m.HandleFunc("GET /api/v1/line", web.SignedIn.OrScope(web.ScopeDashboardRead), who)
	m.HandleFunc("GET /whoami", web.SignedIn, func(w http.ResponseWriter, r *http.Request) error {
		id := web.IdentityFrom(r.Context())
		return json.NewEncoder(w).Encode(map[string]any{"who": id.String(), "roles": id.Roles, "scopes": id.Scopes})
	})
	m.HandleFunc("GET /trace/", web.Require(web.Auditor, web.QualityInspector).OrScope(web.ScopeTraceRead), who)
	m.HandleFunc("POST /api/orders", web.Require(web.Planner).OrScope(web.ScopeOrdersWrite), func(w http.ResponseWriter, r *http.Request) error {
		if _, err := io.ReadAll(r.Body); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return who(w, r)
	})
	m.HandleFunc("DELETE /api/orders/{id}", web.Require(web.Planner).OrScope(web.ScopeOrdersWrite), who)
	m.HandleFunc("POST /plan", web.Require(web.Planner), who)
	// A coarse route with a finer rule inside, as a mounted application
	// (the dashboard) guards its own actions.
	inner := http.NewServeMux()
	inner.Handle("POST /app/release", web.Require(web.QualityInspector).Wrap(web.HandlerFunc(who)))
	inner.Handle("GET /app/", web.HandlerFunc(who))
	m.Handle("/app/", web.SignedIn, inner)
	m.HandleFunc("POST /andon", web.Require(web.Operator, web.TeamLeader), who)
	m.HandleFunc("POST /quality/release", web.Require(web.QualityInspector), func(w http.ResponseWriter, r *http.Request) error {
		sig, err := auth.Sign(r, r.PostFormValue("password"), r.PostFormValue("meaning"))
		if err != nil {
			return err
		}
		return json.NewEncoder(w).Encode(map[string]any{"user": sig.User, "meaning": sig.Meaning, "at": sig.At, "roles": sig.Roles})
	})
	m.HandleFunc("POST /upload", web.Require(web.Planner).WithBodyMax(64<<10), func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%d bytes\n", len(b))
		return err
	})
	m.HandleFunc("GET /boom", web.SignedIn, func(w http.ResponseWriter, r *http.Request) error {
		return errors.New("database password=hunter2 at db.internal refused")
	})
	m.HandleFunc("GET /panic", web.SignedIn, func(w http.ResponseWriter, r *http.Request) error { panic("kaboom in handler") })
	m.HandleFunc("GET /healthz", web.Public, func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.WriteString(w, "ok\n")
		return err
	})
	return m
}

// client is one browser (or program) talking to the rig.
type client struct {
	r   *rig
	hc  *http.Client
	jar *cookiejar.Jar
	// browser sends what a browser sends on its own: Sec-Fetch-Site and
	// Origin of the rig's origin.
	browser bool
	csrf    string
	header  http.Header
}

func (r *rig) client(browser bool) *client {
	jar, _ := cookiejar.New(nil)
	tr := r.srv.Client().Transport.(*http.Transport).Clone()
	hc := &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r.t.Cleanup(tr.CloseIdleConnections)
	return &client{r: r, hc: hc, jar: jar, browser: browser, header: http.Header{}}
}

// response is an answer, read whole.
type response struct {
	*http.Response
	body string
}

func (c *client) do(method, path string, body io.Reader, contentType string, hdr ...string) response {
	c.r.t.Helper()
	req, err := http.NewRequestWithContext(c.r.t.Context(), method, c.r.url+path, body)
	if err != nil {
		c.r.t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.browser {
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Origin", c.r.url)
		if method == http.MethodGet {
			req.Header.Set("Accept", "text/html,application/xhtml+xml")
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.r.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{resp, string(b)}
}

func (c *client) get(path string, hdr ...string) response {
	return c.do(http.MethodGet, path, nil, "", hdr...)
}

func (c *client) postForm(path string, v url.Values, hdr ...string) response {
	return c.do(http.MethodPost, path, strings.NewReader(v.Encode()), "application/x-www-form-urlencoded", hdr...)
}

// login signs in with the form and returns the answer.
func (c *client) login(user, pw string) response {
	return c.postForm(web.PathLogin, url.Values{"user": {user}, "password": {pw}, "next": {"/whoami"}})
}

// signIn signs in and fetches the session's CSRF token; it fails the test
// when sign-in fails.
func (r *rig) signIn(user string) *client {
	r.t.Helper()
	c := r.client(true)
	if resp := c.login(user, password(user)); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/whoami" {
		r.t.Fatalf("sign in %s: %d %s %q", user, resp.StatusCode, resp.Header.Get("Location"), resp.body)
	}
	c.refreshCSRF()
	return c
}

func (c *client) refreshCSRF() {
	c.r.t.Helper()
	resp := c.get(web.PathSession)
	var doc struct {
		CSRF string `json:"csrf_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(resp.body), &doc) != nil || doc.CSRF == "" {
		c.r.t.Fatalf("GET /session: %d %s", resp.StatusCode, resp.body)
	}
	c.csrf = doc.CSRF
}

// sessionCookie is the client's session cookie value, "" without one.
func (c *client) sessionCookie() string {
	u, _ := url.Parse(c.r.url)
	for _, k := range c.jar.Cookies(u) {
		if k.Name == web.SessionCookie || k.Name == web.SessionCookieTLS {
			return k.Value
		}
	}
	return ""
}

// post posts a form with the session's CSRF token.
func (c *client) post(path string, v url.Values) response {
	if v == nil {
		v = url.Values{}
	}
	v.Set(web.CSRFField, c.csrf)
	return c.postForm(path, v)
}

// tlsClientConfig is the rig's TLS server's client config.
func (r *rig) tlsClientConfig() *tls.Config {
	return r.srv.Client().Transport.(*http.Transport).TLSClientConfig
}

// createToken makes an API token as the owner.
func (r *rig) createToken(name string, lifetime time.Duration, scopes ...web.Scope) (string, schema.Token) {
	r.t.Helper()
	tok, row, err := web.CreateToken(r.t.Context(), r.owner, web.NewAPIToken{Name: name, Scopes: scopes, Lifetime: lifetime, CreatedBy: "test"}, r.clock.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	return tok, row
}

// bearer is a program's client with token.
func (r *rig) bearer(token string) *client {
	c := r.client(false)
	c.header.Set("Authorization", "Bearer "+token)
	return c
}

func wantStatus(t *testing.T, what string, resp response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Errorf("%s: status %d, want %d; body %q", what, resp.StatusCode, want, resp.body)
	}
}
