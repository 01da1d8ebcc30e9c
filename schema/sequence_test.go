package schema_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keiline/keiline/pipeline/event"
	"github.com/keiline/keiline/schema"
)

// TestSavePlanAndSequence: a plan numbers its cars, marks their orders
// sequenced and refuses orders no longer open, saving nothing then.
func TestSavePlanAndSequence(t *testing.T) {
	ctx := t.Context()
	s := openWriter(t)
	if _, err := s.ImportOrders(ctx, "t.csv", testOrders()); err != nil {
		t.Fatal(err)
	}
	open, err := s.OpenOrders(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Earliest due first, higher priority first, no due date last.
	var ids []string
	for _, o := range open {
		ids = append(ids, o.ID)
	}
	if !slices.Equal(ids, []string{"A-4", "A-2", "A-1", "A-3"}) {
		t.Errorf("open orders in order %v, want A-4 A-2 A-1 A-3", ids)
	}
	first, err := s.NextSeq(ctx)
	if err != nil || first != 1 {
		t.Fatalf("next seq %d, %v; want 1", first, err)
	}
	cars := []schema.SequencedCar{
		{Seq: 1, OrderID: "A-4", VIN: "VIN00000000000001", Model: "KE", Variant: "Std", Colour: "mint", Options: []string{"EV"}},
		{Seq: 2, OrderID: "A-1", VIN: "VIN00000000000002", Model: "KV", Variant: "4WD", Colour: "red"},
	}
	id, err := s.SavePlan(ctx, schema.PlanSummary{FirstSeq: 1, Cars: 2, ColourChanges: 1}, cars)
	if err != nil {
		t.Fatal(err)
	}
	// A-1 is sequenced now: a plan with it again saves nothing.
	again := []schema.SequencedCar{
		{Seq: 3, OrderID: "A-2", VIN: "VIN00000000000003", Model: "KE", Variant: "Std", Colour: "mint"},
		{Seq: 4, OrderID: "A-1", VIN: "VIN00000000000004", Model: "KV", Variant: "4WD", Colour: "red"},
	}
	if _, err := s.SavePlan(ctx, schema.PlanSummary{FirstSeq: 3, Cars: 2}, again); !errors.Is(err, schema.ErrOrderNotOpen) {
		t.Fatalf("plan with a sequenced order: %v, want ErrOrderNotOpen", err)
	}
	got, err := s.Sequence(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].OrderID != "A-4" || got[1].OrderID != "A-1" || got[0].PlanID != id {
		t.Fatalf("sequence %+v, want A-4 then A-1 of plan %d", got, id)
	}
	if open, _ := s.OpenOrders(ctx, 0); len(open) != 2 {
		t.Errorf("%d open orders after the plan, want 2 (A-2 stayed open after the refused plan)", len(open))
	}
	if err := s.MarkDownloaded(ctx, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Sequence(ctx, 0, 1); got[0].DownloadedAt == nil {
		t.Error("seq 1 not marked downloaded")
	}
	if next, _ := s.NextSeq(ctx); next != 3 {
		t.Errorf("next seq %d, want 3", next)
	}
}

// TestAddBroadcastsNumbersPerSupplierOnce: each supplier's broadcasts are
// numbered 1, 2, … in order, and a repeated car is not broadcast again.
func TestAddBroadcastsNumbersPerSupplierOnce(t *testing.T) {
	ctx := t.Context()
	s := openWriter(t)
	at := time.Now().UTC().Truncate(time.Hour)
	b := func(sup, vin string) event.Broadcast {
		return event.Broadcast{Supplier: sup, VIN: vin, PartNumber: "P", PartVariant: "V", Install: "F01", EventID: "e-" + vin, PassedAt: at}
	}
	add := func(bs ...event.Broadcast) int {
		var n int
		if err := s.WithTx(ctx, func(tx *schema.Tx) error {
			var err error
			n, err = tx.AddBroadcasts(context.WithoutCancel(ctx), bs)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := add(b("seats", "V1"), b("battery", "V1"), b("seats", "V2")); n != 3 {
		t.Fatalf("added %d, want 3", n)
	}
	if n := add(b("seats", "V2"), b("seats", "V3")); n != 1 {
		t.Fatalf("added %d with a repeated car, want 1", n)
	}
	got, err := s.Broadcasts(ctx, "seats", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].VIN != "V1" || got[1].VIN != "V2" || got[2].VIN != "V3" || got[2].Seq != 3 {
		t.Fatalf("seats broadcasts %+v, want V1 V2 V3 numbered 1-3", got)
	}
	un, err := s.UnpublishedBroadcasts(ctx, 10)
	if err != nil || len(un) != 4 {
		t.Fatalf("unpublished %d, %v; want 4", len(un), err)
	}
	if err := s.MarkPublished(ctx, "seats", 1, at); err != nil {
		t.Fatal(err)
	}
	if un, _ := s.UnpublishedBroadcasts(ctx, 10); len(un) != 3 {
		t.Errorf("unpublished %d after one was published, want 3", len(un))
	}
}
