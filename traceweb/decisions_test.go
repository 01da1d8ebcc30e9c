package traceweb_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
	"github.com/keiline/keiline/schema/tracetest"
	"github.com/keiline/keiline/traceweb"
)

// TestPagesShowDecisions: a car's page, its birth certificate and its CSV
// show people's decisions about it with who, role, why and the
// signature's meaning.
func TestPagesShowDecisions(t *testing.T) {
	url := pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	tracetest.Record(t, owner)
	ids := tracetest.RecordDecisions(t, owner)
	owner.Close()
	store, err := schema.OpenAs(t.Context(), url, schema.RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	now := time.Now()
	h := traceweb.Handler(store, traceweb.Config{Plant: "US1 L1", Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	mux := http.NewServeMux()
	mux.Handle("/trace/", http.StripPrefix("/trace", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	car := tracetest.VINs[0]
	for _, path := range []string{"/trace/vin/" + car, "/trace/vin/" + car + "/certificate", "/trace/api/vin/" + car + "?format=csv"} {
		resp, body := get(t, srv, path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		for _, w := range []string{ids.Defect, ids.Repair, ids.Release, "sato (operator)", "kato (operator)", "ito (quality_inspector)",
			"PNT-02 at hood (major)", "sanded and polished", "released: conforms"} {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", path, w)
			}
		}
		if strings.Contains(body, ids.Hold) {
			t.Errorf("%s shows another car's decision %s", path, ids.Hold)
		}
	}
}
