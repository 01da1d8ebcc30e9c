package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/keiline/keiline/web"
)

// chromiumBin returns Debian's Chromium (or KEILINE_CHROMIUM), or "".
func chromiumBin() string {
	if p := os.Getenv("KEILINE_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// tab is a headless Chromium tab with a fresh profile and the errors its
// console saw (CSP violations among them).
type tab struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newTab(t *testing.T) *tab {
	t.Helper()
	bin := chromiumBin()
	if bin == "" {
		t.Skip("no Chromium: install Debian's chromium package (./test.sh does) or set KEILINE_CHROMIUM")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), chromedp.ExecPath(bin), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true), chromedp.UserDataDir(t.TempDir()))
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &tab{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				msg = fmt.Sprintf("%s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	return b
}

func (b *tab) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls expr until it is truthy and returns its value. A poll cut
// short by a navigation (the page's context destroyed) starts again on the
// new page.
func waitFor[T any](t *testing.T, b *tab, what, expr string) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(20*time.Millisecond),
			chromedp.WithPollingTimeout(time.Until(deadline))))
		if err == nil {
			return v
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "(-32000)") || b.ctx.Err() != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
}

func (b *tab) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
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
	b.do(t, chromedp.Navigate(r.url+"/login?lang=ja"))
	waitFor[bool](t, b, "the sign-in page in Japanese", `document.documentElement.lang === 'ja' &&
		document.querySelector('button[type=submit]').textContent === 'サインイン'`)
	b.do(t, chromedp.Click(`nav.lang a[lang=en]`))
	waitFor[bool](t, b, "the language switch", `document.documentElement.lang === 'en' && document.cookie.includes('keiline_lang=en')`)
	b.do(t, chromedp.Navigate(r.url+"/whoami"))
	waitFor[bool](t, b, "the sign-in page", `location.pathname === '/login' && location.search === '?next=%2Fwhoami' && document.querySelector('#user') !== null`)
	b.do(t, chromedp.SendKeys("#user", "olga"), chromedp.SendKeys("#password", "not the password!"), chromedp.Click("button[type=submit]"))
	waitFor[bool](t, b, "the refusal", `document.querySelector('#msg') !== null && document.querySelector('#msg').textContent.includes('Sign-in failed')`)
	b.do(t, chromedp.SendKeys("#user", "olga"), chromedp.SendKeys("#password", password("olga")), chromedp.Click("button[type=submit]"))
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
	tv.do(t, chromedp.Navigate(r.url+web.PathKiosk+"#"+tok))
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
		for _, e := range bt.consoleErrors() {
			// The refused sign-in (401) and the refused post (403) are
			// meant; the rig's plain-text pages have no icon.
			if strings.Contains(e, "status of 401") || strings.Contains(e, "status of 403") || strings.HasSuffix(e, "/favicon.ico") {
				continue
			}
			t.Errorf("console: %s", e)
		}
	}
}
