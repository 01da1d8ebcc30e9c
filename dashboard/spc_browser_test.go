package dashboard_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/spc"
)

// TestSPCChartInTheBrowser: an engineer freezes limits from a baseline on
// the chart page; the chart then draws those limits, flags the car whose
// torque is beyond them, links it to its trace, and the index shows the
// rule broken. No console error: the pages' styles pass their CSP.
func TestSPCChartInTheBrowser(t *testing.T) {
	r := newRecordRig(t, []string{"C04", "S01"}, func(c *dashboard.Config) { c.SPC = lugSPC })
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	const baseline, outlier = 40, 50
	values := torqueCars(t, r, base, 60, outlier, 118)
	b := newBrowser(t, 1280, 1000)

	key := schema.CharKey{Kind: schema.KindTorque, Station: "C04", Name: "lug_fl_1"}
	chart := "/spc/chart?kind=torque&station=C04&name=lug_fl_1&lang=en"
	b.do(t, chromedp.Navigate(r.url(chart)))
	waitPage(t, b, `document.querySelector('#trial') && document.querySelector('svg.spc-chart')`)

	// Freeze the first 40 cars as the baseline, through the form.
	from := base.Add(-30 * time.Second).UTC().Format("2006-01-02T15:04")
	to := base.Add((baseline - 1) * time.Minute).Add(30 * time.Second).UTC().Format("2006-01-02T15:04:05")
	b.do(t,
		chromedp.SetValue(`input[name=baseline_from]`, from),
		chromedp.SetValue(`input[name=baseline_to]`, to),
		chromedp.SetValue(`input[name=frozen_by]`, "qe.sato"),
		chromedp.SetValue(`input[name=reason]`, "first baseline"),
		chromedp.Submit(`#freeze`),
	)
	waitPage(t, b, `document.querySelector('#saved') && document.querySelector('#frozen')`)

	var pts []spc.Point
	for _, v := range values[:baseline] {
		pts = append(pts, spc.Point{Value: v})
	}
	want, err := spc.ComputeLimits(pts, spc.ChartConfig{Method: spc.MethodIMR, N: 1})
	if err != nil {
		t.Fatal(err)
	}
	line := func(class string) float64 {
		t.Helper()
		s := eval[string](t, b, `document.querySelector('g[data-part=location] line.`+class+`').getAttribute('data-value')`)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s line: %q", class, s)
		}
		return v
	}
	if got := line("ucl"); got != want.Location.UCL {
		t.Errorf("UCL drawn %v, want the baseline's %v", got, want.Location.UCL)
	}
	if got := line("lcl"); got != want.Location.LCL {
		t.Errorf("LCL drawn %v, want %v", got, want.Location.LCL)
	}
	if got := line("cl"); got != want.Location.Centre {
		t.Errorf("CL drawn %v, want %v", got, want.Location.Centre)
	}
	if got := line("usl"); got != 118.8 {
		t.Errorf("USL drawn %v, want the config's 118.8", got)
	}
	if values[outlier] <= want.Location.UCL {
		t.Fatalf("the test's outlier %v is not beyond the UCL %v", values[outlier], want.Location.UCL)
	}

	// The outlier is flagged, titled with its rule and car, and links to
	// the car's trace page.
	outVIN := carVIN(t, outlier+1)
	flagged := eval[[]string](t, b, `[...document.querySelectorAll('g[data-part=location] circle.flag')].map(c => c.querySelector('title').textContent)`)
	if len(flagged) == 0 || !strings.Contains(strings.Join(flagged, "|"), "Nelson 1 — "+outVIN) {
		t.Errorf("flagged points %q, want Nelson 1 at %s", flagged, outVIN)
	}
	href := eval[string](t, b, `(() => { const c = [...document.querySelectorAll('g[data-part=location] circle.flag')].find(c => c.querySelector('title').textContent.includes('`+outVIN+`')); return c && c.parentNode.getAttribute('href') })()`)
	if href != "/trace/vin/"+outVIN {
		t.Errorf("the flagged point links to %q, want /trace/vin/%s", href, outVIN)
	}
	if rows := eval[string](t, b, `document.querySelector('#flags').textContent`); !strings.Contains(rows, outVIN) || !strings.Contains(rows, "Nelson 1") {
		t.Errorf("flags table %q lacks %s and Nelson 1", rows, outVIN)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}

	// The record has the version, who froze it (typed, not signed in) and
	// the baseline.
	f, err := r.view.LatestLimits(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 1 || f.FrozenBy != "qe.sato" || f.SignedIn || f.Reason != "first baseline" || f.Limits.Baseline.Points != baseline || f.Limits.Location != want.Location {
		t.Errorf("frozen %+v, want version 1 by qe.sato of the %d baseline points", f, baseline)
	}

	t.Run("the index shows the rule broken", func(t *testing.T) {
		b.do(t, chromedp.Navigate(r.url("/spc/")))
		waitPage(t, b, `document.querySelector('#characteristics')`)
		state := eval[string](t, b, `document.querySelector('tr[data-key="torque C04 lug_fl_1"]').dataset.state`)
		text := eval[string](t, b, `document.querySelector('tr[data-key="torque C04 lug_fl_1"] .state').textContent`)
		// The newest broken point: the outlier, or the car after it whose
		// moving range to the outlier is beyond the MR chart's limit.
		next := carVIN(t, outlier+2)
		if state != "rule_broken" || !strings.Contains(text, "Nelson 1") || !strings.Contains(text, outVIN) && !strings.Contains(text, next) {
			t.Errorf("index state %q %q, want Nelson 1 broken at %s or %s", state, text, outVIN, next)
		}
		if s := eval[string](t, b, `document.querySelector('tr[data-key="angle C04 lug_fl_1"]').dataset.state`); s != "no_limits" {
			t.Errorf("angle state %q, want no_limits", s)
		}
	})
	t.Run("the link leads to the car", func(t *testing.T) {
		b.do(t, chromedp.Navigate(r.url(chart)))
		sel := `#flags a[href="/trace/vin/` + outVIN + `"]`
		waitPage(t, b, `document.querySelector('`+sel+`')`)
		b.do(t, chromedp.Click(sel))
		waitPage(t, b, `location.pathname === '/trace/vin/`+outVIN+`' && document.body.textContent.includes('`+outVIN+`')`)
	})
	t.Run("in Japanese", func(t *testing.T) {
		b.do(t, chromedp.Navigate(r.url("/spc/chart?kind=torque&station=C04&name=lug_fl_1&lang=ja")))
		waitPage(t, b, `document.querySelector('svg.spc-chart')`)
		body := eval[string](t, b, `document.body.textContent`)
		for _, want := range []string{"確定した管理限界", "上方管理限界", "ネルソン則1"} {
			if !strings.Contains(body, want) {
				t.Errorf("the Japanese page lacks %q", want)
			}
		}
	})
	t.Run("a freeze replacing an older version is refused", func(t *testing.T) {
		res := postForm(t, r.url("/spc/freeze"), "kind=torque&station=C04&name=lug_fl_1&replaces=0&method=i-mr&subgroup=1&frozen_by=x&baseline_from="+from+"&baseline_to="+to)
		if res != 409 {
			t.Errorf("status %d, want 409", res)
		}
	})
	t.Run("the capability report", func(t *testing.T) {
		b.do(t, chromedp.Navigate(r.url("/spc/capability?kind=torque&station=C04&name=lug_fl_1&lang=en")))
		waitPage(t, b, `document.querySelector('#indices')`)
		rep, err := spc.Capability(mustSeries(t, r, key, base), spc.Spec{LSL: spc.At(97.2), USL: spc.At(118.8), Target: spc.At(108)},
			spc.CapabilityOptions{Chart: spc.ChartConfig{Method: spc.MethodIMR, N: 1}})
		if err != nil {
			t.Fatal(err)
		}
		got := eval[string](t, b, `document.querySelector('tr[data-index=cpk] td.num').textContent`)
		if got != strconv.FormatFloat(rep.Cpk.Value, 'f', 3, 64) {
			t.Errorf("Cpk shown %q, want %.3f", got, rep.Cpk.Value)
		}
		if c := eval[string](t, b, `document.querySelector('#caveat').textContent`); !strings.Contains(c, "Anderson") && !strings.Contains(c, "normality") {
			t.Errorf("caveat %q", c)
		}
	})
}

func mustSeries(t *testing.T, r *recordRig, k schema.CharKey, base time.Time) []spc.Point {
	t.Helper()
	s, err := r.view.Series(t.Context(), schema.SeriesQuery{Key: k, From: time.Now().Add(-dashboard.SPCChartWindowDefault), To: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return s.Points
}
