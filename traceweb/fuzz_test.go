package traceweb_test

import (
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/schema/tracetest"
	"github.com/keiline/keiline/traceweb"
)

// fuzzRoutes are the trace pages and API; %s is the fuzzed VIN, or the
// fuzzed query follows the route.
var fuzzRoutes = []string{"/vin/%s", "/vin/%s/certificate", "/api/vin/%s", "/", "/vin", "/part", "/lot", "/tool", "/station",
	"/api/part", "/api/lot", "/api/tool", "/api/station"}

// FuzzHandler asks the trace pages and API anything, over the fixture in
// a real database, as the auditor: never a 500; an API answer is JSON (an
// error with its message) or, asked for, CSV that parses; a page is HTML
// or a redirect.
func FuzzHandler(f *testing.F) {
	dbURL := pgtest.NewDB(f)
	owner, err := schema.Open(f.Context(), dbURL)
	if err != nil {
		f.Fatal(err)
	}
	tracetest.Record(f, owner)
	owner.Close()
	store, err := schema.OpenAs(f.Context(), dbURL, schema.RoleAuditor)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(store.Close)
	now := tracetest.Start.Add(24 * time.Hour)
	h := traceweb.Handler(store, traceweb.Config{Plant: "US1 L1", Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	vin := tracetest.VINs[1]
	from, to := tracetest.Start.Format(time.RFC3339), now.Format(time.RFC3339)
	for i := range fuzzRoutes {
		f.Add(uint8(i), vin, "")
	}
	f.Add(uint8(2), vin, "format=csv")
	f.Add(uint8(2), vin, "format=xml")
	f.Add(uint8(4), "", "vin="+vin)
	f.Add(uint8(10), "", "lot=TYR-LOT-00201&format=csv")
	f.Add(uint8(9), "", "serial=x&serial=&serial=%ff")
	f.Add(uint8(11), "", "tool=NR-07&from="+from+"&to="+to+"&result=NOK&format=csv")
	f.Add(uint8(12), "", "station=C04&from="+from+"&to="+to+"&kind=tests&limit=2")
	f.Add(uint8(12), "", "station=C04&from="+to+"&to="+from)
	f.Add(uint8(2), "JH4KA7650MC0000\xff0", "")
	f.Fuzz(func(t *testing.T, route uint8, vin, query string) {
		p := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if strings.Contains(p, "%s") {
			req.URL.Path = strings.Replace(p, "%s", vin, 1)
			req.URL.RawPath = strings.Replace(p, "%s", url.PathEscape(vin), 1)
		} else {
			req.URL.Path = p
		}
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		code, ct, body := w.Code, w.Header().Get("Content-Type"), w.Body.Bytes()
		if code >= 500 {
			t.Fatalf("GET %s?%s: %d: %s", req.URL.Path, query, code, body)
		}
		if code == http.StatusNotFound && ct != "application/json" && !strings.HasPrefix(ct, "text/html") {
			return // no such route (a VIN with a slash): the mux's own answer
		}
		if code >= 300 && code < 400 {
			if w.Header().Get("Location") == "" {
				t.Fatalf("GET %s?%s: redirect %d to nowhere", req.URL.Path, query, code)
			}
			return
		}
		switch {
		case strings.HasPrefix(req.URL.Path, "/api/") && ct == "text/csv; charset=utf-8":
			if code != http.StatusOK {
				t.Fatalf("CSV with status %d", code)
			}
			if _, err := csv.NewReader(w.Body).ReadAll(); err != nil {
				t.Fatalf("GET %s?%s: CSV that does not parse: %v", req.URL.Path, query, err)
			}
		case strings.HasPrefix(req.URL.Path, "/api/"):
			if ct != "application/json" {
				t.Fatalf("GET %s?%s: %d with Content-Type %q", req.URL.Path, query, code, ct)
			}
			var v map[string]any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("GET %s?%s: %d: not a JSON object: %v: %s", req.URL.Path, query, code, err, body)
			}
			if msg, _ := v["error"].(string); code >= 400 && msg == "" {
				t.Fatalf("GET %s?%s: %d without an error message: %s", req.URL.Path, query, code, body)
			}
		default:
			if ct != "text/html; charset=utf-8" {
				t.Fatalf("GET %s?%s: %d page with Content-Type %q", req.URL.Path, query, code, ct)
			}
		}
	})
}
