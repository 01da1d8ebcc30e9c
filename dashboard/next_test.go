package dashboard_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
)

// TestShiftShowsNextCars: on a line that builds orders, the shift document
// lists the next cars of the build sequence after the last one framed, with
// which the framing PLC has already been sent, and how many cars and
// orders wait; a line without orders has none.
func TestShiftShowsNextCars(t *testing.T) {
	r := newRig(t, rigOptions{})
	shift := func() map[string]any {
		t.Helper()
		res, body := r.get(t, "/api/v1/shift")
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/shift: %s %v", res.Status, err)
		}
		return doc
	}
	if next, ok := shift()["next"]; ok {
		t.Fatalf("a line without orders shows next cars: %v", next)
	}

	ctx := t.Context()
	var orders []schema.Order
	var cars []schema.SequencedCar
	for i, id := range []string{"A", "B", "C", "D"} {
		orders = append(orders, schema.Order{ID: id, Model: "KE", Variant: "long range", Colour: "blue"})
		if i < 3 {
			cars = append(cars, schema.SequencedCar{Seq: int64(i + 1), OrderID: id, VIN: testVIN(t, i+1), Model: "KE", Variant: "long range", Colour: "blue"})
		}
	}
	if _, err := r.store.ImportOrders(ctx, "t.csv", orders); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.SavePlan(ctx, schema.PlanSummary{FirstSeq: 1, Cars: 3}, cars); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{1, 2} {
		if err := r.store.MarkDownloaded(ctx, seq, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// Car 1 is framed: W01's cycle reaches the record.
	p := &publisher{t: t, r: r, counter: map[string]uint32{}}
	p.cycle("W01", cars[0].VIN, "OK")

	for {
		next, _ := shift()["next"].(map[string]any)
		if next != nil && next["last_framed"] == 1.0 {
			list := next["cars"].([]any)
			if next["sequenced"] != 2.0 || next["open_orders"] != 1.0 || len(list) != 2 {
				t.Fatalf("next %v, want cars 2 and 3 sequenced and one order waiting", next)
			}
			c2, c3 := list[0].(map[string]any), list[1].(map[string]any)
			if c2["seq"] != 2.0 || c2["vin"] != cars[1].VIN || c2["downloaded_at"] == nil || c3["seq"] != 3.0 || c3["downloaded_at"] != nil {
				t.Errorf("next cars %v, want seq 2 (in the PLC) and 3 (not yet)", list)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
