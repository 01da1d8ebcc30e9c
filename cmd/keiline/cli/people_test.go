package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/line"
	"github.com/keiline/keiline/pipeline/broker"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/web"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keiline/keiline/dashboard"
)

// TestUpPeopleFront: up's dashboard is behind sign-in with the station
// terminals beside it — the first admin's password in a file of the state
// dir, pages for people signed in, /metrics and /healthz for anyone, a
// decision refused to the anonymous (401) and to a role that may not make
// it (403).
func TestUpPeopleFront(t *testing.T) {
	state := t.TempDir()
	startStateDB(t, state)
	log := slog.New(slog.DiscardHandler)
	db, err := openDatabase(t.Context(), "", state, log)
	if err != nil {
		t.Fatal(err)
	}
	view, err := schema.OpenRole(t.Context(), db.URL, schema.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	b, err := broker.Start(broker.Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown()
	nc, err := nats.Connect(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var closers []func(context.Context)
	defer func() {
		for _, c := range closers {
			c(context.Background())
		}
	}()
	lc := line.Default()
	ppl, err := startPeople(t.Context(), db.URL, state, lc, view, js, log, func(f func(context.Context)) { closers = append(closers, f) })
	if err != nil {
		t.Fatal(err)
	}
	cfg := dashboardConfig(lc, view, "127.0.0.1:0", 1, nil, log)
	cfg.Front = ppl.front
	dash, err := dashboard.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dash.Shutdown(context.Background()) }()
	base := strings.TrimSuffix(dash.URL(), "/")
	hint := ppl.signInHint(dash.URL())
	if !strings.Contains(hint, "as admin") || !strings.Contains(hint, ppl.firstAdmin) {
		t.Errorf("sign-in hint %q", hint)
	}
	pw, err := os.ReadFile(ppl.firstAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hint, strings.TrimSpace(string(pw))) {
		t.Error("the hint prints the password")
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, base+path, body)
		req.Header.Set("Origin", base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string]int{"/": 303, "/api/v1/line": 401, "/station/T03": 303, "/trace/": 303, "/metrics": 200, "/healthz": 200} {
		if code, _ := do("GET", path, nil); code != want && !(want == 303 && code == 401) {
			t.Errorf("anonymous GET %s: %d, want %d", path, code, want)
		}
	}
	if code, _ := do("POST", "/station/T03/andon", url.Values{"op": {"pull"}, "reason": {"x"}}); code != http.StatusUnauthorized {
		t.Errorf("anonymous andon: %d, want 401", code)
	}
	if code, _ := do("POST", web.PathLogin, url.Values{"user": {web.FirstAdminName}, "password": {strings.TrimSpace(string(pw))}}); code != http.StatusSeeOther {
		t.Fatalf("admin sign-in: %d", code)
	}
	if code, body := do("GET", "/station/T03", nil); code != 200 || !strings.Contains(body, "T03") || strings.Contains(body, `id="form-andon"`) {
		t.Errorf("admin's T03 page: %d, want it without the andon (admin is no operator)", code)
	}
	_, sess := do("GET", web.PathSession, nil)
	tok := sess[strings.Index(sess, `"csrf_token":"`)+len(`"csrf_token":"`):]
	tok = tok[:strings.Index(tok, `"`)]
	if code, _ := do("POST", "/station/T03/andon", url.Values{"op": {"pull"}, "reason": {"x"}, web.CSRFField: {tok}}); code != http.StatusForbidden {
		t.Errorf("admin's andon: %d, want 403", code)
	}
	if code, _ := do("GET", "/api/v1/line", nil); code != 200 {
		t.Errorf("signed-in GET /api/v1/line: %d", code)
	}
	// An operator may not load orders.
	owner, err := schema.Open(t.Context(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = web.CreateUser(t.Context(), owner, web.NewUser{Name: "sato", Password: "a long line-side password", Roles: []web.Role{web.Operator}}, time.Now())
	owner.Close()
	if err != nil {
		t.Fatal(err)
	}
	hc.Jar, _ = cookiejar.New(nil)
	if code, _ := do("POST", web.PathLogin, url.Values{"user": {"sato"}, "password": {"a long line-side password"}}); code != http.StatusSeeOther {
		t.Fatalf("operator sign-in: %d", code)
	}
	_, sess = do("GET", web.PathSession, nil)
	tok = sess[strings.Index(sess, `"csrf_token":"`)+len(`"csrf_token":"`):]
	tok = tok[:strings.Index(tok, `"`)]
	if code, _ := do("POST", "/api/orders", url.Values{web.CSRFField: {tok}}); code != http.StatusForbidden {
		t.Errorf("operator loading orders: %d, want 403", code)
	}
}
