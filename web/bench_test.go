package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keiline/keiline/web"
)

// BenchmarkMiddleware measures what the security middleware adds to a
// request — headers, the session lookup in PostgreSQL (one query joining
// the session, its user and roles), the policy — against the same handler
// bare, in the same run. In process (no network) and over TCP:
//
//	go test ./web/ -run '^$' -bench Middleware -benchtime 2s
//
// Report the ratios session/bare and token/bare of each pair; select-1 is
// one PostgreSQL round trip, the floor of a session lookup.
func BenchmarkMiddleware(b *testing.B) {
	r := newRig(b, rigOpts{cfg: func(c *web.Config) { c.Now = nil }}) // the real clock: sessions stay fresh
	c := r.client(true)
	if resp := c.login("olga", password("olga")); resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign in: %d", resp.StatusCode)
	}
	cookie := &http.Cookie{Name: web.SessionCookie, Value: c.sessionCookie()}
	tok, _ := r.createToken("bench", 0, web.ScopeDashboardRead)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	m := web.NewMux()
	m.Handle("GET /bench", web.SignedIn.OrScope(web.ScopeDashboardRead), bare)
	guarded := r.auth.Handler(m)

	inProcess := func(h http.Handler, prep func(*http.Request)) func(*testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/bench", nil)
				prep(req)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		}
	}
	overTCP := func(h http.Handler, prep func(*http.Request)) func(*testing.B) {
		return func(b *testing.B) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			hc := srv.Client()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, srv.URL+"/bench", nil)
				prep(req)
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		}
	}
	none := func(*http.Request) {}
	withCookie := func(req *http.Request) { req.AddCookie(cookie) }
	withToken := func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+tok) }
	// The floor of any session check: one round trip to PostgreSQL.
	b.Run("in-process/select-1", func(b *testing.B) {
		for b.Loop() {
			var one int
			if err := r.store.Pool().QueryRow(b.Context(), "SELECT 1").Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-process/bare", inProcess(bare, none))
	b.Run("in-process/session", inProcess(guarded, withCookie))
	b.Run("in-process/token", inProcess(guarded, withToken))
	b.Run("tcp/bare", overTCP(bare, none))
	b.Run("tcp/session", overTCP(guarded, withCookie))
	b.Run("tcp/token", overTCP(guarded, withToken))
}
