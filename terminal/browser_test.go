package terminal_test

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

	"github.com/keiline/keiline/schema"
)

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

// tab is a headless Chromium tab of its own profile (its own session) at
// a window size, with the errors its console saw.
type tab struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newTab(t *testing.T, width, height int) *tab {
	t.Helper()
	bin := chromiumBin()
	if bin == "" {
		t.Skip("no Chromium: install Debian's chromium package (./test.sh does) or set KEILINE_CHROMIUM")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), chromedp.ExecPath(bin), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height))
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

// waitFor polls expr until it is truthy and returns its value; a poll cut
// short by a navigation starts again on the new page.
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

// signIn opens path in b, signs user in on the page it is sent to, and
// waits until it is back at path.
func (r *rig) signInTab(t *testing.T, b *tab, user, path string) {
	t.Helper()
	b.do(t, chromedp.Navigate(r.url+path))
	waitFor[bool](t, b, "the sign-in page", `location.pathname === '/login' && document.querySelector('#user') !== null`)
	b.do(t, chromedp.SendKeys("#user", user), chromedp.SendKeys("#password", password(user)), chromedp.Click("button[type=submit]"))
	p, _, _ := strings.Cut(path, "?")
	waitFor[bool](t, b, user+" back at "+path, fmt.Sprintf(`location.pathname === %q && document.readyState === 'complete'`, p))
}

// TestBrowserDefectToRelease is the acceptance of issue 13 in headless
// Chromium, the terminals at a tablet's size: an operator signs in at T03,
// sees the car and records a defect; the hold appears on the supervisor's
// dashboard; the rework station closes it; an inspector releases the car
// with a signature; the trace page shows all three with who and why; the
// audit passes, and a superuser's change to one decision is caught.
func TestBrowserDefectToRelease(t *testing.T) {
	op := newTab(t, 800, 1280) // skips without Chromium before the database is made
	r := newRig(t, rigOpts{dashboard: true})
	car := mkVIN(t, 201)
	r.build(car, "T03")

	r.signInTab(t, op, "sato", "/station/T03")
	shown := waitFor[string](t, op, "the car at T03", `document.querySelector('#car-vin') && document.querySelector('#car').innerText`)
	for _, w := range []string{car, "KW", "4WD"} {
		if !strings.Contains(shown, w) {
			t.Errorf("T03 shows %q, want %q in it", shown, w)
		}
	}
	if hidden := waitFor[string](t, op, "the forms shown", `[...document.querySelectorAll('form[id^=form-]')].map(f => f.id).join(' ') + ' '`); strings.Contains(hidden, "form-release") || strings.Contains(hidden, "form-hold") {
		t.Errorf("an operator's T03 page shows %s", hidden)
	}
	sup := newTab(t, 1280, 900)
	r.signInTab(t, sup, "abe", "/")
	waitFor[bool](t, sup, "the dashboard's holds", `document.querySelector('#holds-list') !== null`)

	op.do(t, chromedp.SetValue("#defect-code", "SCR-01"), chromedp.SetValue("#defect-zone", "door_fl"), chromedp.SetValue("#defect-severity", "major"),
		chromedp.SendKeys("#defect-text", "scratch above the handle"), chromedp.Click("#defect-save"))
	defect := waitFor[string](t, op, "saved", `document.querySelector('#saved') && document.querySelector('#saved code').textContent`)
	savedAt := time.Now()
	waitFor[bool](t, sup, "the defect's hold on the dashboard", fmt.Sprintf(`[...document.querySelectorAll('#holds-list tr')].some(tr =>
		tr.dataset.vin === %q && tr.innerText.includes('scratch above the handle'))`, car))
	t.Logf("the hold reached the supervisor's dashboard %v after the page said saved", time.Since(savedAt).Round(10*time.Millisecond))

	rework := newTab(t, 800, 1280)
	r.signInTab(t, rework, "kato", "/station/R01?vin="+car)
	waitFor[bool](t, rework, "the repair form", `document.querySelector('#form-repair') !== null`)
	rework.do(t, chromedp.SendKeys("#repair-text", "polished out"), chromedp.Click("#repair-save"))
	repair := waitFor[string](t, rework, "saved", `document.querySelector('#saved') && document.querySelector('#saved code').textContent`)

	qi := newTab(t, 800, 1280)
	r.signInTab(t, qi, "ito", "/station/Q05?vin="+car)
	meaning := waitFor[string](t, qi, "the signature's meaning", `document.querySelector('#release-meaning') && document.querySelector('#release-meaning').textContent`)
	if meaning != r.lc.People.Meaning() {
		t.Errorf("meaning shown %q, want %q", meaning, r.lc.People.Meaning())
	}
	qi.do(t, chromedp.SendKeys("#release-reason", "checked under the light"), chromedp.SendKeys("#release-password", password("ito")), chromedp.Click("#release-save"))
	release := waitFor[string](t, qi, "saved", `document.querySelector('#saved') && document.querySelector('#saved code').textContent`)
	waitFor[bool](t, sup, "the hold gone from the dashboard", fmt.Sprintf(`![...document.querySelectorAll('#holds-list tr')].some(tr => tr.dataset.vin === %q)`, car))

	aud := newTab(t, 1280, 900)
	r.signInTab(t, aud, "mori", "/trace/vin/"+car)
	page := waitFor[string](t, aud, "the decisions on the trace page", `document.querySelector('#decisions') && document.querySelector('#decisions').innerText`)
	for _, w := range []string{defect, repair, release, "sato (operator)", "kato (operator)", "ito (quality_inspector)",
		"SCR-01 at door_fl (major); scratch above the handle", "polished out", "checked under the light", meaning} {
		if !strings.Contains(page, w) {
			t.Errorf("trace page lacks %q:\n%s", w, page)
		}
	}

	rep, err := r.owner.Audit(t.Context(), schema.AuditOptions{})
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("audit of the intact record: %v %+v", err, rep.Problems)
	}
	if _, err := r.owner.Pool().Exec(t.Context(), `UPDATE human_actions SET reason = 'as agreed on the phone' WHERE event_id = $1`, release); err != nil {
		t.Fatal(err)
	}
	rep, err = r.owner.Audit(t.Context(), schema.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 || rep.Problems[0].EventID != release || rep.Problems[0].Table != "human_actions" {
		t.Errorf("audit after a superuser changed the release's reason: %+v, want the release named", rep.Problems)
	}
	for _, b := range []*tab{op, sup, rework, qi, aud} {
		for _, e := range b.consoleErrors() {
			if strings.HasSuffix(e, "/favicon.ico") {
				continue
			}
			t.Errorf("console: %s", e)
		}
	}
}
