package sequence

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// dayRules are a kei line's rules: EV battery marriage, 4WD and sunroof
// stations with limited capacity, and the van levelled through the day.
var dayRules = Rules{
	Options: []Option{{"ev", 1, 4}, {"4wd", 2, 5}, {"sunroof", 1, 3}},
	Models:  []Option{{"van", 1, 3}},

	ColourBatchMax: 8,
}

// shiftStart is today's 06:00 UTC, derived from the clock: the tests
// never use a fixed calendar date.
func shiftStart() time.Time { return time.Now().UTC().Truncate(24 * time.Hour).Add(6 * time.Hour) }

// dayOrders makes n orders in random order: four models, EV, 4WD and
// sunroof options, six colours, due dates over a day.
func dayOrders(n int, seed uint64) []Order {
	r := rand.New(rand.NewPCG(seed, 1))
	colours := []struct {
		name string
		pct  int
	}{{"white", 35}, {"black", 20}, {"silver", 15}, {"red", 10}, {"blue", 10}, {"pearl", 10}}
	day := shiftStart()
	orders := make([]Order, n)
	for i := range orders {
		o := Order{ID: fmt.Sprintf("O%04d", i), Priority: r.IntN(3), Due: day.Add(time.Duration(r.IntN(16)) * time.Hour)}
		switch k := r.IntN(100); {
		case k < 15:
			o.Model, o.Variant, o.Options = "ev", "e-kei", []string{"ev"}
		case k < 45:
			o.Model, o.Variant = "van", "2wd"
		case k < 75:
			o.Model, o.Variant = "hatch", "2wd"
		default:
			o.Model, o.Variant = "wagon", "2wd"
		}
		if o.Model != "ev" && r.IntN(100) < 35 {
			o.Variant = "4wd"
			o.Options = append(o.Options, "4wd")
		}
		if r.IntN(100) < 10 {
			o.Options = append(o.Options, "sunroof", "navi")
		}
		k := r.IntN(100)
		for _, c := range colours {
			if k < c.pct {
				o.Colour = c.name
				break
			}
			k -= c.pct
		}
		orders[i] = o
	}
	return orders
}

// checkPlan recomputes every figure of plan from its orders.
func checkPlan(t *testing.T, orders []Order, rules Rules, plan *Plan) {
	t.Helper()
	got := make([]string, len(plan.Orders))
	for i, o := range plan.Orders {
		got[i] = o.ID
	}
	want := make([]string, len(orders))
	for i, o := range orders {
		want[i] = o.ID
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatal("the plan does not build each order exactly once")
	}
	has := make([]bool, len(plan.Orders))
	var w, e int
	for j, r := range append(append([]Option(nil), rules.Options...), rules.Models...) {
		for x, o := range plan.Orders {
			if j < len(rules.Options) {
				has[x] = slices.Contains(o.Options, r.Name)
			} else {
				has[x] = o.Model == r.Name
			}
		}
		rw, re := windowViolations(has, r.P, r.Q)
		if rr := plan.Rules[j]; rr.Violations != rw || rr.Excess != re {
			t.Fatalf("rule %s: plan says W %d E %d, the sequence has W %d E %d", rr.Rule, rr.Violations, rr.Excess, rw, re)
		}
		w += rw
		e += re
	}
	changes, batch, run := 0, 0, 0
	for x, o := range plan.Orders {
		if x > 0 && o.Colour == plan.Orders[x-1].Colour {
			run++
		} else {
			run = 1
			if x > 0 {
				changes++
			}
		}
		if rules.ColourBatchMax > 0 && run > rules.ColourBatchMax {
			batch++
		}
	}
	if w != plan.Violations || e != plan.Excess || changes != plan.ColourChanges || batch != plan.BatchExcess {
		t.Fatalf("plan says W %d E %d changes %d batch %d; the sequence has %d %d %d %d",
			plan.Violations, plan.Excess, plan.ColourChanges, plan.BatchExcess, w, e, changes, batch)
	}
}

func TestPlanOrdersDay(t *testing.T) {
	orders := dayOrders(300, 1)
	plan, err := PlanOrders(context.Background(), orders, dayRules, Config{Seed: 1, TimeLimit: time.Hour, MaxMoves: 3_000_000})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, orders, dayRules, plan)
	if plan.Violations != 0 || plan.BatchExcess != 0 {
		t.Fatalf("%d ratio violations, %d cars over the batch limit; want none", plan.Violations, plan.BatchExcess)
	}
	// The fewest colour changes possible: each colour in batches of at
	// most ColourBatchMax, one change between batches.
	count := map[string]int{}
	for _, o := range orders {
		count[o.Colour]++
	}
	lower := -1
	for _, k := range count {
		lower += (k + dayRules.ColourBatchMax - 1) / dayRules.ColourBatchMax
	}
	if plan.ColourChanges > lower*3/2 {
		t.Fatalf("%d colour changes, at least %d needed; want within 50%%", plan.ColourChanges, lower)
	}
	t.Logf("W %d, colour changes %d (at least %d), rank deviation %d, %d moves in %v",
		plan.Violations, plan.ColourChanges, lower, plan.RankDeviation, plan.Moves, plan.Elapsed)
}

func TestPlanOrdersDueOrder(t *testing.T) {
	// No rules and one colour: the plan builds by due date, then priority.
	day := shiftStart()
	orders := []Order{
		{ID: "late", Colour: "white", Due: day.Add(5 * time.Hour)},
		{ID: "none", Colour: "white"},
		{ID: "early-low", Colour: "white", Due: day, Priority: 0},
		{ID: "early-high", Colour: "white", Due: day, Priority: 2},
		{ID: "mid", Colour: "white", Due: day.Add(time.Hour)},
	}
	plan, err := PlanOrders(context.Background(), orders, Rules{}, Config{MaxMoves: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range plan.Orders {
		got = append(got, o.ID)
	}
	if want := "early-high early-low mid late none"; strings.Join(got, " ") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
}

func TestPlanOrdersColourBeforeDue(t *testing.T) {
	// Alternating colours in due order: colour changes come before due
	// order, so the plan groups the colours.
	var orders []Order
	day := shiftStart()
	for i := range 12 {
		orders = append(orders, Order{ID: fmt.Sprint(i), Colour: []string{"red", "blue"}[i%2], Due: day.Add(time.Duration(i) * time.Second)})
	}
	plan, err := PlanOrders(context.Background(), orders, Rules{ColourBatchMax: 6}, Config{Seed: 2, TimeLimit: time.Hour, MaxMoves: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, orders, Rules{ColourBatchMax: 6}, plan)
	if plan.ColourChanges != 1 {
		t.Fatalf("%d colour changes, want 1", plan.ColourChanges)
	}
}

func TestPlanOrdersDeterministic(t *testing.T) {
	orders := dayOrders(120, 3)
	cfg := Config{Seed: 9, MaxMoves: 100_000, TimeLimit: time.Hour}
	a, err := PlanOrders(context.Background(), orders, dayRules, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PlanOrders(context.Background(), orders, dayRules, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Orders {
		if a.Orders[i].ID != b.Orders[i].ID {
			t.Fatalf("same seed and budget, different plans at position %d", i)
		}
	}
}

func TestPlanOrdersErrors(t *testing.T) {
	white := func(ids ...string) []Order {
		var o []Order
		for _, id := range ids {
			o = append(o, Order{ID: id, Colour: "white", Model: "van", Options: []string{"ev"}})
		}
		return o
	}
	for _, tc := range []struct {
		name   string
		orders []Order
		rules  Rules
		want   error
		msg    string
	}{
		{"empty id", white("a", ""), Rules{}, ErrInvalid, "order 2 has no id"},
		{"repeated id", white("a", "b", "a"), Rules{}, ErrInvalid, "order a appears twice"},
		{"zero p", white("a"), Rules{Options: []Option{{"ev", 0, 3}}}, ErrInvalid, "ev 0/3"},
		{"unnamed rule", white("a"), Rules{Models: []Option{{"", 1, 3}}}, ErrInvalid, "model rule 0 has no name"},
		{"repeated rule", white("a"), Rules{Options: []Option{{"ev", 1, 3}, {"ev", 1, 2}}}, ErrInvalid, `"ev" appears twice`},
		{"negative batch", white("a"), Rules{ColourBatchMax: -1}, ErrInvalid, "ColourBatchMax"},
		{"too many ev", white("a", "b", "c", "d"), Rules{Options: []Option{{"ev", 1, 2}}}, ErrImpossible, "option rule ev 1/2: 4 of the 4 orders need it, at most 2 fit"},
		{"too many vans", white("a", "b", "c"), Rules{Models: []Option{{"van", 2, 3}}}, ErrImpossible, "model rule van 2/3"},
		{"one colour", white("a", "b", "c"), Rules{ColourBatchMax: 2}, ErrImpossible, `colour "white": 3 of the 3 orders`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PlanOrders(context.Background(), tc.orders, tc.rules, Config{MaxMoves: 1000})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

// BenchmarkPlanMoves measures local-search moves per second on a day's
// orders.
func BenchmarkPlanMoves(b *testing.B) {
	orders := dayOrders(300, 1)
	var moves int64
	start := time.Now()
	for b.Loop() {
		plan, err := PlanOrders(context.Background(), orders, dayRules, Config{Seed: 1, TimeLimit: time.Hour, MaxMoves: 1_000_000})
		if err != nil {
			b.Fatal(err)
		}
		moves += plan.Moves
	}
	b.ReportMetric(float64(moves)/time.Since(start).Seconds(), "moves/s")
}
