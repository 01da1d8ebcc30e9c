package dashboard_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keiline/keiline/line"
)

// TestOrdersAPIMounted: the dashboard serves the planner's orders API when
// given one: a CSV import, the list, and a refusal of a body type a
// cross-site form could send.
func TestOrdersAPIMounted(t *testing.T) {
	products := &line.Products{WMI: "7KL", ModelYear: 2027, PlantCode: "U", Colours: []string{"white", "red"},
		Models: []line.Model{{Code: "KV", Body: "2", Variants: []line.Variant{{Name: "2WD", Code: "2W"}, {Name: "4WD", Code: "4W", Options: []string{"4WD"}}}}}}
	r := newRig(t, rigOptions{orders: products})
	post := func(ctype, body string) (*http.Response, string) {
		res, err := http.Post(r.url("/api/orders"), ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := post("text/csv", "order_id,model,variant,colour\nA-1,KV,4WD,red\nA-2,KV,2WD,white\n")
	if res.StatusCode != http.StatusCreated || !strings.Contains(body, `"imported":2`) {
		t.Fatalf("POST CSV: %s %s", res.Status, body)
	}
	res, body = post("text/plain", "order_id,model,variant,colour\nA-3,KV,4WD,red\n")
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("POST text/plain: %s %s, want 415", res.Status, body)
	}
	res, b := r.get(t, "/api/orders?status=open")
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/orders: %s %v %s", res.Status, err, b)
	}
	if len(list) != 2 || list[0]["order_id"] != "A-1" && list[1]["order_id"] != "A-1" {
		t.Errorf("orders %v, want A-1 and A-2", list)
	}
}
