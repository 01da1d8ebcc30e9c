package orders

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// apiServer serves the orders API on a fresh database, writing as the
// writer role.
func apiServer(t *testing.T) (*httptest.Server, *schema.Store) {
	t.Helper()
	url := pgtest.NewDB(t)
	store, err := schema.OpenRole(t.Context(), url, schema.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	srv := httptest.NewServer(Handler(store, testProducts(), slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return srv, store
}

// call makes a request and decodes the JSON answer into out (when not nil).
func call(t *testing.T, method, url, contentType string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

func ids(rows []schema.OrderRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func TestOrdersAPI(t *testing.T) {
	srv, _ := apiServer(t)
	api := srv.URL + "/api/orders"
	csvFile := dayFile(t, "day.csv")

	var imported map[string]int
	if code := call(t, "POST", api, "text/csv; charset=utf-8", csvFile, &imported); code != http.StatusCreated || imported["imported"] != 4 {
		t.Fatalf("POST day.csv: %d %v", code, imported)
	}
	var rows []schema.OrderRow
	if code := call(t, "GET", api, "", nil, &rows); code != http.StatusOK {
		t.Fatalf("GET: %d", code)
	}
	if got, want := ids(rows), []string{"D-002", "D-001", "D-004", "D-003"}; !reflect.DeepEqual(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}
	if len(rows) == 4 && (rows[0].Source != SourceAPI || rows[0].Status != schema.OrderOpen || !reflect.DeepEqual(rows[0].Options, []string{"4WD", "SUNROOF"})) {
		t.Errorf("D-002 listed as %+v", rows[0])
	}

	t.Run("an existing order id is a conflict", func(t *testing.T) {
		body := []byte(`[{"order_id": "N-1", "model": "KV", "variant": "2WD", "colour": "white"},
			{"order_id": "D-003", "model": "KV", "variant": "2WD", "colour": "white"}]`)
		var e apiError
		if code := call(t, "POST", api, "application/json", body, &e); code != http.StatusConflict || !strings.Contains(e.Error, "D-003") {
			t.Errorf("POST with an existing id: %d %+v", code, e)
		}
	})

	t.Run("a bad file imports nothing and names every problem", func(t *testing.T) {
		body := []byte("[\n {\"order_id\": \"N-1\", \"model\": \"KV\", \"variant\": \"2WD\", \"colour\": \"white\"},\n" +
			" {\"order_id\": \"N-2\", \"model\": \"KV\", \"variant\": \"5WD\", \"colour\": \"white\"},\n" +
			" {\"order_id\": \"N-3\", \"model\": \"KV\", \"variant\": \"2WD\", \"colour\": \"white\", \"priority\": \"urgent\"}\n]")
		var e apiError
		if code := call(t, "POST", api, "application/json", body, &e); code != http.StatusBadRequest {
			t.Fatalf("POST bad JSON: %d %+v", code, e)
		}
		want := apiError{Error: "2 problem(s) in the orders; no order imported", Problems: []Problem{
			{3, "N-2", `variant "5WD" of model KV; allowed: 2WD, 4WD, Turbo`},
			{4, "N-3", `priority "urgent" is not an integer`},
		}}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("answer %+v\nwant %+v", e, want)
		}
	})

	t.Run("uploads the API does not take", func(t *testing.T) {
		var e apiError
		if code := call(t, "POST", api, "text/plain", csvFile, &e); code != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain: %d %+v", code, e)
		}
		big := append([]byte("order_id,model,variant,colour\n"), bytes.Repeat([]byte("X,KV,2WD,white\n"), BodyMax/15+1)...)
		if code := call(t, "POST", api, "text/csv", big, &e); code != http.StatusRequestEntityTooLarge {
			t.Errorf("upload over %d bytes: %d %+v", BodyMax, code, e)
		}
	})

	if code := call(t, "GET", api, "", nil, &rows); code != http.StatusOK || len(rows) != 4 {
		t.Fatalf("after the rejected uploads: %d, %v", code, ids(rows))
	}

	t.Run("cancel", func(t *testing.T) {
		var ok map[string]string
		if code := call(t, "DELETE", api+"/D-001", "", nil, &ok); code != http.StatusOK || ok["cancelled"] != "D-001" {
			t.Errorf("DELETE D-001: %d %v", code, ok)
		}
		var e apiError
		if code := call(t, "DELETE", api+"/D-001", "", nil, &e); code != http.StatusConflict {
			t.Errorf("DELETE D-001 again: %d %+v", code, e)
		}
		if code := call(t, "DELETE", api+"/nope", "", nil, &e); code != http.StatusNotFound || e.Error != "no order nope" {
			t.Errorf("DELETE of an unknown order: %d %+v", code, e)
		}
		var open []schema.OrderRow
		if code := call(t, "GET", api+"?status=open", "", nil, &open); code != http.StatusOK || !reflect.DeepEqual(ids(open), []string{"D-002", "D-004", "D-003"}) {
			t.Errorf("open orders: %d %v", code, ids(open))
		}
		if code := call(t, "GET", api+"?status=done", "", nil, &e); code != http.StatusBadRequest {
			t.Errorf("status=done: %d %+v", code, e)
		}
		if code := call(t, "GET", api+"?limit=1", "", nil, &open); code != http.StatusOK || len(open) != 1 {
			t.Errorf("limit=1: %d %v", code, ids(open))
		}
	})
}
