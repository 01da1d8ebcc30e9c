package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keiline/keiline/internal/browsertest"
	"github.com/keiline/keiline/web"
)

// tab is a headless Chromium tab (internal/browsertest).
type tab = browsertest.Tab

func newTab(t *testing.T) *tab { return browsertest.New(t, 0, 0) }

func waitFor[T any](t *testing.T, b *tab, what, expr string) T {
	t.Helper()
	return browsertest.WaitFor[T](t, b, what, expr)
}

// TestBrowserSignsIn drives headless Chromium: a page sends it to the
// sign-in page, the form signs it in (a real browser's Origin and
// Sec-Fetch-Site pass the origin check), a script's state change needs the
// CSRF token, and a TV signs in from /kiosk#token with the page's script —
// all under the content security policy, with no console error.
func TestBrowserSignsIn(t *testing.T) {
	t.Parallel()
	b := newTab(t) // skips without Chromium before the database is made
	r := newRig(t, rigOpts{})
	b.Do(t, chromedp.Navigate(r.url+"/login?lang=ja"))
	waitFor[bool](t, b, "the sign-in page in Japanese", `document.documentElement.lang === 'ja' &&
		document.querySelector('button[type=submit]').textContent === 'サインイン'`)
	b.Do(t, chromedp.Click(`nav.lang a[lang=en]`))
	waitFor[bool](t, b, "the language switch", `document.documentElement.lang === 'en' && document.cookie.includes('keiline_lang=en')`)
	b.Do(t, chromedp.Navigate(r.url+"/whoami"))
	waitFor[bool](t, b, "the sign-in page", `location.pathname === '/login' && location.search === '?next=%2Fwhoami' && document.querySelector('#user') !== null`)
	b.Do(t, chromedp.SendKeys("#user", "olga"), chromedp.SendKeys("#password", "not the password!"), chromedp.Click("button[type=submit]"))
	waitFor[bool](t, b, "the refusal", `document.querySelector('#msg') !== null && document.querySelector('#msg').textContent.includes('Sign-in failed')`)
	b.Do(t, chromedp.SendKeys("#user", "olga"), chromedp.SendKeys("#password", password("olga")), chromedp.Click("button[type=submit]"))
	who := waitFor[string](t, b, "the page asked for", `location.pathname === '/whoami' && document.body.innerText`)
	if !strings.Contains(who, `"who":"user olga"`) {
		t.Errorf("signed in as %q", who)
	}
	if cookie := waitFor[string](t, b, "document.cookie", `document.cookie + ' '`); strings.Contains(cookie, web.SessionCookie) {
		t.Errorf("the session cookie is readable by scripts: %q", cookie)
	}
	// A script's state changes: refused without the token, done with it.
	codes := waitFor[string](t, b, "posts from a script", `(async () => {
		const s = await (await fetch('/session')).json();
		const without = await fetch('/andon', {method: 'POST'});
		const with_ = await fetch('/andon', {method: 'POST', headers: {[s.csrf_header]: s.csrf_token}});
		return without.status + ' ' + with_.status;
	})()`)
	if codes != "403 200" {
		t.Errorf("andon without and with the CSRF token: %s, want 403 200", codes)
	}

	tv := newTab(t)
	tok, _ := r.createToken("line TV", 0, web.ScopeDashboardRead)
	tv.Do(t, chromedp.Navigate(r.url+web.PathKiosk+"#"+tok))
	shown := waitFor[string](t, tv, "the kiosk's dashboard", `location.pathname === '/' && document.body.innerText`)
	if !strings.Contains(shown, "kiosk token") {
		t.Errorf("the display shows %q", shown)
	}
	if hist := waitFor[string](t, tv, "history", `location.href + ' '`); strings.Contains(hist, tok) {
		t.Errorf("the token stayed in the address: %s", hist)
	}
	if strings.Contains(r.logs.String(), tok) {
		t.Error("the kiosk token reached the log")
	}
	for _, bt := range []*tab{b, tv} {
		for _, e := range bt.ConsoleErrors() {
			// The refused sign-in (401) and the refused post (403) are
			// meant; the rig's plain-text pages have no icon.
			if strings.Contains(e, "status of 401") || strings.Contains(e, "status of 403") || strings.HasSuffix(e, "/favicon.ico") {
				continue
			}
			t.Errorf("console: %s", e)
		}
	}
}
