package traceweb_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/schema/tracetest"
	"github.com/keiline/keiline/traceweb"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// server serves the trace pages over the fixture, as the auditor, mounted
// under /trace/ as the dashboard mounts them.
func server(t *testing.T) (*httptest.Server, map[int]map[string]string) {
	t.Helper()
	return serverOf(t, false)
}

// serverOf serves the fixture, with its tightenings (RecordTightenings)
// when tightenings is set.
func serverOf(t *testing.T, tightenings bool) (*httptest.Server, map[int]map[string]string) {
	t.Helper()
	url := pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	ids := tracetest.Record(t, owner)
	if tightenings {
		tracetest.RecordTightenings(t, owner)
	}
	owner.Close()
	store, err := schema.OpenAs(t.Context(), url, schema.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	now := tracetest.Start.Add(24 * time.Hour)
	h := traceweb.Handler(store, traceweb.Config{Plant: "US1 L1", Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	mux := http.NewServeMux()
	mux.Handle("/trace/", http.StripPrefix("/trace", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, ids
}

// fixtureFrom and fixtureTo are days (UTC) around the fixture's history:
// the day of its first cycle and two days later.
var (
	fixtureFrom = tracetest.Start.UTC().Format(time.DateOnly)
	fixtureTo   = tracetest.Start.UTC().AddDate(0, 0, 2).Format(time.DateOnly)
)

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestAPI(t *testing.T) {
	srv, ids := server(t)
	vin2 := tracetest.VINs[1]

	t.Run("birth record as JSON", func(t *testing.T) {
		resp, body := get(t, srv, "/trace/api/vin/"+vin2)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		var b schema.BirthRecord
		if err := json.Unmarshal([]byte(body), &b); err != nil {
			t.Fatal(err)
		}
		if b.VIN != vin2 || len(b.Visits) != 5 || len(b.Defects) != 1 || b.Defects[0].ReworkEventID != ids[2]["R01"] || !b.Released || b.Where != schema.WhereShipped {
			t.Errorf("birth record %+v", b)
		}
	})
	t.Run("lot as JSON and CSV", func(t *testing.T) {
		_, body := get(t, srv, "/trace/api/lot?lot=TYR-LOT-00201")
		var a schema.PartAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Cars) != 2 || a.Cars[0].Where != schema.WhereShipped || a.Cars[1].Where != schema.WhereOnHold {
			t.Errorf("lot cars %+v", a.Cars)
		}
		resp, body := get(t, srv, "/trace/api/lot?lot=TYR-LOT-00201&format=csv")
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
			t.Fatalf("csv %v %s", err, resp.Header.Get("Content-Type"))
		}
		if len(rows) != 3 || rows[0][0] != "vin" || rows[2][8] != schema.WhereOnHold {
			t.Errorf("csv rows %q", rows)
		}
	})
	t.Run("every NOK joint of a station last day", func(t *testing.T) {
		_, body := get(t, srv, "/trace/api/station?station=C04&rows=joints&name=lug_fl_2&result=nok&last=1d")
		var a schema.WindowAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		if len(a.Joints) != 2 || a.Joints[0].EventID != ids[2]["C04"] || a.Joints[1].EventID != ids[3]["C04"] {
			t.Errorf("joints %+v", a.Joints)
		}
	})
	for _, tt := range []struct {
		name, path string
		code       int
		msg        string
	}{
		{"unknown VIN", "/trace/api/vin/" + tracetest.Unknown, 404, "not found"},
		{"malformed VIN", "/trace/api/vin/NOT-A-VIN", 400, "bad request"},
		{"no window", "/trace/api/tool?tool=C04-NR1", 400, "give a window"},
		{"window backwards", "/trace/api/tool?tool=C04-NR1&from=" + fixtureTo + "&to=" + fixtureFrom, 400, "bad trace question"},
		{"bad result", "/trace/api/station?station=C04&last=1d&result=maybe", 400, "result"},
		{"bad format", "/trace/api/lot?lot=X&format=xml", 400, "format"},
		{"no lot", "/trace/api/lot", 400, "give a lot"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv, tt.path)
			if resp.StatusCode != tt.code || !strings.Contains(body, tt.msg) {
				t.Errorf("status %d body %s, want %d with %q", resp.StatusCode, body, tt.code, tt.msg)
			}
		})
	}
}

// externalRef finds anything a page would load from elsewhere.
var externalRef = regexp.MustCompile(`(?i)(<script|<link|<img|<iframe|src=|@import|url\()`)

func TestBirthCertificatePrintsCleanly(t *testing.T) {
	srv, ids := server(t)
	resp, body := get(t, srv, "/trace/vin/"+tracetest.VINs[1]+"/certificate")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{
		"Birth certificate", tracetest.VINs[1], "US1 L1",
		"@media print", "@page", "thead { display: table-header-group; }", // prints with repeated headers, no navigation
		"released at Q05", ids[2]["Q05"], // the quality gate's release and its event
		"BIW-KW-000002", "TYR-LOT-00201", "lug_fl_2", "91.25", "107.80", "R01-T1", // parts, the defect and its rework
		ids[2]["C04"], ids[2]["R01"], "Record fingerprint",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("certificate lacks %q", want)
		}
	}
	styleAllowed(t, resp, body)
	if m := externalRef.FindString(body); m != "" {
		t.Errorf("certificate loads something from elsewhere: %q", m)
	}
	// The same record prints the same fingerprint.
	fp := regexp.MustCompile(`mono fp">([0-9a-f]{64})<`)
	_, again := get(t, srv, "/trace/vin/"+tracetest.VINs[1]+"/certificate")
	a, b := fp.FindStringSubmatch(body), fp.FindStringSubmatch(again)
	if a == nil || b == nil || a[1] != b[1] {
		t.Errorf("fingerprints %v %v", a, b)
	}
}

func TestPages(t *testing.T) {
	srv, _ := server(t)
	for _, tt := range []struct {
		path string
		code int
		want []string
	}{
		{"/trace/", 200, []string{"Which cars got parts of this lot?", `action="/trace/lot"`}},
		{"/trace/vin/" + tracetest.VINs[2], 200, []string{"on hold", "blocked</span>", "not reworked", "/trace/vin/" + tracetest.VINs[2] + "/certificate"}},
		{"/trace/lot?lot=BIW-LOT-00100", 200, []string{"3 parts installed", "3 cars and where they are now", "/trace/api/lot?lot=BIW-LOT-00100"}},
		{"/trace/part?serial=BIW-KW-000003", 200, []string{tracetest.VINs[2], "on hold"}},
		{"/trace/tool?tool=C04-NR1&from=" + fixtureFrom + "&to=" + fixtureTo + "&result=NOK", 200, []string{"2 joints", "91.25"}},
		{"/trace/station?station=C04&from=" + fixtureFrom + "&to=" + fixtureTo, 200, []string{"3 cycles"}},
		{"/trace/lot?lot=%3Cscript%3Ealert(1)%3C/script%3E", 200, []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "0 parts installed"}},
		{"/trace/vin/" + tracetest.Unknown, 404, []string{"not found"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv, tt.path)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if strings.Contains(body, "<script>") {
				t.Error("page carries a script")
			}
			styleAllowed(t, resp, body)
		})
	}
	t.Run("search form finds a VIN", func(t *testing.T) {
		resp, body := get(t, srv, "/trace/vin?vin=+"+strings.ToLower(tracetest.VINs[0]))
		if resp.StatusCode != 200 || !strings.Contains(body, "VIN <span class=\"mono\">"+tracetest.VINs[0]) {
			t.Errorf("status %d: %.200s", resp.StatusCode, body)
		}
	})
}

// styleAllowed checks the page's content security policy allows its inline
// styles by their hash, and no other inline style or script.
func styleAllowed(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q allows inline code or scripts", csp)
	}
	blocks := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(body, -1)
	if len(blocks) == 0 {
		t.Error("page has no style")
	}
	for _, b := range blocks {
		sum := sha256.Sum256([]byte(b[1]))
		if src := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, src) {
			t.Errorf("CSP %q does not allow the page's style %s: the browser would drop it", csp, src)
		}
	}
}

func TestTighteningPages(t *testing.T) {
	srv, _ := serverOf(t, true)
	for _, tt := range []struct {
		path string
		code int
		want []string
	}{
		{"/trace/", 200, []string{`action="/trace/tightenings"`}},
		{"/trace/vin/" + tracetest.VINs[0], 200, []string{"<h2>Tightenings</h2>", tracetest.ToolSerial, "lug_fl_4", "M12 wheel nut"}},
		{"/trace/vin/" + tracetest.VINs[2], 200, []string{"made while the tool was disabled"}},
		{"/trace/vin/" + tracetest.VINs[1] + "/certificate", 200, []string{"<h2>Tightenings</h2>", "91.25 [95.00 … 120.00]"}},
		{"/trace/tightenings?tool=" + tracetest.ToolSerial + "&last=1d", 200, []string{"7 tightenings", "/trace/api/tightenings?tool="}},
		{"/trace/tightenings?station=C04&pset=2&last=1d&result=NOK", 200, []string{"1 tightenings", "91.25"}},
		{"/trace/api/tightenings?last=1d", 400, []string{"give tool="}},
		{"/trace/api/tightenings?station=C04&pset=x&last=1d", 400, []string{"pset"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv, tt.path)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
	_, body := get(t, srv, "/trace/api/tightenings?controller=C04-NR1&last=1d&result=nok")
	var a schema.WindowAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Tightenings) != 1 || a.Tightenings[0].VIN != tracetest.VINs[1] || a.Tightenings[0].Result != "NOK" || len(a.Cars) != 1 {
		t.Errorf("NOK tightenings of the controller: %+v", a)
	}
	_, body = get(t, srv, "/trace/api/tightenings?controller=C04-NR1&last=1d&format=csv")
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 8 || rows[0][6] != "tightening_id" || rows[1][6] != "101" {
		t.Errorf("csv %v: %q", err, rows)
	}
}
