package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/internal/vin"
	"github.com/keiline/keiline/pipeline/event"
)

// publish sends events through the real pipeline: JetStream, then the
// tracker into the record.
type publisher struct {
	t       *testing.T
	r       *rig
	counter map[string]uint32
}

func (p *publisher) send(station, kind, v string, data any, at time.Time) {
	p.t.Helper()
	p.counter[station+kind]++
	n := p.counter[station+kind]
	switch d := data.(type) {
	case *event.State:
		d.Counter = uint64(n)
	case *event.Cycle:
		d.Counter = n
	}
	ev, err := event.NewEvent("US1", "L1", station, kind, v, 0, uint64(n), at, at, data)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.r.pub.Publish(p.t.Context(), ev); err != nil {
		p.t.Fatal(err)
	}
}

// publishAlarm publishes an agent's alarm on station, raised (active) or
// cleared, counted by the agent's clock as agents count them.
func publishAlarm(t *testing.T, r *rig, station string, active bool, text string) {
	t.Helper()
	now := time.Now()
	a := &event.Alarm{Counter: uint64(now.UnixMilli()), Active: active, Code: event.AlarmRefused, Text: text}
	if active {
		a.Cycle = 17
	}
	ev, err := event.NewEvent("US1", "L1", station, event.KindAlarm, "", 0, a.Counter, now, now, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.pub.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
}

func (p *publisher) state(station, state string, code int32, text, vinPresent string) {
	p.t.Helper()
	p.send(station, event.KindState, "", &event.State{State: state, FaultCode: code, FaultText: text, VinPresent: vinPresent}, time.Now())
}

func (p *publisher) cycle(station, v, result string) {
	p.t.Helper()
	now := time.Now()
	p.send(station, event.KindCycle, v, &event.Cycle{Result: result, Model: "KE", Variant: "long range", Colour: "blue", StartedAt: now.Add(-time.Second),
		Parts: []event.Part{{PartNumber: "PN-1", Serial: "SN-1", Lot: "LOT-1", Supplier: "SUP"}}, Joints: []event.Joint{},
		Tests: []event.Test{{Name: "gap", Value: new(9.0), Unit: "mm", Low: new(1.0), High: new(2.0), OK: new(result == "OK")}}}, now)
}

func testVIN(t *testing.T, serial int) string {
	t.Helper()
	v, err := vin.Make("7KL", "KE4LR", 2027, 'U', serial)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitLine polls /api/v1/line until ok accepts it.
func waitLine(t *testing.T, r *rig, what string, ok func(dashboard.LineView) bool) dashboard.LineView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v dashboard.LineView
		r.getJSON(t, "/api/v1/line", http.StatusOK, &v)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("the line never showed %s: %+v", what, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func station(v dashboard.LineView, id string) dashboard.StationView {
	for _, s := range v.Stations {
		if s.ID == id {
			return s
		}
	}
	return dashboard.StationView{}
}

func TestAPI(t *testing.T) {
	r := newRig(t, rigOptions{})
	p := &publisher{t: t, r: r, counter: map[string]uint32{}}
	car := testVIN(t, 42)

	t.Run("the line follows the record", func(t *testing.T) {
		p.state("C01", "running", 0, "", car)
		v := waitLine(t, r, "the car at C01", func(v dashboard.LineView) bool {
			c := station(v, "C01").Car
			return c != nil && c.VIN == car
		})
		if len(v.Stations) != len(r.cfg.Stations) || v.Stations[0].ID != "W01" || v.Stations[0].Name == "" || v.Stations[0].Zone != "body" {
			t.Errorf("stations = %+v, want the configured line", v.Stations)
		}
		if v.TaktMs != 60000 || v.Speed != 1 || v.Plant != "US1" || v.Line != "L1" {
			t.Errorf("line = %s %s takt %d ms speed %v", v.Plant, v.Line, v.TaktMs, v.Speed)
		}
		p.cycle("C01", car, "NOK")
		p.state("C01", "blocked", 0, "", car)
		waitLine(t, r, "the car done at C01 with its model", func(v dashboard.LineView) bool {
			c := station(v, "C01").Car
			return c != nil && c.Done && c.Model == "KE" && c.Colour == "blue" && c.Hold && station(v, "C01").State == "blocked"
		})
	})

	t.Run("an agent's alarm shows on its station", func(t *testing.T) {
		const text = "refused cycle 17: invalid VIN 7KLKW1NA0VU000017: check digit"
		publishAlarm(t, r, "C01", true, text)
		v := waitLine(t, r, "the alarm at C01", func(v dashboard.LineView) bool { return station(v, "C01").Alarm != nil })
		if a := station(v, "C01").Alarm; a.Code != event.AlarmRefused || a.Text != text || a.Cycle != 17 || a.Since.IsZero() {
			t.Errorf("alarm %+v, want the refused cycle", a)
		}
		publishAlarm(t, r, "C01", false, "")
		waitLine(t, r, "the alarm at C01 cleared", func(v dashboard.LineView) bool { return station(v, "C01").Alarm == nil })
	})

	t.Run("a car by its last 6 characters", func(t *testing.T) {
		var found struct{ Cars []dashboard.CarSummary }
		r.getJSON(t, "/api/v1/cars?q="+car[len(car)-6:], http.StatusOK, &found)
		if len(found.Cars) != 1 || found.Cars[0].VIN != car || found.Cars[0].LastStation != "C01" {
			t.Fatalf("search = %+v, want %s at C01", found, car)
		}
		var d dashboard.CarDetail
		r.getJSON(t, "/api/v1/cars/"+car, http.StatusOK, &d)
		if d.Status != "on_line" || d.Station != "C01" || !d.Done || len(d.Route) != 1 || d.Route[0].Result != "NOK" ||
			d.Route[0].TestsNOK != 1 || len(d.Route[0].Problems) != 1 || d.OpenHolds != len(d.Holds) || d.Trace != "/api/v1/cars/"+car+"/trace" {
			t.Errorf("car = %+v", d)
		}
		var tr dashboard.TraceDoc
		r.getJSON(t, d.Trace, http.StatusOK, &tr)
		if tr.VIN != car || len(tr.Visits) != 1 || len(tr.Visits[0].Parts) != 1 || tr.Visits[0].Parts[0].Serial != "SN-1" || len(tr.Holds) != len(d.Holds) {
			t.Errorf("trace = %+v", tr)
		}
	})

	t.Run("the shift's numbers", func(t *testing.T) {
		var s dashboard.ShiftView
		r.getJSON(t, "/api/v1/shift", http.StatusOK, &s)
		nok := 0
		for _, h := range s.Holds {
			if h.Kind == "nok" && h.VIN == car && h.Station == "C01" {
				nok++
			}
		}
		if nok != 1 || s.OpenHolds != int64(len(s.Holds)) || s.TargetJPH != 60 || s.Plan != 1440 ||
			len(s.Stations) != len(r.cfg.Stations)-1 || !s.From.Before(s.AsOf) {
			t.Errorf("shift = %+v", s)
		}
	})

	t.Run("errors are safe messages", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			status int
			msg    string
		}{
			{"/api/v1/cars/NOT-A-VIN", http.StatusBadRequest, `is not a VIN`},
			{"/api/v1/cars/" + testVIN(t, 999999), http.StatusNotFound, "no car with VIN"},
			{"/api/v1/cars?q=ab", http.StatusBadRequest, "q: give a VIN"},
			{"/api/v1/cars?q=%27%3BDROP", http.StatusBadRequest, "q: give a VIN"},
			{"/nope", http.StatusNotFound, "no such page"},
			{"/static/", http.StatusNotFound, ""},
		} {
			res, b := r.get(t, c.path)
			if res.StatusCode != c.status || !strings.Contains(string(b), c.msg) {
				t.Errorf("GET %s = %s %s, want %d with %q", c.path, res.Status, b, c.status, c.msg)
			}
		}
	})

	t.Run("the page and its headers", func(t *testing.T) {
		for _, c := range []struct {
			name, path, header, value, lang string
		}{
			{"default", "/", "", "", "en"},
			{"Accept-Language", "/", "Accept-Language", "ja-JP,ja;q=0.9,en;q=0.5", "ja"},
			{"the switch's cookie wins", "/", "Cookie", "keiline_lang=ja", "ja"},
			{"?lang wins", "/?lang=en", "Accept-Language", "ja", "en"},
		} {
			res, b := r.get(t, c.path, c.header, c.value)
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Language") != c.lang || !strings.Contains(string(b), `<html lang="`+c.lang+`">`) {
				t.Errorf("%s: %s, Content-Language %q, want %q", c.name, res.Status, res.Header.Get("Content-Language"), c.lang)
			}
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(string(b), "<script>") {
				t.Errorf("%s: CSP %q allows inline scripts, or the page has one", c.name, csp)
			}
			if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
				t.Errorf("%s: the page refers to another site", c.name)
			}
		}
		res, b := r.get(t, "/?lang=ja")
		if !strings.Contains(res.Header.Get("Set-Cookie"), "keiline_lang=ja") || !strings.Contains(string(b), "ライン") {
			t.Errorf("?lang=ja: Set-Cookie %q; page in Japanese: %v", res.Header.Get("Set-Cookie"), strings.Contains(string(b), "ライン"))
		}
		res, _ = r.get(t, "/static/app.js")
		if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
			t.Errorf("app.js: %s %s", res.Status, res.Header.Get("Content-Type"))
		}
	})

	t.Run("metrics", func(t *testing.T) {
		_, b := r.get(t, "/metrics")
		for _, m := range []string{"keiline_tracker_events_total", "keiline_tracker_lag_messages", "keiline_dashboard_stream_clients", "go_goroutines"} {
			if !strings.Contains(string(b), m) {
				t.Errorf("/metrics has no %s", m)
			}
		}
	})

	t.Run("the stream pushes changes and ends on shutdown", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, r.url("/api/v1/stream"), nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("stream content type %q", ct)
		}
		events := make(chan [2]string, 16)
		go func() {
			defer close(events)
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(nil, 1<<22)
			var name string
			for sc.Scan() {
				line := sc.Text()
				if n, ok := strings.CutPrefix(line, "event: "); ok {
					name = n
				}
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					events <- [2]string{name, d}
				}
			}
		}()
		next := func(want string, ok func(string) bool) {
			t.Helper()
			timeout := time.After(20 * time.Second)
			for {
				select {
				case e, open := <-events:
					if !open {
						t.Fatalf("stream ended waiting for %s", want)
					}
					if e[0] == want && ok(e[1]) {
						return
					}
				case <-timeout:
					t.Fatalf("no %s event", want)
				}
			}
		}
		next("line", func(string) bool { return true })
		next("shift", func(string) bool { return true })
		p.state("F02", "fault", 599, "injected: door jig jammed", "")
		next("line", func(d string) bool {
			var v dashboard.LineView
			return json.Unmarshal([]byte(d), &v) == nil && station(v, "F02").FaultCode == 599
		})

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := r.dash.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown with a stream open: %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("shutdown took %v with a stream open", d)
		}
		for range events { // the stream ends
		}
	})
}
