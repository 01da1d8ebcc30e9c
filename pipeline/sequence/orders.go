package sequence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrImpossible is wrapped by PlanOrders errors for rules that no sequence
// of the given orders can meet.
var ErrImpossible = errors.New("impossible sequencing rules")

// PlanStallMoves is how many moves without a better plan end PlanOrders'
// search before its time limit.
const PlanStallMoves = 2_000_000

// Order is one car to build, as the planner loads it.
type Order struct {
	ID      string
	Model   string
	Variant string
	Colour  string
	// Options are the order's option codes; those named by a ratio rule
	// count against it, the others are free.
	Options []string
	// Due is when the car should be built; the zero time means no date.
	Due time.Time
	// Priority orders cars with the same due date: higher builds first.
	Priority int
}

// Rules are a line's sequencing constraints.
type Rules struct {
	// Options are ratio rules on order options: at most P of any Q
	// consecutive cars may have option Name (EV battery marriage, 4WD,
	// sunroof).
	Options []Option
	// Models are model-mix levelling (heijunka) rules: at most P of any Q
	// consecutive cars may be of model Name.
	Models []Option
	// ColourBatchMax is the longest run of one paint colour; 0 means no
	// limit. Fewer colour changes are better in any case.
	ColourBatchMax int
}

// Validate reports the first bad rule: each with a name, unique within its
// list, 1 ≤ P and 1 ≤ Q; at most MaxRules in all; ColourBatchMax ≥ 0. The
// error wraps ErrInvalid.
func (r Rules) Validate() error {
	if n := len(r.Options) + len(r.Models); n > MaxRules {
		return fmt.Errorf("%w: %d ratio rules, at most %d", ErrInvalid, n, MaxRules)
	}
	for _, list := range []struct {
		what  string
		rules []Option
	}{{"option", r.Options}, {"model", r.Models}} {
		seen := make(map[string]bool)
		for i, o := range list.rules {
			switch {
			case o.Name == "":
				return fmt.Errorf("%w: %s rule %d has no name", ErrInvalid, list.what, i)
			case seen[o.Name]:
				return fmt.Errorf("%w: %s rule %q appears twice", ErrInvalid, list.what, o.Name)
			case o.P < 1 || o.Q < 1:
				return fmt.Errorf("%w: %s rule %s: need 1 ≤ p and 1 ≤ q", ErrInvalid, list.what, o)
			}
			seen[o.Name] = true
		}
	}
	if r.ColourBatchMax < 0 {
		return fmt.Errorf("%w: ColourBatchMax %d is negative", ErrInvalid, r.ColourBatchMax)
	}
	return nil
}

// RuleResult is how one ratio rule fares in a plan.
type RuleResult struct {
	// Rule is "option NAME p/q" or "model NAME p/q".
	Rule string
	// Cars is the number of cars the rule applies to.
	Cars int
	// Violations is the windows over capacity (W); Excess the cars over
	// capacity summed over them (E).
	Violations, Excess int
}

// Plan is a build sequence of orders and how well it meets the rules.
type Plan struct {
	// Orders are the orders in build order.
	Orders []Order
	// Violations is W over every ratio rule (options and models): the
	// (rule, window) pairs over capacity. Excess is E.
	Violations, Excess int
	// Rules breaks Violations and Excess down by rule, options first.
	Rules []RuleResult
	// BatchExcess is the cars beyond ColourBatchMax in runs of one colour
	// (0 when there is no limit).
	BatchExcess int
	// ColourChanges is the number of neighbours of different colours.
	ColourChanges int
	// RankDeviation is Σ |position − due rank| over the cars, where the
	// due rank orders by due date (none last), then higher priority, then
	// input order: 0 means the plan builds in that order.
	RankDeviation int
	// Moves is the number of local-search moves tried.
	Moves   int64
	Elapsed time.Duration
}

// PlanOrders sequences orders under rules. The objective is lexicographic:
// first the ratio and batch violations (windows over capacity, then the
// excess), then colour changes, then the rank deviation (due date and
// priority). It searches until the time limit or the ctx deadline, or
// until PlanStallMoves moves find nothing better, and runs on the calling
// goroutine.
//
// PlanOrders returns an error wrapping ErrInvalid for bad rules or orders
// (an empty or repeated order id, a config error), one wrapping
// ErrImpossible, naming the rule, when more orders need a rule than any
// sequence can fit (so violations are certain), and ctx.Err() if ctx is
// cancelled.
func PlanOrders(ctx context.Context, orders []Order, rules Rules, cfg Config) (*Plan, error) {
	start := time.Now()
	if err := rules.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	n := len(orders)
	ids := make(map[string]bool, n)
	for i, o := range orders {
		if o.ID == "" {
			return nil, fmt.Errorf("%w: order %d has no id", ErrInvalid, i+1)
		}
		if ids[o.ID] {
			return nil, fmt.Errorf("%w: order %s appears twice", ErrInvalid, o.ID)
		}
		ids[o.ID] = true
	}

	all := append(append([]Option(nil), rules.Options...), rules.Models...)
	optBit := make(map[string]int, len(rules.Options))
	for j, o := range rules.Options {
		optBit[o.Name] = j
	}
	modelBit := make(map[string]int, len(rules.Models))
	for j, o := range rules.Models {
		modelBit[o.Name] = len(rules.Options) + j
	}
	masks := make([]uint64, n)
	for i, o := range orders {
		for _, opt := range o.Options {
			if j, ok := optBit[opt]; ok {
				masks[i] |= 1 << j
			}
		}
		if j, ok := modelBit[o.Model]; ok {
			masks[i] |= 1 << j
		}
	}
	if err := checkPossible(orders, masks, all, len(rules.Options), rules.ColourBatchMax); err != nil {
		return nil, err
	}

	// Due rank: due date (none last), then higher priority, then input order.
	byDue := make([]int, n)
	for i := range byDue {
		byDue[i] = i
	}
	slices.SortStableFunc(byDue, func(a, b int) int {
		da, db := orders[a].Due, orders[b].Due
		if da.IsZero() != db.IsZero() {
			if da.IsZero() {
				return 1
			}
			return -1
		}
		if c := da.Compare(db); c != 0 {
			return c
		}
		return cmp.Compare(orders[b].Priority, orders[a].Priority)
	})
	rank := make([]int32, n)
	for r, i := range byDue {
		rank[i] = int32(r)
	}
	colourIdx := make(map[string]int32)
	colour := make([]int32, n)
	for i, o := range orders {
		c, ok := colourIdx[o.Colour]
		if !ok {
			c = int32(len(colourIdx))
			colourIdx[o.Colour] = c
		}
		colour[i] = c
	}

	ps, qs := make([]int, len(all)), make([]int, len(all))
	for j, o := range all {
		ps[j], qs[j] = o.P, o.Q
	}
	e := newEngine(masks, ps, qs, colour, rules.ColourBatchMax, rank, cfg.Seed)

	// Greedy start over the distinct masks; within a mask, cars go in due
	// rank order.
	classOf := make(map[uint64]int)
	var classMasks []uint64
	var members [][]int32
	for _, i := range byDue {
		c, ok := classOf[masks[i]]
		if !ok {
			c = len(classMasks)
			classOf[masks[i]] = c
			classMasks = append(classMasks, masks[i])
			members = append(members, nil)
		}
		members[c] = append(members[c], int32(i))
	}
	counts := make([]int, len(members))
	for c, m := range members {
		counts[c] = len(m)
	}
	cars := make([]int32, 0, n)
	next := make([]int, len(members))
	for _, c := range greedy(classMasks, counts, ps, qs, &e.rng) {
		cars = append(cars, members[c][next[c]])
		next[c]++
	}
	e.load(cars)

	st := stop{deadline: cfg.deadline(start), maxMoves: cfg.MaxMoves, stall: PlanStallMoves, target: -1}
	if d, ok := ctx.Deadline(); ok && d.Before(st.deadline) {
		st.deadline = d
	}
	e.search(ctx, st)
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}

	plan := &Plan{
		Orders:        make([]Order, n),
		Violations:    e.best.W,
		Excess:        e.best.E,
		BatchExcess:   e.best.Batch,
		ColourChanges: e.best.Changes,
		RankDeviation: int(e.best.RankDev),
		Moves:         e.moves,
		Elapsed:       time.Since(start),
	}
	for x, i := range e.bestCar {
		plan.Orders[x] = orders[i]
	}
	has := make([]bool, n)
	for j, o := range all {
		what := "option"
		if j >= len(rules.Options) {
			what = "model"
		}
		rr := RuleResult{Rule: what + " " + o.String()}
		for x, i := range e.bestCar {
			has[x] = masks[i]&(1<<j) != 0
			if has[x] {
				rr.Cars++
			}
		}
		rr.Violations, rr.Excess = windowViolations(has, o.P, o.Q)
		plan.Rules = append(plan.Rules, rr)
	}
	return plan, nil
}

// ratioCapacity is the most of n consecutive cars that a p/q rule allows to
// have its option: p in each full window of q, and up to p in the rest.
func ratioCapacity(n, p, q int) int {
	return n/q*p + min(p, n%q)
}

// checkPossible returns an ErrImpossible error for the first rule that
// more orders need than any sequence can fit.
func checkPossible(orders []Order, masks []uint64, all []Option, nOpts, batch int) error {
	n := len(orders)
	for j, o := range all {
		need := 0
		for _, m := range masks {
			if m&(1<<j) != 0 {
				need++
			}
		}
		if c := ratioCapacity(n, o.P, o.Q); need > c {
			what := "option"
			if j >= nOpts {
				what = "model"
			}
			return fmt.Errorf("%w: %s rule %s: %d of the %d orders need it, at most %d fit", ErrImpossible, what, o, need, n, c)
		}
	}
	if batch > 0 {
		count := make(map[string]int)
		var colours []string
		for _, o := range orders {
			if count[o.Colour] == 0 {
				colours = append(colours, o.Colour)
			}
			count[o.Colour]++
		}
		for _, c := range colours {
			k := count[c]
			// k cars in batches of at most batch need ⌈k/batch⌉−1 cars of
			// other colours between them.
			if gaps := (k+batch-1)/batch - 1; n-k < gaps {
				return fmt.Errorf("%w: colour %q: %d of the %d orders in batches of at most %d need %d cars of other colours, there are %d",
					ErrImpossible, c, k, n, batch, gaps, n-k)
			}
		}
	}
	return nil
}
