package web_test

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keiline/keiline/web"
)

// webRoutes are the sign-in routes and the rig's guarded routes (those
// meant to fail, /boom and /panic, aside). public marks the routes an
// anonymous request may get a 2xx from.
var webRoutes = []struct {
	method, path string
	public       bool
}{
	{"GET", web.PathLogin, true}, {"POST", web.PathLogin, true}, {"POST", web.PathLogout, true}, {"GET", web.PathSession, true},
	{"GET", web.PathPassword, false}, {"POST", web.PathPassword, false}, {"GET", web.PathKiosk, true}, {"POST", web.PathKiosk, false},
	{"GET", web.PathStatic + "login.css", true}, {"GET", "/healthz", true},
	{"GET", "/", false}, {"GET", "/api/v1/line", false}, {"GET", "/whoami", false}, {"GET", "/trace/x", false},
	{"POST", "/api/orders", false}, {"DELETE", "/api/orders/1", false}, {"POST", "/plan", false}, {"POST", "/app/release", false},
	{"GET", "/app/x", false}, {"POST", "/andon", false}, {"POST", "/quality/release", false}, {"POST", "/upload", false},
}

// FuzzHandler sends the sign-in pages and the guarded routes any cookie,
// Authorization header, Origin, Content-Type and body, over a real
// database: never a 500; no guarded route answers a request without a
// valid credential with anything but a refusal; a session is only ever
// started by the right password for a user.
func FuzzHandler(f *testing.F) {
	r := newRig(f, rigOpts{})
	h := r.srv.Config.Handler
	good := url.Values{"user": {"olga"}, "password": {password("olga")}, "next": {"/"}}.Encode()
	for i, rt := range webRoutes {
		f.Add(uint8(i), "", "", "", "application/x-www-form-urlencoded", "")
		if rt.method == "POST" {
			f.Add(uint8(i), "", "", r.url, "application/x-www-form-urlencoded", good)
		}
	}
	f.Add(uint8(1), web.SessionCookie+"=AAAA", "", r.url, "application/x-www-form-urlencoded", "user=%ff&password=x")
	f.Add(uint8(1), "", "", r.url, "application/x-www-form-urlencoded", "user=olga%00&password=x")
	f.Add(uint8(1), "", "", "http://evil.example", "application/x-www-form-urlencoded", good)
	f.Add(uint8(12), "", "Bearer kl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", "", "")
	f.Add(uint8(12), "", "Basic b2xnYTp4", "", "", "")
	f.Add(uint8(7), "", "", r.url, "application/x-www-form-urlencoded", "token=%ff&station=W01")
	f.Add(uint8(5), web.SessionCookie+"="+strings.Repeat("A", 43), "", r.url, "multipart/form-data; boundary=x", "--x\r\n")
	f.Fuzz(func(t *testing.T, route uint8, cookie, authz, origin, contentType, body string) {
		rt := webRoutes[int(route)%len(webRoutes)]
		req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(body))
		req.RemoteAddr = "192.0.2.1:1234"
		for k, v := range map[string]string{"Cookie": cookie, "Authorization": authz, "Origin": origin, "Content-Type": contentType} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		code := w.Code
		if code >= 500 {
			t.Fatalf("%s %s: %d: %s", rt.method, rt.path, code, w.Body)
		}
		if !rt.public && code < 300 {
			t.Fatalf("%s %s without a valid credential: %d: %s", rt.method, rt.path, code, w.Body)
		}
		for _, c := range w.Result().Cookies() {
			if (c.Name == web.SessionCookie || c.Name == web.SessionCookieTLS) && c.MaxAge > 0 {
				form, _ := url.ParseQuery(body)
				if rt.path != web.PathLogin || form.Get("password") != password("olga") {
					t.Fatalf("%s %s started a session without the right password: %q", rt.method, rt.path, body)
				}
			}
		}
	})
}
