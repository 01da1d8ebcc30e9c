// Package sequence decides the order in which cars are built: the
// car-sequencing problem of the literature (CSPLib prob001) and its
// planning use in keiline, where open orders become a build sequence.
//
// A ratio constraint p/q on an option (EV battery marriage, 4WD, sunroof)
// allows at most p cars with the option in any q consecutive cars. Solve
// orders the classes of a Problem so that as few windows as possible are
// over capacity; PlanOrders does the same for MES orders and, as secondary
// goals, keeps paint colour batches short and few, and builds earlier-due
// and higher-priority orders first.
//
// The solver is a greedy construction (the dynamic sum of utilisation rates
// heuristic of Gottlieb, Puchta and Solnon) followed by a local search in
// the style of Estellon, Gardi and Nouioua: swaps, insertions and
// reflections, the first position taken from an over-capacity window, each
// move evaluated incrementally on the few windows it changes. It runs on
// the calling goroutine and starts none.
package sequence

import (
	"errors"
	"fmt"
)

// MaxRules is the most ratio constraints (options, plus model-mix rules for
// orders) the solver handles in one problem.
const MaxRules = 64

// ErrInvalid is wrapped by every error about a malformed problem or
// sequence.
var ErrInvalid = errors.New("invalid sequencing problem")

// Option is a ratio constraint: at most P of any Q consecutive cars may
// have the option. P ≥ Q puts no limit on the option; P = 0 forbids it.
type Option struct {
	Name string
	P, Q int
}

// String returns the option as "name p/q".
func (o Option) String() string {
	if o.Name == "" {
		return fmt.Sprintf("%d/%d", o.P, o.Q)
	}
	return fmt.Sprintf("%s %d/%d", o.Name, o.P, o.Q)
}

// Class is Count identical cars: Options[j] tells whether they need the
// problem's option j.
type Class struct {
	ID      int
	Count   int
	Options []bool
}

// Problem is a car-sequencing instance: the classes of cars to build and the
// options whose ratio constraints they must respect.
type Problem struct {
	Classes []Class
	Options []Option
}

// Cars returns the number of cars to sequence, the sum of the class counts.
func (p *Problem) Cars() int {
	n := 0
	for _, c := range p.Classes {
		n += c.Count
	}
	return n
}

// Validate reports the first thing that makes p unsolvable, wrapping
// ErrInvalid: no options beyond MaxRules, each option with 0 ≤ P and
// 1 ≤ Q, class ids distinct and non-negative, counts non-negative, and
// each class with one entry per option.
func (p *Problem) Validate() error {
	if len(p.Options) > MaxRules {
		return fmt.Errorf("%w: %d options, at most %d", ErrInvalid, len(p.Options), MaxRules)
	}
	for j, o := range p.Options {
		if o.P < 0 || o.Q < 1 {
			return fmt.Errorf("%w: option %d (%s): need 0 ≤ p and 1 ≤ q", ErrInvalid, j, o)
		}
	}
	seen := make(map[int]bool, len(p.Classes))
	for _, c := range p.Classes {
		if c.ID < 0 {
			return fmt.Errorf("%w: class id %d is negative", ErrInvalid, c.ID)
		}
		if seen[c.ID] {
			return fmt.Errorf("%w: class id %d appears twice", ErrInvalid, c.ID)
		}
		seen[c.ID] = true
		if c.Count < 0 {
			return fmt.Errorf("%w: class %d: count %d is negative", ErrInvalid, c.ID, c.Count)
		}
		if len(c.Options) != len(p.Options) {
			return fmt.Errorf("%w: class %d: %d option flags for %d options", ErrInvalid, c.ID, len(c.Options), len(p.Options))
		}
	}
	return nil
}

// CheckSequence reports whether seq (class ids, one per car in build order)
// builds exactly the cars of p: every id a class of p, each class exactly
// Count times. The error, wrapping ErrInvalid, names the first difference.
func CheckSequence(p *Problem, seq []int) error {
	want := make(map[int]int, len(p.Classes))
	for _, c := range p.Classes {
		want[c.ID] = c.Count
	}
	for i, id := range seq {
		n, ok := want[id]
		if !ok {
			return fmt.Errorf("%w: position %d: class %d is not in the problem", ErrInvalid, i, id)
		}
		if n == 0 {
			return fmt.Errorf("%w: position %d: class %d appears more often than its count", ErrInvalid, i, id)
		}
		want[id] = n - 1
	}
	for _, c := range p.Classes {
		if want[c.ID] != 0 {
			return fmt.Errorf("%w: class %d appears %d times, want %d", ErrInvalid, c.ID, c.Count-want[c.ID], c.Count)
		}
	}
	return nil
}

// Violations counts how far seq (class ids in build order) breaks the ratio
// constraints of p, over the n−q+1 full windows of each option (none when
// q > n), as in ../shared/csplib/README.md: W is the number of (option,
// window) pairs with more than p cars needing the option, E the sum of the
// excess over p. E ≥ W, and both are 0 exactly when seq is feasible. An id
// that is not a class of p counts as a car with no options; use
// CheckSequence to reject such sequences.
func Violations(p *Problem, seq []int) (W, E int) {
	byID := make(map[int][]bool, len(p.Classes))
	for _, c := range p.Classes {
		byID[c.ID] = c.Options
	}
	has := make([]bool, len(seq))
	for j, o := range p.Options {
		for i, id := range seq {
			opts := byID[id]
			has[i] = j < len(opts) && opts[j]
		}
		w, e := windowViolations(has, o.P, o.Q)
		W += w
		E += e
	}
	return W, E
}

// windowViolations counts the full windows of length q over has with more
// than p true entries (w) and their summed excess (e).
func windowViolations(has []bool, p, q int) (w, e int) {
	if q < 1 || q > len(has) {
		return 0, 0
	}
	load := 0
	for i, h := range has {
		if h {
			load++
		}
		if i >= q && has[i-q] {
			load--
		}
		if i >= q-1 && load > p {
			w++
			e += load - p
		}
	}
	return w, e
}
