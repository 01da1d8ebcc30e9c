package sequence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// TimeLimitDefault is the search time when Config.TimeLimit is 0.
const TimeLimitDefault = 10 * time.Second

// Config tunes Solve and PlanOrders.
type Config struct {
	// TimeLimit bounds the search; the ctx deadline, if sooner, also does.
	// Defaults to TimeLimitDefault.
	TimeLimit time.Duration
	// Seed selects the random stream. The moves tried depend only on the
	// problem and the seed; the clock decides only how many are tried.
	Seed uint64
	// MaxMoves bounds the search by the number of moves tried, which makes
	// the result the same on any machine (as long as the time limit is not
	// reached first). 0 means no bound.
	MaxMoves int64
	// Target is a number of violations (W) good enough for Solve to stop
	// at, for problems whose optimum is known. Defaults to 0: stop when
	// feasible. PlanOrders ignores it: it goes on to improve colours.
	Target int
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if c.TimeLimit < 0 {
		return fmt.Errorf("sequence config: TimeLimit %v is negative", c.TimeLimit)
	}
	if c.MaxMoves < 0 {
		return fmt.Errorf("sequence config: MaxMoves %d is negative", c.MaxMoves)
	}
	if c.Target < 0 {
		return fmt.Errorf("sequence config: Target %d is negative", c.Target)
	}
	return nil
}

func (c Config) deadline(start time.Time) time.Time {
	tl := c.TimeLimit
	if tl == 0 {
		tl = TimeLimitDefault
	}
	return start.Add(tl)
}

// Result is the best sequence Solve found.
type Result struct {
	// Sequence holds a class id per car, in build order.
	Sequence []int
	// Violations is W: the (option, window) pairs over capacity.
	Violations int
	// Excess is E: the cars over capacity summed over those pairs.
	Excess int
	// Greedy is W for the greedy start, before the local search.
	Greedy int
	// Moves is the number of local-search moves tried.
	Moves int64
	// Elapsed is the time Solve took; BestAt the time it had taken when it
	// found the sequence returned.
	Elapsed, BestAt time.Duration
}

// Solve orders the cars of p to minimise the ratio-constraint violations:
// first W, then E (see Violations). It returns as soon as W is at most
// cfg.Target (0: the sequence is feasible), or when the time limit, the move budget or the ctx deadline is
// reached, with the best sequence found. It runs on the calling goroutine.
//
// Solve returns an error wrapping ErrInvalid if p does not pass Validate or
// cfg is bad, and ctx.Err() (with the best sequence so far) if ctx is
// cancelled; reaching the ctx deadline is a normal end, not an error.
func Solve(ctx context.Context, p *Problem, cfg Config) (Result, error) {
	start := time.Now()
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	ps, qs := make([]int, len(p.Options)), make([]int, len(p.Options))
	for j, o := range p.Options {
		ps[j], qs[j] = o.P, o.Q
	}
	// Cars are numbered class by class; a class is one rule mask.
	var masks []uint64
	var classOf []int // class index of each car
	classMasks := make([]uint64, len(p.Classes))
	counts := make([]int, len(p.Classes))
	for ci, c := range p.Classes {
		for j, b := range c.Options {
			if b {
				classMasks[ci] |= 1 << j
			}
		}
		counts[ci] = c.Count
		for range c.Count {
			masks = append(masks, classMasks[ci])
			classOf = append(classOf, ci)
		}
	}
	e := newEngine(masks, ps, qs, nil, 0, nil, cfg.Seed)
	order := greedy(classMasks, counts, ps, qs, &e.rng)
	first := make([]int32, len(p.Classes)) // first car of each class
	for ci := 1; ci < len(p.Classes); ci++ {
		first[ci] = first[ci-1] + int32(counts[ci-1])
	}
	cars := make([]int32, len(order))
	for x, ci := range order {
		cars[x] = first[ci]
		first[ci]++
	}
	e.load(cars)
	greedyW := e.cur.W

	st := stop{deadline: cfg.deadline(start), maxMoves: cfg.MaxMoves, target: cfg.Target}
	if d, ok := ctx.Deadline(); ok && d.Before(st.deadline) {
		st.deadline = d
	}
	e.search(ctx, st)

	res := Result{
		Sequence:   make([]int, len(e.bestCar)),
		Violations: e.best.W,
		Excess:     e.best.E,
		Greedy:     greedyW,
		Moves:      e.moves,
		Elapsed:    time.Since(start),
		BestAt:     e.bestAt.Sub(start),
	}
	for x, c := range e.bestCar {
		res.Sequence[x] = p.Classes[classOf[c]].ID
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return res, err
	}
	return res, nil
}

// greedy builds a start sequence of class indexes (counts[c] of class c)
// position by position: the class that puts the fewest windows over
// capacity, then the highest dynamic sum of utilisation rates (Gottlieb,
// Puchta and Solnon 2003: for each of the class's options, the cars still
// needing it over the most the remaining positions could take), then at
// random.
func greedy(classMasks []uint64, counts []int, ps, qs []int, r *rng) []int {
	n := 0
	rem := make([]int, len(counts))
	copy(rem, counts)
	need := make([]int64, len(ps)) // cars still to place per rule
	for c, k := range counts {
		n += k
		for j := range ps {
			if classMasks[c]&(1<<j) != 0 {
				need[j] += int64(k)
			}
		}
	}
	placed := make([]uint64, 0, n)
	order := make([]int, 0, n)
	// rate[j] is rule j's utilisation, up to the common factor of the
	// remaining positions: need·q/p, scaled to stay integral.
	rate := make([]int64, len(ps))
	const scale = 1 << 20
	for x := 0; x < n; x++ {
		for j := range ps {
			if ps[j] == 0 {
				rate[j] = need[j] * scale * int64(qs[j]) * 2
			} else {
				rate[j] = need[j] * scale * int64(qs[j]) / int64(ps[j])
			}
		}
		bestC, bestV, ties := -1, 0, 0
		var bestS int64
		for c, k := range rem {
			if k == 0 {
				continue
			}
			v := 0
			var s int64
			for j := range ps {
				if classMasks[c]&(1<<j) == 0 {
					continue
				}
				s += rate[j]
				l := 1
				for y := max(0, x-qs[j]+1); y < x; y++ {
					if placed[y]&(1<<j) != 0 {
						l++
					}
				}
				if l > ps[j] {
					v++
				}
			}
			switch {
			case bestC < 0 || v < bestV || (v == bestV && s > bestS):
				bestC, bestV, bestS, ties = c, v, s, 1
			case v == bestV && s == bestS:
				ties++
				if r.intn(ties) == 0 {
					bestC = c
				}
			}
		}
		rem[bestC]--
		for j := range ps {
			if classMasks[bestC]&(1<<j) != 0 {
				need[j]--
			}
		}
		placed = append(placed, classMasks[bestC])
		order = append(order, bestC)
	}
	return order
}
