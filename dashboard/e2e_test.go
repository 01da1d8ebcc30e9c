package dashboard_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// pollTimeout bounds every wait for the page.
const pollTimeout = 30 * time.Second

// waitFor polls a JavaScript expression in the page until it is truthy and
// returns its value.
func waitFor[T any](t *testing.T, b *browser, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(pollTimeout)))
	if err != nil {
		t.Fatalf("waiting for %s: %v\nconsole errors: %q", what, err, b.consoleErrors())
	}
	return v
}

// TestBrowser drives the dashboard in headless Chromium while a whole
// simulated line runs: real PLCs over OPC UA, agents, JetStream, the
// tracker and PostgreSQL.
func TestBrowser(t *testing.T) {
	if chromium() == "" {
		t.Skip("no Chromium: install Debian's chromium package (./test.sh does) or set KEILINE_CHROMIUM")
	}
	r := newRig(t, rigOptions{speed: 100, cars: 16, seed: 3})
	b := newBrowser(t, 1600, 1100)
	if _, err := chromedp.Call(b.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"}}); err != nil {
		t.Fatal(err)
	}
	b.do(t, chromedp.Navigate(r.dash.URL()))
	waitFor[chromedp.Void](t, b, "the live stream", `document.querySelector('#conn.live') && document.querySelectorAll('.station').length > 0`)

	t.Run("the page speaks the browser's language", func(t *testing.T) {
		got := eval[[]string](t, b, `[document.documentElement.lang, document.querySelector('#line-section h2 [data-i18n=line]').textContent, document.querySelector('.zone-body .zone-name').textContent]`)
		if fmt.Sprint(got) != "[ja ライン ボデー]" {
			t.Errorf("page language, heading, zone = %q, want Japanese", got)
		}
	})

	t.Run("every station of the line, grouped by zone", func(t *testing.T) {
		got := eval[[][]string](t, b, `[...document.querySelectorAll('#line .zone')].map(z =>
			[z.dataset.zone, ...[...z.querySelectorAll('.station')].map(s => s.dataset.station + ' ' + s.querySelector('.st-name').textContent)])`)
		var want [][]string
		index := map[string]int{}
		for _, s := range r.cfg.Stations {
			i, ok := index[s.Zone]
			if !ok {
				i = len(want)
				index[s.Zone] = i
				want = append(want, []string{s.Zone})
			}
			want[i] = append(want[i], s.ID+" "+s.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("the line on the page\n got %q\nwant %q", got, want)
		}
		if n := eval[int](t, b, `document.querySelectorAll('#line table, #line tr').length`); n != 0 {
			t.Errorf("the line is drawn with %d table elements", n)
		}
	})

	t.Run("a car moves from one station to the next", func(t *testing.T) {
		// A car shows in T02, with its model and colour; then in T03. A
		// page shows the line as it is when it hears of a change, so on a
		// slow machine it can miss a car's short stay: then try the next car.
		for attempt := 1; ; attempt++ {
			car := waitFor[[]string](t, b, "a car in T02", `(() => {
				const s = document.querySelector('.station[data-station="T02"]');
				const a = s && s.querySelector('.st-car .vin[data-vin]');
				const m = s && s.querySelector('.st-model').textContent;
				return a && m ? [a.dataset.vin, m, s.querySelector('.car-icon').getAttribute('class')] : null;
			})()`)
			if len(car[0]) != 17 || !strings.Contains(car[2], "paint-") || car[1] == "" {
				t.Errorf("car in T02 = %q, want a VIN with its model and paint", car)
			}
			next := waitFor[string](t, b, car[0]+" past T02", fmt.Sprintf(`(() => {
				const at = [...document.querySelectorAll('.station')].filter(s => s.dataset.vin === %q).map(s => s.dataset.station);
				return at.includes('T03') ? 'T03' : at.length && !at.includes('T02') ? at[0] : null;
			})()`, car[0]))
			if next == "T03" {
				return
			}
			t.Logf("attempt %d: the page saw %s next in %s, not T03", attempt, car[0], next)
			if attempt == 5 {
				t.Fatalf("in %d attempts no car was seen going from T02 to T03", attempt)
			}
		}
	})

	t.Run("a fault at a PLC shows on the page", func(t *testing.T) {
		const text = "injected: brake line jig jammed"
		start := time.Now()
		if err := r.plant.InjectFault("C03", 599, text, 3*time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor[chromedp.Void](t, b, "the fault at C03", fmt.Sprintf(`(() => {
			const s = document.querySelector('.station[data-station="C03"]');
			return s.dataset.state === 'fault' && s.classList.contains('st-fault') && s.querySelector('.st-fault').textContent === %q;
		})()`, "599 "+text))
		t.Logf("PLC fault to page: %v (measured in BenchmarkFaultToPage; not asserted)", time.Since(start).Round(time.Millisecond))
	})

	t.Run("an agent's alarm shows on the page like a fault", func(t *testing.T) {
		const text = "refused cycle 17: invalid VIN 7KLKW1NA0VU000017: check digit"
		start := time.Now()
		publishAlarm(t, r, "T04", true, text)
		waitFor[chromedp.Void](t, b, "the alarm at T04", fmt.Sprintf(`(() => {
			const s = document.querySelector('.station[data-station="T04"]');
			return s.classList.contains('alarm') && s.dataset.alarm === 'refused' && s.querySelector('.st-fault').textContent.endsWith(%q);
		})()`, "refused: "+text))
		t.Logf("agent alarm to page: %v (not asserted)", time.Since(start).Round(time.Millisecond))
		publishAlarm(t, r, "T04", false, "")
		waitFor[chromedp.Void](t, b, "the alarm at T04 cleared", `(() => {
			const s = document.querySelector('.station[data-station="T04"]');
			return !s.classList.contains('alarm') && !s.querySelector('.st-fault').textContent.includes('refused');
		})()`)
	})

	t.Run("the language switch", func(t *testing.T) {
		b.do(t, chromedp.Click(`nav.lang a[data-lang="en"]`))
		waitFor[chromedp.Void](t, b, "English", `document.documentElement.lang === 'en' &&
			document.querySelector('#line-section h2 [data-i18n=line]').textContent === 'Line' &&
			document.querySelector('.zone-body .zone-name').textContent === 'Body' && document.cookie.includes('keiline_lang=en')`)
	})

	r.waitDone(t, 3*time.Minute)
	drained := time.Now()

	t.Run("find a car by the last 6 characters of its VIN", func(t *testing.T) {
		var v string
		var visits int
		if err := r.store.Pool().QueryRow(t.Context(), `SELECT v.vin, (SELECT count(*) FROM station_visits x WHERE x.vin = v.vin)
			FROM vehicles v WHERE shipped_at IS NOT NULL ORDER BY vin LIMIT 1`).Scan(&v, &visits); err != nil {
			t.Fatal(err)
		}
		b.do(t, chromedp.SetValue("#q", strings.ToLower(v[len(v)-6:])), chromedp.Click("#search button"))
		got := waitFor[[]string](t, b, "the car panel", fmt.Sprintf(`(() => {
			const w = document.querySelector('#car-where');
			return w && document.querySelector('#car-body').dataset.vin === %q ? [w.dataset.status, String(document.querySelectorAll('#car-body tr.visit').length),
				document.querySelector('#car-trace').getAttribute('href'), document.querySelector('#car-body tr.visit td.mono').textContent] : null;
		})()`, v))
		want := []string{"shipped", fmt.Sprint(visits), "/api/v1/cars/" + v + "/trace"}
		if fmt.Sprint(got[:3]) != fmt.Sprint(want) || got[3] == "–" {
			t.Errorf("car panel = %q, want %q and the route's times", got, want)
		}
	})

	t.Run("the shift's numbers equal the record", func(t *testing.T) {
		page := waitFor[map[string]string](t, b, "shift numbers computed after the line finished", fmt.Sprintf(`(() => {
			const s = document.querySelector('#shift');
			if (!s.dataset.asOf || Date.parse(s.dataset.asOf) <= %d) return null;
			const out = {as_of: s.dataset.asOf, from: s.dataset.from};
			for (const e of document.querySelectorAll('#shift [id^=kpi-]')) out[e.id] = e.textContent;
			for (const e of document.querySelectorAll('[data-oee-station]')) out['oee-' + e.dataset.oeeStation] = e.querySelector('.bar-value').textContent;
			return out;
		})()`, drained.UnixMilli()))
		want := recordNumbers(t, r, page["from"], page["as_of"])
		var keys []string
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if page[k] != want[k] {
				t.Errorf("%s: page %q, record %q", k, page[k], want[k])
			}
		}
		t.Logf("page as of %s: %d numbers equal the record (cars out %s, FPY %s, line OEE %s)", page["as_of"], len(keys), page["kpi-cars-out"], page["kpi-fpy"], page["kpi-oee"])
	})

	t.Run("metrics", func(t *testing.T) {
		_, body := r.get(t, "/metrics")
		for _, s := range r.cfg.Stations {
			if m := `keiline_agent_plc_reads_total{station="` + s.ID + `"}`; !strings.Contains(string(body), m) {
				t.Errorf("/metrics has no %s", m)
			}
		}
		for _, m := range []string{`keiline_tracker_events_total{outcome="recorded"}`, "keiline_tracker_lag_messages", "keiline_dashboard_stream_clients 1"} {
			if !strings.Contains(string(body), m) {
				t.Errorf("/metrics has no %s", m)
			}
		}
	})

	t.Run("the car's birth record in the trace pages", func(t *testing.T) {
		href := eval[string](t, b, `(document.querySelector('#car-birth') || {getAttribute: () => ''}).getAttribute('href')`)
		v := eval[string](t, b, `document.querySelector('#car-body').dataset.vin`)
		if href != "/trace/vin/"+v {
			t.Fatalf("the car panel links to %q, want /trace/vin/%s", href, v)
		}
		b.do(t, chromedp.Navigate(r.url(href)))
		// The page's own inline style applies (th is 600, not the
		// browser's bold): its content security policy allows it.
		got := waitFor[[]string](t, b, "the birth record", `document.querySelector('h1') && document.querySelector('th') ?
			[document.querySelector('h1').textContent, getComputedStyle(document.querySelector('th')).fontWeight] : null`)
		if !strings.Contains(got[0], v) || got[1] != "600" {
			t.Errorf("birth record page: %q, want the VIN and the page's style", got)
		}
	})

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// recordNumbers computes the shift's numbers straight from the record, as
// the page shows them: the shift from `from` to `asOf`.
func recordNumbers(t *testing.T, r *rig, fromS, asOfS string) map[string]string {
	t.Helper()
	from, err := time.Parse(time.RFC3339Nano, fromS)
	if err != nil {
		t.Fatal(err)
	}
	asOf, err := time.Parse(time.RFC3339Nano, asOfS)
	if err != nil {
		t.Fatal(err)
	}
	ctx, db := t.Context(), r.store.Pool()
	// Planned time starts with the line's first data in the shift (the
	// line may start after the shift began): OEE counts from there.
	var first *time.Time
	if err := db.QueryRow(ctx, `SELECT min(occurred_at) FROM event_log WHERE occurred_at >= $1 AND occurred_at < $2`, from, asOf).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if first != nil && first.After(from) {
		from = *first
	}
	speed, takt := r.cfg.Speed, time.Minute
	wallTakt := time.Duration(float64(takt) / speed)
	planned := asOf.Sub(from)

	var out, firstPass, holds, andon int64
	if err := db.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM station_visits x WHERE x.vin = v.vin AND x.result <> 'OK'))
		FROM vehicles v WHERE shipped_at >= $1 AND shipped_at < $2`, from, asOf).Scan(&out, &firstPass); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM holds WHERE closed_at IS NULL), (SELECT count(*) FROM station_status WHERE andon)`).
		Scan(&holds, &andon); err != nil {
		t.Fatal(err)
	}
	type counts struct{ n, good int64 }
	cycles := map[string]counts{}
	rows, err := db.Query(ctx, `SELECT station, result FROM station_visits WHERE finished_at >= $1 AND finished_at < $2`, from, asOf)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st, res string
		if err := rows.Scan(&st, &res); err != nil {
			t.Fatal(err)
		}
		c := cycles[st]
		c.n++
		if res == "OK" {
			c.good++
		}
		cycles[st] = c
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}

	// Down time: each recorded state lasts until the station's next one.
	type change struct {
		state string
		at    time.Time
	}
	changes := map[string][]change{}
	rows, err = db.Query(ctx, `SELECT station, state, changed_at FROM station_states ORDER BY station, changed_at, counter`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var st string
		var c change
		if err := rows.Scan(&st, &c.state, &c.at); err != nil {
			t.Fatal(err)
		}
		changes[st] = append(changes[st], c)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	optional := map[string]bool{}
	for _, s := range r.cfg.Stations {
		optional[s.ID] = s.Optional
	}
	down := map[string]time.Duration{}
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for st, cs := range changes {
		for i, c := range cs {
			end := asOf
			if i+1 < len(cs) {
				end = cs[i+1].at
			}
			s, e := c.at, end
			if s.Before(from) {
				s = from
			}
			if e.After(asOf) {
				e = asOf
			}
			if (c.state != "fault" && c.state != "maintenance") || !e.After(s) {
				continue
			}
			down[st] += e.Sub(s)
			if !optional[st] {
				edges = append(edges, edge{s, +1}, edge{e, -1})
			}
		}
	}
	sort.Slice(edges, func(a, b int) bool {
		if !edges[a].at.Equal(edges[b].at) {
			return edges[a].at.Before(edges[b].at)
		}
		return edges[a].d > edges[b].d // a stop that starts where another ends continues it
	})
	var lineDown time.Duration
	depth := 0
	var since time.Time
	for _, e := range edges {
		if depth == 0 && e.d > 0 {
			since = e.at
		}
		depth += e.d
		if depth == 0 {
			lineDown += e.at.Sub(since)
		}
	}

	pct := func(x float64) string { return jsFixed(x*100, 1) + "%" }
	oee := func(down time.Duration, count, good int64) (a, p float64, q, o string) {
		run := planned - down
		a = run.Seconds() / planned.Seconds()
		if run > 0 {
			p = float64(count) * wallTakt.Seconds() / run.Seconds()
		}
		q, o = "–", "–"
		if count > 0 {
			qq := float64(good) / float64(count)
			q, o = pct(qq), pct(a*p*qq)
		}
		return a, p, q, o
	}
	plantH := planned.Seconds() * speed / 3600
	want := map[string]string{
		"kpi-cars-out":     fmt.Sprint(out),
		"kpi-plan-to-date": fmt.Sprint(int64(planned.Seconds() * speed / takt.Seconds())),
		"kpi-plan":         fmt.Sprint(int64(r.cfg.ShiftLength / takt)),
		"kpi-jph":          jsFixed(float64(out)/plantH, 1),
		"kpi-target-jph":   jsFixed(3600/takt.Seconds(), 1),
		"kpi-first-pass":   fmt.Sprintf("%d / %d", firstPass, out),
		"kpi-down":         jsDuration(lineDown.Seconds() * speed),
		"kpi-holds":        fmt.Sprint(holds),
		"kpi-andon-count":  fmt.Sprint(andon),
	}
	want["kpi-fpy"] = "–"
	if out > 0 {
		want["kpi-fpy"] = pct(float64(firstPass) / float64(out))
	}
	a, p, q, o := oee(lineDown, out, firstPass)
	want["kpi-a"], want["kpi-p"], want["kpi-q"], want["kpi-oee"] = pct(a), pct(p), q, o
	for _, s := range r.cfg.Stations {
		if s.Optional {
			continue
		}
		c := cycles[s.ID]
		_, _, _, want["oee-"+s.ID] = oee(down[s.ID], c.n, c.good)
	}
	if out == 0 || math.IsNaN(a) {
		t.Fatalf("no cars out in the record between %v and %v", from, asOf)
	}
	b, _ := json.Marshal(want)
	t.Logf("from the record: %s", b)
	return want
}

// jsFixed formats x ≥ 0 as JavaScript's x.toFixed(d) does: the nearest
// number with d decimals, the larger one on an exact tie.
func jsFixed(x float64, d int) string {
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d)), nil)
	v := new(big.Rat).SetFloat64(x)
	v.Mul(v, new(big.Rat).SetInt(scale))
	v.Add(v, big.NewRat(1, 2))
	n := new(big.Int).Quo(v.Num(), v.Denom()).String()
	if d == 0 {
		return n
	}
	for len(n) <= d {
		n = "0" + n
	}
	return n[:len(n)-d] + "." + n[len(n)-d:]
}

// jsDuration formats seconds as the page's duration() does.
func jsDuration(s float64) string {
	n := int64(math.Floor(math.Max(0, s)))
	h, m, r := n/3600, n%3600/60, n%60
	switch {
	case h > 0:
		return fmt.Sprintf("%dh %02dm %02ds", h, m, r)
	case m > 0:
		return fmt.Sprintf("%dm %02ds", m, r)
	}
	return fmt.Sprintf("%ds", r)
}
