package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/web"
)

// TestNoSecretInLogs runs a whole day's flow — sign-ins, wrong passwords,
// a password typed into the name field, a lockout, a signature, a password
// change, tokens good and bad, a kiosk, sign-out — capturing everything
// the middleware logs at debug level, and finds no password, session id,
// CSRF token or API token in it, nor in the failed sign-ins recorded.
func TestNoSecretInLogs(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	var secrets []string
	keep := func(s ...string) { secrets = append(secrets, s...) }
	for _, u := range rigUsers {
		keep(u.password)
	}

	q := r.signIn("quinn")
	keep(q.sessionCookie(), q.csrf)
	wantStatus(t, "signature", q.post("/quality/release", url.Values{"password": {password("quinn")}, "meaning": {"released"}}), http.StatusOK)
	const typo = "Tr0ub4dor&3-in-the-name-field"
	keep(typo)
	anon := r.client(true)
	wantStatus(t, "password typed as the name", anon.login(typo, password("olga")), http.StatusUnauthorized)
	const wrong = "wrong-horse-battery-staple"
	keep(wrong)
	for range web.LockoutThresholdDefault {
		anon.login("olga", wrong)
	}
	r.clock.Advance(time.Minute)
	wantStatus(t, "locked", anon.login("olga", password("olga")), http.StatusUnauthorized)

	p := r.signIn("pia")
	keep(p.sessionCookie(), p.csrf)
	const next = "a brand new passphrase today"
	keep(next)
	resp := p.post(web.PathPassword, url.Values{"current": {password("pia")}, "new": {next}, "confirm": {next}})
	wantStatus(t, "password change", resp, http.StatusOK)
	p.refreshCSRF()
	keep(p.sessionCookie(), p.csrf)

	erpTok, _ := r.createToken("erp-orders", 0, web.ScopeOrdersWrite)
	tvTok, _ := r.createToken("line TV", 0, web.ScopeDashboardRead)
	keep(erpTok, tvTok, strings.TrimPrefix(erpTok, web.TokenPrefix), strings.TrimPrefix(tvTok, web.TokenPrefix))
	wantStatus(t, "token use", r.bearer(erpTok).do(http.MethodPost, "/api/orders", strings.NewReader("{}"), "application/json"), http.StatusCreated)
	wantStatus(t, "token out of scope", r.bearer(erpTok).get("/"), http.StatusForbidden)
	badTok := web.TokenPrefix + strings.Repeat("Z", 43)
	keep(badTok)
	wantStatus(t, "unknown token", r.bearer(badTok).get("/"), http.StatusUnauthorized)
	wantStatus(t, "malformed token", r.bearer("secret-looking-garbage-123").get("/"), http.StatusUnauthorized)
	keep("secret-looking-garbage-123")
	k := r.client(true)
	wantStatus(t, "kiosk", k.postForm(web.PathKiosk, url.Values{"token": {tvTok}}), http.StatusSeeOther)
	keep(k.sessionCookie())
	wantStatus(t, "kiosk with a bad token", r.client(true).postForm(web.PathKiosk, url.Values{"token": {badTok}}), http.StatusUnauthorized)
	wantStatus(t, "no CSRF", p.postForm("/plan", nil), http.StatusForbidden)
	wantStatus(t, "logout", p.post(web.PathLogout, nil), http.StatusSeeOther)
	wantStatus(t, "error", q.get("/boom"), http.StatusInternalServerError)

	logs := r.logs.String()
	for _, want := range []string{"signed in", "password refused", "user locked", "signature", "password changed", "API token refused", "kiosk signed in", "signed out"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q: the flow did not run as meant", want)
		}
	}
	var stored strings.Builder
	rows, err := r.owner.Pool().Query(t.Context(), `SELECT l::text FROM login_failures l UNION ALL SELECT s::text FROM sessions s UNION ALL SELECT u::text FROM users u`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stored.WriteString(s + "\n")
	}
	rows.Close()
	for _, s := range secrets {
		if s == "" {
			t.Fatal("a secret of the flow is empty: the flow did not run as meant")
		}
		// Case-insensitive: names are stored and logged in lower case.
		if strings.Contains(strings.ToLower(logs), strings.ToLower(s)) {
			t.Errorf("the log holds the secret %q", s)
		}
		if strings.Contains(strings.ToLower(stored.String()), strings.ToLower(s)) {
			t.Errorf("the database holds the secret %q", s)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs)
	}
}
