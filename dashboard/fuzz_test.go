package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keiline/keiline/dashboard"
	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/schema/tracetest"
)

// dashRoutes are the dashboard's pages and API (the event stream, which
// never ends, aside); %s is the fuzzed VIN, or the fuzzed query follows.
var dashRoutes = []string{"/", "/api/v1/line", "/api/v1/shift", "/api/v1/cars", "/api/v1/cars/%s", "/api/v1/cars/%s/trace",
	"/spc/", "/spc/chart", "/spc/chart.svg", "/spc/capability", "/api/v1/spc", "/report/shift", "/report/shift.pdf",
	"POST /spc/freeze", "/healthz", "/static/%s"}

// FuzzHandler asks the dashboard anything, over TCP and the fixture in a
// real database: never a 500 and never a hang; an API answer is JSON,
// with the error's message when it refuses.
func FuzzHandler(f *testing.F) {
	dbURL := pgtest.NewDB(f)
	owner, err := schema.Open(f.Context(), dbURL)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(owner.Close)
	tracetest.Record(f, owner)
	view, err := schema.OpenAs(f.Context(), dbURL, schema.RoleAuditor)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(view.Close)
	webStore, err := schema.OpenAs(f.Context(), dbURL, schema.RoleWeb)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(webStore.Close)
	now := tracetest.Start.Add(time.Hour)
	cfg := dashboard.Config{Addr: "127.0.0.1:0", Store: view, SPCWriter: webStore, Plant: "US1", Line: "L1", Now: func() time.Time { return now },
		Logger: slog.New(slog.DiscardHandler), Gatherer: prometheus.NewRegistry()}
	for _, st := range tracetest.Line.Route.Stations {
		cfg.Stations = append(cfg.Stations, dashboard.Station{ID: st.ID, Name: "station " + st.ID, Optional: st.Optional})
	}
	dash, err := dashboard.Start(f.Context(), cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(f.Context()), 10*time.Second)
		defer cancel()
		_ = dash.Shutdown(ctx)
	})
	base := strings.TrimSuffix(dash.URL(), "/")
	vin := tracetest.VINs[1]
	from, to := tracetest.Start.Format(time.RFC3339), now.Format(time.RFC3339)
	for i := range dashRoutes {
		f.Add(uint8(i), vin, "")
	}
	f.Add(uint8(3), "", "q=000002")
	f.Add(uint8(2), "", "from="+from+"&to="+to)
	f.Add(uint8(2), "", "from="+to+"&to="+from)
	f.Add(uint8(7), "", "kind=torque&station=C04&name=wheel-nut-FL&from="+from+"&to="+to)
	f.Add(uint8(8), "", "kind=torque&station=C04&name=%ff")
	f.Add(uint8(10), "", "kind=angle&station=C04&name=x&limit=-1")
	f.Add(uint8(12), "", "from="+from+"&lang=ja")
	f.Add(uint8(13), "", "kind=torque&station=C04&name=wheel-nut-FL&reason=first+limits")
	f.Add(uint8(0), "", "lang=%00")
	f.Add(uint8(4), "JH4KA7650MC0000\xff0", "")
	f.Add(uint8(15), "app.js", "")
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	f.Fuzz(func(t *testing.T, route uint8, vin, query string) {
		p := dashRoutes[int(route)%len(dashRoutes)]
		method := http.MethodGet
		if m, rest, ok := strings.Cut(p, " "); ok {
			method, p = m, rest
		}
		u := base + strings.Replace(p, "%s", url.PathEscape(vin), 1)
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(query)
		} else if query != "" {
			u += "?" + query
		}
		req, err := http.NewRequestWithContext(t.Context(), method, u, body)
		if err != nil {
			return // not a URL a client can send
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		code, ct := resp.StatusCode, resp.Header.Get("Content-Type")
		if code >= 500 {
			t.Fatalf("%s %s: %d: %s", method, u, code, b)
		}
		if code >= 300 && code < 400 {
			if resp.Header.Get("Location") == "" {
				t.Fatalf("%s %s: redirect %d to nowhere", method, u, code)
			}
			return // a path the mux cleans
		}
		if !strings.HasPrefix(p, "/api/") || code == http.StatusNotFound && !strings.HasPrefix(ct, "application/json") {
			return
		}
		if code == http.StatusBadRequest && strings.HasPrefix(string(b), "400 Bad Request") {
			return // a request line net/http refuses (a blank in the query): the server's own answer
		}
		if !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s %s: %d with Content-Type %q", method, u, code, ct)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: %d: not JSON: %v: %s", method, u, code, err, b)
		}
		if m, _ := v.(map[string]any); code >= 400 && (m == nil || m["error"] == "") {
			t.Fatalf("%s %s: %d without an error message: %s", method, u, code, b)
		}
	})
}
