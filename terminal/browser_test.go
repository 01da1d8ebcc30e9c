package terminal_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keiline/keiline/internal/browsertest"
	"github.com/keiline/keiline/schema"
)

// tab is a headless Chromium tab (internal/browsertest).
type tab = browsertest.Tab

func newTab(t *testing.T, width, height int) *tab { return browsertest.New(t, width, height) }

func waitFor[T any](t *testing.T, b *tab, what, expr string) T {
	t.Helper()
	return browsertest.WaitFor[T](t, b, what, expr)
}

// signIn opens path in b, signs user in on the page it is sent to, and
// waits until it is back at path.
func (r *rig) signInTab(t *testing.T, b *tab, user, path string) {
	t.Helper()
	b.Do(t, chromedp.Navigate(r.url+path))
	waitFor[bool](t, b, "the sign-in page", `location.pathname === '/login' && document.querySelector('#user') !== null`)
	b.Do(t, chromedp.SendKeys("#user", user), chromedp.SendKeys("#password", password(user)), chromedp.Click("button[type=submit]"))
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

	op.Do(t, chromedp.SetValue("#defect-code", "SCR-01"), chromedp.SetValue("#defect-zone", "door_fl"), chromedp.SetValue("#defect-severity", "major"),
		chromedp.SendKeys("#defect-text", "scratch above the handle"), chromedp.Click("#defect-save"))
	defect := waitFor[string](t, op, "saved", `document.querySelector('#saved') && document.querySelector('#saved code').textContent`)
	savedAt := time.Now()
	waitFor[bool](t, sup, "the defect's hold on the dashboard", fmt.Sprintf(`[...document.querySelectorAll('#holds-list tr')].some(tr =>
		tr.dataset.vin === %q && tr.innerText.includes('scratch above the handle'))`, car))
	t.Logf("the hold reached the supervisor's dashboard %v after the page said saved", time.Since(savedAt).Round(10*time.Millisecond))

	rework := newTab(t, 800, 1280)
	r.signInTab(t, rework, "kato", "/station/R01?vin="+car)
	waitFor[bool](t, rework, "the repair form", `document.querySelector('#form-repair') !== null`)
	rework.Do(t, chromedp.SendKeys("#repair-text", "polished out"), chromedp.Click("#repair-save"))
	repair := waitFor[string](t, rework, "saved", `document.querySelector('#saved') && document.querySelector('#saved code').textContent`)

	qi := newTab(t, 800, 1280)
	r.signInTab(t, qi, "ito", "/station/Q05?vin="+car)
	meaning := waitFor[string](t, qi, "the signature's meaning", `document.querySelector('#release-meaning') && document.querySelector('#release-meaning').textContent`)
	if meaning != r.lc.People.Meaning() {
		t.Errorf("meaning shown %q, want %q", meaning, r.lc.People.Meaning())
	}
	qi.Do(t, chromedp.SendKeys("#release-reason", "checked under the light"), chromedp.SendKeys("#release-password", password("ito")), chromedp.Click("#release-save"))
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
		for _, e := range b.ConsoleErrors() {
			if strings.HasSuffix(e, "/favicon.ico") {
				continue
			}
			t.Errorf("console: %s", e)
		}
	}
}
