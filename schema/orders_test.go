package schema_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keiline/keiline/schema"
	"github.com/keiline/keiline/schema/pgtest"
)

func testOrders() []schema.Order {
	return []schema.Order{
		{ID: "A-3", Model: "KV", Variant: "2WD", Colour: "white", Priority: 0},
		{ID: "A-1", Model: "KV", Variant: "4WD", Colour: "red", Options: []string{"4WD", "SUNROOF"}, Due: t0.Add(2 * time.Hour), Priority: 1},
		{ID: "A-2", Model: "KE", Variant: "Std", Colour: "mint", Options: []string{"EV"}, Due: t0.Add(2 * time.Hour), Priority: 5},
		{ID: "A-4", Model: "KE", Variant: "Std", Colour: "mint", Options: []string{"EV"}, Due: t0},
	}
}

// openWriter opens a fresh database as its owner (migrating it) and as the
// writer role the orders tools use.
func openWriter(t *testing.T) *schema.Store {
	t.Helper()
	url := pgtest.NewDB(t)
	owner, err := schema.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	owner.Close()
	w, err := schema.OpenAs(t.Context(), url, schema.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

func orderIDs(rows []schema.OrderRow) []string {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestImportOrdersAndList(t *testing.T) {
	s := openWriter(t)
	n, err := s.ImportOrders(t.Context(), "day.csv", testOrders())
	if err != nil || n != 4 {
		t.Fatalf("import = %d, %v; want 4", n, err)
	}
	rows, err := s.Orders(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Earliest due first, higher priority first on the same due, no due last.
	if got, want := orderIDs(rows), []string{"A-4", "A-2", "A-1", "A-3"}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	a1 := rows[2]
	if a1.Model != "KV" || a1.Variant != "4WD" || a1.Colour != "red" || !slices.Equal(a1.Options, []string{"4WD", "SUNROOF"}) ||
		!a1.Due.Equal(t0.Add(2*time.Hour)) || a1.Priority != 1 || a1.Status != schema.OrderOpen || a1.Source != "day.csv" || a1.ImportedAt.IsZero() {
		t.Errorf("A-1 read back as %+v", a1)
	}
	if a3 := rows[3]; !a3.Due.IsZero() || a3.Options == nil || len(a3.Options) != 0 {
		t.Errorf("A-3 (no due, no options) read back as %+v", a3)
	}
	if rows, err := s.Orders(t.Context(), "", 2); err != nil || len(rows) != 2 {
		t.Errorf("limit 2: %d rows, %v", len(rows), err)
	}
	if _, err := s.Orders(t.Context(), "done", 0); err == nil {
		t.Error("status done: no error")
	}
}

func TestImportOrdersRejectsExistingIDs(t *testing.T) {
	s := openWriter(t)
	if _, err := s.ImportOrders(t.Context(), "monday.csv", testOrders()[:2]); err != nil {
		t.Fatal(err)
	}
	again := append(testOrders()[1:], schema.Order{ID: "B-1", Model: "KV", Variant: "2WD", Colour: "white"})
	n, err := s.ImportOrders(t.Context(), "tuesday.csv", again)
	if !errors.Is(err, schema.ErrOrderExists) || n != 0 {
		t.Fatalf("import of an existing id = %d, %v; want ErrOrderExists", n, err)
	}
	if want := "import 4 orders from tuesday.csv: order already exists: A-1"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	rows, err := s.Orders(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := orderIDs(rows), []string{"A-1", "A-3"}; !slices.Equal(got, want) {
		t.Errorf("after the rejected import the table holds %v, want %v", got, want)
	}
	for _, r := range rows {
		if r.Source != "monday.csv" {
			t.Errorf("order %s source %s, want monday.csv", r.ID, r.Source)
		}
	}
	if _, err := s.ImportOrders(t.Context(), "x.csv", []schema.Order{testOrders()[0], testOrders()[0]}); err == nil {
		t.Error("an id twice in one import: no error")
	}
}

func TestCancelOrder(t *testing.T) {
	s := openWriter(t)
	if _, err := s.ImportOrders(t.Context(), "api", testOrders()); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelOrder(t.Context(), "A-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelOrder(t.Context(), "A-2"); !errors.Is(err, schema.ErrOrderNotOpen) {
		t.Errorf("second cancel = %v, want ErrOrderNotOpen", err)
	}
	if err := s.CancelOrder(t.Context(), "nope"); !errors.Is(err, schema.ErrNotFound) {
		t.Errorf("cancel of an unknown order = %v, want ErrNotFound", err)
	}
	open, err := s.Orders(t.Context(), schema.OrderOpen, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := orderIDs(open), []string{"A-4", "A-1", "A-3"}; !slices.Equal(got, want) {
		t.Errorf("open orders %v, want %v", got, want)
	}
	cancelled, err := s.Orders(t.Context(), schema.OrderCancelled, 0)
	if err != nil || len(cancelled) != 1 || cancelled[0].ID != "A-2" || cancelled[0].Status != schema.OrderCancelled {
		t.Errorf("cancelled orders %+v, %v", cancelled, err)
	}
}
