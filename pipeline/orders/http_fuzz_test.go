package orders

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
)

// FuzzHandler drives the orders API with any method, Content-Type, query
// and body over a real database: every answer is JSON, never a 500; an
// import is answered 201 with exactly the orders the parser accepts, or
// refused with the problems that name their line; a refused list names
// the bad parameter.
func FuzzHandler(f *testing.F) {
	store, err := schema.OpenRole(f.Context(), pgtest.NewDB(f), schema.RoleWriter)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(store.Close)
	h := Handler(store, testProducts(), slog.New(slog.DiscardHandler))
	f.Add(uint8(0), "text/csv", "", []byte("order_id,model,variant,colour\nA1,KV,2WD,white\n"))
	f.Add(uint8(0), "application/json", "", []byte(`[{"order_id":"J1","model":"KV","variant":"2WD","colour":"white"}]`))
	f.Add(uint8(0), "text/csv; charset=utf-8", "", []byte("order_id,model,variant,colour\nA1,KX,2WD,white\nA2,KV,9WD,\n"))
	f.Add(uint8(0), "text/plain", "", []byte("x"))
	f.Add(uint8(0), "application/json", "", []byte(`{"order_id":1}`))
	f.Add(uint8(1), "", "status=open&limit=3", []byte(nil))
	f.Add(uint8(1), "", "status=shredded", []byte(nil))
	f.Add(uint8(1), "", "limit=-1", []byte(nil))
	f.Add(uint8(2), "", "A1", []byte(nil))
	f.Add(uint8(2), "", "%2F..%2Fx", []byte(nil))
	f.Fuzz(func(t *testing.T, op uint8, contentType, query string, body []byte) {
		var req *http.Request
		switch op % 3 {
		case 0:
			req = httptest.NewRequest(http.MethodPost, "/api/orders", bytes.NewReader(body))
			req.Header.Set("Content-Type", contentType)
		case 1:
			req = httptest.NewRequest(http.MethodGet, "/api/orders", nil)
			req.URL.RawQuery = query
		default:
			req = httptest.NewRequest(http.MethodDelete, "/api/orders/x", nil)
			req.URL.Path, req.URL.RawPath = "/api/orders/"+query, "/api/orders/"+url.PathEscape(query)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		code := w.Code
		if op%3 == 2 && (code == http.StatusNotFound || code == http.StatusTemporaryRedirect || code == http.StatusMovedPermanently) && w.Header().Get("Content-Type") != "application/json" {
			return // no such route, or a path the mux cleans: the mux's own answer
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("answer %d with Content-Type %q: %s", code, ct, w.Body)
		}
		if code >= 500 {
			t.Fatalf("answer %d: %s", code, w.Body)
		}
		var ans struct {
			Error    string    `json:"error"`
			Problems []Problem `json:"problems"`
			Imported int       `json:"imported"`
		}
		if op%3 != 1 || code != http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
				t.Fatalf("answer %d is not JSON: %v: %s", code, err, w.Body)
			}
		}
		if code >= 400 && ans.Error == "" {
			t.Fatalf("answer %d without an error: %s", code, w.Body)
		}
		switch op % 3 {
		case 0:
			parse := ParseJSON
			if strings.HasPrefix(contentType, "text/csv") {
				parse = ParseCSV
			}
			got, perr := parse("request", bytes.NewReader(body), testProducts())
			var pe *ParseError
			switch code {
			case http.StatusCreated:
				if perr != nil || ans.Imported != len(got) {
					t.Fatalf("imported %d, the parser gives %d orders (%v)", ans.Imported, len(got), perr)
				}
			case http.StatusBadRequest:
				if perr == nil {
					t.Fatalf("refused what the parser accepts: %s", w.Body)
				}
				if errors.As(perr, &pe) && len(ans.Problems) == 0 {
					t.Fatalf("refused without the problems: %s", w.Body)
				}
				for _, p := range ans.Problems {
					if p.Line < 0 || p.Message == "" {
						t.Fatalf("a problem that names no line or says nothing: %+v", p)
					}
				}
			case http.StatusConflict, http.StatusUnsupportedMediaType, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("POST answered %d: %s", code, w.Body)
			}
		case 1:
			switch code {
			case http.StatusOK:
				var rows []schema.OrderRow
				if err := json.Unmarshal(w.Body.Bytes(), &rows); err != nil || rows == nil {
					t.Fatalf("list is not a JSON array (%v): %s", err, w.Body)
				}
			case http.StatusBadRequest:
				if !strings.HasPrefix(ans.Error, "status ") && !strings.HasPrefix(ans.Error, "limit ") {
					t.Fatalf("a refused list that names no parameter: %s", ans.Error)
				}
			default:
				t.Fatalf("GET answered %d: %s", code, w.Body)
			}
		default:
			if code != http.StatusOK && code != http.StatusNotFound && code != http.StatusConflict {
				t.Fatalf("DELETE answered %d: %s", code, w.Body)
			}
		}
	})
}
