package web_test

import (
	"net/http"

	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/web"
)

// TestAnonymousStateChangeIs401: no identity, no state change — whatever
// the method, and before any handler runs; pages send to sign-in.
func TestAnonymousStateChangeIs401(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	anon := r.client(true)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		wantStatus(t, m+" /api/orders", anon.do(m, "/api/orders", strings.NewReader("order_id\n"), "text/csv"), http.StatusUnauthorized)
	}
	wantStatus(t, "POST /plan", anon.postForm("/plan", nil), http.StatusUnauthorized)
	wantStatus(t, "POST to no route", anon.postForm("/nowhere", nil), http.StatusUnauthorized)
	prog := r.client(false)
	resp := prog.get("/api/v1/line")
	wantStatus(t, "GET /api/v1/line by a program", resp, http.StatusUnauthorized)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: %v", resp.Header)
	}
	resp = anon.get("/trace/?vin=X")
	wantStatus(t, "GET a page", resp, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/login?next="+url.QueryEscape("/trace/?vin=X") {
		t.Errorf("redirect to %q", loc)
	}
	wantStatus(t, "GET a page that is no route", anon.get("/secret-admin"), http.StatusSeeOther)
	wantStatus(t, "GET /healthz", anon.get("/healthz"), http.StatusOK)
	wantStatus(t, "GET /login", anon.get("/login"), http.StatusOK)
}

// TestSessionWithoutCSRFTokenIs403: a signed-in browser's state change
// needs the session's token (header or form) and the same origin.
func TestSessionWithoutCSRFTokenIs403(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	csrfBefore := web.RefusedCount("csrf")
	c := r.signIn("pia")
	wantStatus(t, "no token", c.postForm("/plan", url.Values{}), http.StatusForbidden)
	wantStatus(t, "wrong token", c.postForm("/plan", url.Values{web.CSRFField: {"x" + c.csrf[1:]}}), http.StatusForbidden)
	wantStatus(t, "token of the form", c.post("/plan", nil), http.StatusOK)
	wantStatus(t, "token in the header", c.do(http.MethodPost, "/api/orders", strings.NewReader("{}"), "application/json", web.CSRFHeader, c.csrf),
		http.StatusCreated)
	wantStatus(t, "JSON without the header", c.do(http.MethodPost, "/api/orders", strings.NewReader("{}"), "application/json"), http.StatusForbidden)
	wantStatus(t, "DELETE without the header", c.do(http.MethodDelete, "/api/orders/A-1", nil, ""), http.StatusForbidden)
	wantStatus(t, "DELETE with it", c.do(http.MethodDelete, "/api/orders/A-1", nil, "", web.CSRFHeader, c.csrf), http.StatusOK)
	cross := url.Values{web.CSRFField: {c.csrf}}
	wantStatus(t, "cross-site with the token", c.postForm("/plan", cross, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"),
		http.StatusForbidden)
	wantStatus(t, "old browser, other origin", c.postForm("/plan", cross, "Sec-Fetch-Site", "", "Origin", "https://evil.example"), http.StatusForbidden)
	wantStatus(t, "no origin, other referer", c.postForm("/plan", cross, "Sec-Fetch-Site", "", "Origin", "", "Referer", "https://evil.example/x"),
		http.StatusForbidden)
	// Another session's token does not fit this one.
	other := r.signIn("pia")
	wantStatus(t, "another session's token", c.postForm("/plan", url.Values{web.CSRFField: {other.csrf}}), http.StatusForbidden)
	if other.csrf == c.csrf {
		t.Error("two sessions share a CSRF token")
	}
	if !strings.Contains(r.logs.String(), "CSRF token refused") {
		t.Error("the refusals are not logged")
	}
	if n := web.RefusedCount("csrf") - csrfBefore; n < 5 {
		t.Errorf("keiline_web_refused_total{reason=csrf} rose by %v, want at least the 5 refusals here", n)
	}
}

// TestOperatorCannotDoInspectorOrPlannerActions: roles decide on the
// server.
func TestOperatorCannotDoInspectorOrPlannerActions(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	olga := r.signIn("olga")
	wantStatus(t, "operator releases a car", olga.post("/quality/release", url.Values{"password": {password("olga")}, "meaning": {"released"}}),
		http.StatusForbidden)
	wantStatus(t, "operator plans", olga.post("/plan", nil), http.StatusForbidden)
	wantStatus(t, "operator imports orders", olga.do(http.MethodPost, "/api/orders", strings.NewReader("{}"), "application/json", web.CSRFHeader, olga.csrf),
		http.StatusForbidden)
	wantStatus(t, "operator reads the trace", olga.get("/trace/"), http.StatusForbidden)
	wantStatus(t, "operator pulls the andon", olga.post("/andon", nil), http.StatusOK)
	wantStatus(t, "operator sees the dashboard", olga.get("/"), http.StatusOK)
	wantStatus(t, "operator in the application", olga.get("/app/"), http.StatusOK)
	wantStatus(t, "operator at the application's release", olga.post("/app/release", nil), http.StatusForbidden)
	quinn := r.signIn("quinn")
	wantStatus(t, "inspector plans", quinn.post("/plan", nil), http.StatusForbidden)
	wantStatus(t, "inspector pulls the andon", quinn.post("/andon", nil), http.StatusForbidden)
	wantStatus(t, "inspector reads the trace", quinn.get("/trace/"), http.StatusOK)
	wantStatus(t, "inspector at the application's release", quinn.post("/app/release", nil), http.StatusOK)
	// admin is not every role.
	ada := r.signIn("ada")
	wantStatus(t, "admin plans", ada.post("/plan", nil), http.StatusForbidden)
}

// TestDisabledUserSessionStopsAtOnce: the next request of a disabled
// user's session is refused, however the user was disabled.
func TestDisabledUserSessionStopsAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	c := r.signIn("olga")
	wantStatus(t, "before", c.get("/whoami"), http.StatusOK)
	// Disabled by a tool that leaves the sessions in place: the check on
	// every request stops it.
	if _, err := r.owner.Pool().Exec(t.Context(), `UPDATE users SET disabled = true WHERE name = 'olga'`); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "after disabling", c.get("/whoami"), http.StatusSeeOther)
	wantStatus(t, "a state change after disabling", c.post("/andon", nil), http.StatusUnauthorized)
	if err := r.owner.SetUserDisabled(t.Context(), "olga", false); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "the ended session stays ended", c.get("/whoami"), http.StatusSeeOther)
	c = r.signIn("olga")
	if err := r.owner.SetUserDisabled(t.Context(), "olga", true); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "after keiline users disable", c.get("/whoami"), http.StatusSeeOther)
	wantStatus(t, "a disabled user signs in", r.client(true).login("olga", password("olga")), http.StatusUnauthorized)
}

// TestTenWrongPasswordsLockTheAccount: the tenth wrong password locks the
// account for LockoutDuration; meanwhile the right password is refused,
// with the same answer as a wrong one or an unknown name.
func TestTenWrongPasswordsLockTheAccount(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	c := r.client(true)
	var wrong response
	for i := range web.LockoutThresholdDefault {
		wrong = c.login("quinn", "not quinn's password "+string(rune('a'+i)))
		wantStatus(t, "wrong password", wrong, http.StatusUnauthorized)
	}
	r.clock.Advance(time.Minute) // past the per-account rate limit
	locked := c.login("quinn", password("quinn"))
	wantStatus(t, "right password while locked", locked, http.StatusUnauthorized)
	if c.sessionCookie() != "" {
		t.Fatal("a locked account got a session")
	}
	unknown := c.login("nobody-here", "whatever password it is")
	if locked.body != wrong.body || unknown.body != wrong.body {
		t.Errorf("the answers tell refusals apart:\nwrong   %q\nlocked  %q\nunknown %q", wrong.body, locked.body, unknown.body)
	}
	r.clock.Advance(web.LockoutDurationDefault - 2*time.Minute)
	wantStatus(t, "right password just before the lock ends", c.login("quinn", password("quinn")), http.StatusUnauthorized)
	r.clock.Advance(2 * time.Minute)
	resp := c.login("quinn", password("quinn"))
	wantStatus(t, "right password after the lock", resp, http.StatusSeeOther)
	if c.sessionCookie() == "" {
		t.Fatal("no session after the lock ended")
	}
	// Nine wrong passwords, then the right one: the count starts again.
	u, err := r.store.UserByName(t.Context(), "olga")
	if err != nil {
		t.Fatal(err)
	}
	for range web.LockoutThresholdDefault - 1 {
		c.login("olga", "wrong wrong wrong wrong")
	}
	r.clock.Advance(5 * time.Minute)
	wantStatus(t, "right after nine wrong", r.client(true).login("olga", password("olga")), http.StatusSeeOther)
	if u2, _ := r.store.UserByName(t.Context(), "olga"); u2.FailedLogins != 0 || u.ID != u2.ID {
		t.Errorf("failed count after a sign-in: %d", u2.FailedLogins)
	}
	if !strings.Contains(r.logs.String(), "user locked after wrong passwords") {
		t.Error("the lock is not logged")
	}
}

// TestLoginRateLimitPerAddress: one address trying many names is slowed
// down, whether the names exist or not.
func TestLoginRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	c := r.client(true)
	var last response
	for i := range web.LoginAddressBurst + 1 {
		last = c.login("guess"+string(rune('a'+i%26))+string(rune('a'+i/26)), "some password guess")
	}
	wantStatus(t, "attempt past the address's burst", last, http.StatusTooManyRequests)
	wantStatus(t, "even a real user's right password", c.login("olga", password("olga")), http.StatusTooManyRequests)
	r.clock.Advance(10 * web.LoginAddressEvery)
	wantStatus(t, "after the bucket refills", c.login("olga", password("olga")), http.StatusSeeOther)
}

// TestCookieFlags: HttpOnly, SameSite=Strict, Path=/; Secure and __Host-
// under TLS, with HSTS.
func TestCookieFlags(t *testing.T) {
	t.Parallel()
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOpts{tls: tls})
			resp := r.client(true).login("olga", password("olga"))
			wantStatus(t, "sign in", resp, http.StatusSeeOther)
			var got *http.Cookie
			for _, k := range resp.Cookies() {
				if strings.HasSuffix(k.Name, web.SessionCookie) {
					got = k
				}
			}
			if got == nil {
				t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
			}
			wantName := map[bool]string{false: web.SessionCookie, true: web.SessionCookieTLS}[tls]
			if got.Name != wantName || !got.HttpOnly || got.SameSite != http.SameSiteStrictMode || got.Path != "/" || got.Secure != tls ||
				got.Domain != "" || got.MaxAge != 0 {
				t.Errorf("cookie %+v (Set-Cookie %q)", got, resp.Header.Get("Set-Cookie"))
			}
			if len(got.Value) < 43 {
				t.Errorf("session id %d characters: want 256 bits", len(got.Value))
			}
			hsts := resp.Header.Get("Strict-Transport-Security")
			if tls != (hsts != "") {
				t.Errorf("HSTS %q under TLS %t", hsts, tls)
			}
		})
	}
}

// TestTokenScopes: a token passes only routes naming one of its scopes,
// only from the header, until it expires or is revoked.
func TestTokenScopes(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	erpTok, erp := r.createToken("erp-orders", 30*24*time.Hour, web.ScopeOrdersWrite)
	tvTok, _ := r.createToken("line TV", 0, web.ScopeDashboardRead)
	e := r.bearer(erpTok)
	wantStatus(t, "erp imports orders", e.do(http.MethodPost, "/api/orders", strings.NewReader("{}"), "application/json"), http.StatusCreated)
	wantStatus(t, "erp cancels an order", e.do(http.MethodDelete, "/api/orders/A-1", nil, ""), http.StatusOK)
	wantStatus(t, "erp reads the dashboard", e.get("/"), http.StatusForbidden)
	wantStatus(t, "erp plans", e.do(http.MethodPost, "/plan", nil, ""), http.StatusForbidden)
	wantStatus(t, "erp on a signed-in route", e.get("/whoami"), http.StatusForbidden)
	tv := r.bearer(tvTok)
	wantStatus(t, "tv reads the dashboard", tv.get("/api/v1/line"), http.StatusOK)
	wantStatus(t, "tv imports orders", tv.do(http.MethodPost, "/api/orders", strings.NewReader("{}"), "application/json"), http.StatusForbidden)
	wantStatus(t, "tv reads the trace", tv.get("/trace/"), http.StatusForbidden)
	// Never in a URL, never another scheme, never a bad one.
	anon := r.client(false)
	wantStatus(t, "token in the query", anon.get("/api/v1/line?access_token="+url.QueryEscape(tvTok)), http.StatusUnauthorized)
	wantStatus(t, "basic scheme", anon.get("/api/v1/line", "Authorization", "Basic "+tvTok), http.StatusUnauthorized)
	wantStatus(t, "bad token", anon.get("/api/v1/line", "Authorization", "Bearer kl_"+strings.Repeat("A", 43)), http.StatusUnauthorized)
	wantStatus(t, "bearer beats a cookie", r.signIn("pia").get("/whoami", "Authorization", "Bearer nope"), http.StatusUnauthorized)
	// Expiry and revocation.
	r.clock.Advance(30*24*time.Hour + time.Second)
	wantStatus(t, "expired erp token", e.do(http.MethodPost, "/api/orders", strings.NewReader("{}"), "application/json"), http.StatusUnauthorized)
	wantStatus(t, "tv token still valid", tv.get("/api/v1/line"), http.StatusOK)
	list, err := r.owner.Tokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range list {
		if row.Name == "line TV" {
			if err := r.owner.RevokeToken(t.Context(), row.ID, r.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if row.ID == erp.ID && row.LastUsedAt.IsZero() {
			t.Error("the erp token's last use is not recorded")
		}
	}
	wantStatus(t, "revoked tv token", tv.get("/api/v1/line"), http.StatusUnauthorized)
}

// TestKioskSignsInADisplayReadOnly: a display posts its token once and
// keeps a session that only reads, until the token is revoked.
func TestKioskSignsInADisplayReadOnly(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	tvTok, tv := r.createToken("line TV", 0, web.ScopeDashboardRead)
	ordersTok, _ := r.createToken("erp", 0, web.ScopeOrdersWrite)
	c := r.client(true)
	wantStatus(t, "kiosk page", c.get(web.PathKiosk), http.StatusOK)
	wantStatus(t, "kiosk with an orders token", c.postForm(web.PathKiosk, url.Values{"token": {ordersTok}}), http.StatusUnauthorized)
	resp := c.postForm(web.PathKiosk, url.Values{"token": {tvTok}})
	wantStatus(t, "kiosk sign-in", resp, http.StatusSeeOther)
	for _, k := range resp.Cookies() {
		if k.Name == web.SessionCookie && (k.MaxAge <= 0 || !k.HttpOnly || k.SameSite != http.SameSiteStrictMode) {
			t.Errorf("kiosk cookie %+v: want persistent until the token expires, HttpOnly, Strict", k)
		}
	}
	wantStatus(t, "display shows the dashboard", c.get("/"), http.StatusOK)
	wantStatus(t, "display on a signed-in route", c.get("/whoami"), http.StatusForbidden)
	c.refreshCSRF()
	wantStatus(t, "display pulls the andon", c.post("/andon", nil), http.StatusForbidden)
	if err := r.owner.RevokeToken(t.Context(), tv.ID, r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "display after revocation", c.get("/"), http.StatusSeeOther)
}

// TestSessionExpiry: idle and absolute expiry on the injected clock.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	const idle, absolute = 30 * time.Minute, 2 * time.Hour
	r := newRig(t, rigOpts{cfg: func(c *web.Config) { c.IdleTimeout, c.AbsoluteTimeout = idle, absolute }})
	c := r.signIn("olga")
	// Busy: a request every 20 minutes keeps it alive past the idle time…
	for elapsed := time.Duration(0); elapsed+20*time.Minute < absolute; elapsed += 20 * time.Minute {
		r.clock.Advance(20 * time.Minute)
		wantStatus(t, "busy session at "+(elapsed+20*time.Minute).String(), c.get("/whoami"), http.StatusOK)
	}
	// …but not past the absolute time.
	r.clock.Advance(20 * time.Minute)
	wantStatus(t, "busy session past the absolute time", c.get("/whoami"), http.StatusSeeOther)
	// Idle: one request, then silence.
	c = r.signIn("olga")
	r.clock.Advance(idle - time.Second)
	wantStatus(t, "just before the idle time", c.get("/whoami"), http.StatusOK)
	r.clock.Advance(idle + time.Second)
	wantStatus(t, "idle past the idle time", c.get("/whoami"), http.StatusSeeOther)
	if c.sessionCookie() != "" {
		t.Error("the expired session's cookie is not cleared")
	}
}

// TestPasswordChangeEndsOtherSessions: changing one's password ends every
// other session of the user; this browser carries on with a new session.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	a, b := r.signIn("pia"), r.signIn("pia")
	oldCookie := a.sessionCookie()
	const next = "a new and much longer password"
	wantStatus(t, "wrong current password", a.post(web.PathPassword, url.Values{"current": {"nope nope nope"}, "new": {next}, "confirm": {next}}),
		http.StatusForbidden)
	wantStatus(t, "the current password again", a.post(web.PathPassword, url.Values{"current": {password("pia")}, "new": {password("pia")},
		"confirm": {password("pia")}}), http.StatusBadRequest)
	wantStatus(t, "weak new password", a.post(web.PathPassword, url.Values{"current": {password("pia")}, "new": {"short"}, "confirm": {"short"}}),
		http.StatusBadRequest)
	wantStatus(t, "without the CSRF token", a.postForm(web.PathPassword, url.Values{"current": {password("pia")}, "new": {next}, "confirm": {next}}),
		http.StatusForbidden)
	resp := a.post(web.PathPassword, url.Values{"current": {password("pia")}, "new": {next}, "confirm": {next}})
	wantStatus(t, "change", resp, http.StatusOK)
	if a.sessionCookie() == oldCookie || a.sessionCookie() == "" {
		t.Error("the changing browser did not get a new session")
	}
	wantStatus(t, "this browser after the change", a.get("/whoami"), http.StatusOK)
	wantStatus(t, "the other browser after the change", b.get("/whoami"), http.StatusSeeOther)
	wantStatus(t, "old password", r.client(true).login("pia", password("pia")), http.StatusUnauthorized)
	wantStatus(t, "new password", r.client(true).login("pia", next), http.StatusSeeOther)
	// An admin's reset (keiline users passwd) ends every session.
	if err := web.SetPassword(t.Context(), r.owner, "pia", "reset by the admin today", r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "after an admin reset", a.get("/whoami"), http.StatusSeeOther)
}

// TestLogout ends the session on the server, not only in the browser.
func TestLogout(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	c := r.signIn("olga")
	cookie := c.sessionCookie()
	wantStatus(t, "logout without the token", c.postForm(web.PathLogout, nil), http.StatusForbidden)
	resp := c.post(web.PathLogout, nil)
	wantStatus(t, "logout", resp, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/login?msg=signed_out" {
		t.Errorf("logout goes to %q", loc)
	}
	replay := r.client(false)
	wantStatus(t, "the old cookie replayed", replay.get("/whoami", "Cookie", web.SessionCookie+"="+cookie), http.StatusUnauthorized)
	// Signing in again ends the session the browser had.
	c = r.signIn("olga")
	first := c.sessionCookie()
	wantStatus(t, "sign in again", c.login("olga", password("olga")), http.StatusSeeOther)
	if c.sessionCookie() == first {
		t.Error("a second sign-in kept the session id")
	}
	wantStatus(t, "the first session after a second sign-in", replay.get("/whoami", "Cookie", web.SessionCookie+"="+first), http.StatusUnauthorized)
}

// TestSignatureReauthenticates: a signature needs the signer's password,
// returns its meaning for the record, and counts toward the lockout.
func TestSignatureReauthenticates(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	q := r.signIn("quinn")
	const meaning = "released VIN after rework: torque rechecked"
	resp := q.post("/quality/release", url.Values{"password": {password("quinn")}, "meaning": {meaning}})
	wantStatus(t, "sign", resp, http.StatusOK)
	if !strings.Contains(resp.body, `"meaning":"`+meaning+`"`) || !strings.Contains(resp.body, `"user":"quinn"`) ||
		!strings.Contains(resp.body, `"quality_inspector"`) {
		t.Errorf("signature %s", resp.body)
	}
	wantStatus(t, "no meaning", q.post("/quality/release", url.Values{"password": {password("quinn")}}), http.StatusBadRequest)
	for range web.LockoutThresholdDefault {
		r.clock.Advance(web.LoginAccountEvery) // within the rate limit: the lockout answers
		wantStatus(t, "wrong password", q.post("/quality/release", url.Values{"password": {"not it at all"}, "meaning": {meaning}}), http.StatusForbidden)
	}
	r.clock.Advance(time.Minute)
	wantStatus(t, "right password while locked", q.post("/quality/release", url.Values{"password": {password("quinn")}, "meaning": {meaning}}),
		http.StatusForbidden)
	wantStatus(t, "sign-in while locked", r.client(true).login("quinn", password("quinn")), http.StatusUnauthorized)
	fs, err := r.owner.LoginFailures(t.Context(), r.clock.Now().Add(-time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	sigs := 0
	for _, f := range fs {
		if f.Kind == "signature" {
			sigs++
		}
	}
	if sigs != web.LockoutThresholdDefault+1 {
		t.Errorf("%d signature failures recorded, want %d", sigs, web.LockoutThresholdDefault+1)
	}
}

// TestSecurityHeadersAndLimits: every answer carries the headers; bodies
// over the route's limit are refused.
func TestSecurityHeadersAndLimits(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	c := r.signIn("pia")
	for _, path := range []string{"/", "/login", "/healthz", "/nowhere"} {
		resp := c.get(path)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" ||
			h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
	if cc := c.get("/auth/static/auth.css").Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("stylesheet Cache-Control %q", cc)
	}
	big := strings.Repeat("x", web.BodyMaxDefault+1)
	wantStatus(t, "body over the default limit", c.do(http.MethodPost, "/api/orders", strings.NewReader(big), "text/csv", web.CSRFHeader, c.csrf),
		http.StatusRequestEntityTooLarge)
	wantStatus(t, "body within the route's limit", c.do(http.MethodPost, "/upload", strings.NewReader(big[:64<<10]), "text/csv", web.CSRFHeader, c.csrf),
		http.StatusOK)
	wantStatus(t, "body over the route's limit", c.do(http.MethodPost, "/upload", strings.NewReader(big[:64<<10+1]), "text/csv", web.CSRFHeader, c.csrf),
		http.StatusRequestEntityTooLarge)
	wantStatus(t, "sign-in form over its limit", r.client(true).postForm(web.PathLogin, url.Values{"user": {"olga"}, "password": {big[:web.FormBodyMax]}}),
		http.StatusBadRequest)
}

// TestErrorsShowASafeMessage: the client sees a generic message, the log
// the cause; a panic is a 500, not a dropped connection.
func TestErrorsShowASafeMessage(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	c := r.signIn("olga")
	resp := c.get("/boom")
	wantStatus(t, "handler error", resp, http.StatusInternalServerError)
	if strings.Contains(resp.body, "hunter2") || strings.Contains(resp.body, "db.internal") {
		t.Errorf("the cause reached the client: %q", resp.body)
	}
	if !strings.Contains(r.logs.String(), "db.internal refused") {
		t.Error("the cause is not logged")
	}
	resp = c.get("/panic")
	wantStatus(t, "panic", resp, http.StatusInternalServerError)
	if strings.Contains(resp.body, "kaboom") || !strings.Contains(r.logs.String(), "kaboom in handler") {
		t.Errorf("panic: body %q; logged: %t", resp.body, strings.Contains(r.logs.String(), "kaboom"))
	}
}

// TestNextIsOnlyThisSite: the sign-in page goes back only to a path here.
func TestNextIsOnlyThisSite(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	for next, want := range map[string]string{
		"/trace/?vin=1": "/trace/?vin=1", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil.example": "/", "": "/",
		"/%0d%0aSet-Cookie:x": "/%0d%0aSet-Cookie:x", "javascript:alert(1)": "/",
	} {
		c := r.client(true)
		resp := c.postForm(web.PathLogin, url.Values{"user": {"olga"}, "password": {password("olga")}, "next": {next}})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != want {
			t.Errorf("next %q: %d to %q, want %q", next, resp.StatusCode, loc, want)
		}
	}
}
