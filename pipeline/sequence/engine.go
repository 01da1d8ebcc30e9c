package sequence

import (
	"context"
	"math"
	"math/bits"
	"time"
)

// The engine is the local search shared by Solve and PlanOrders. A sequence
// is an array of car indexes; each car has a rule mask (bit r set when the
// car counts against ratio rule r) and, for orders, a colour and a rank.
// The primary cost is the ratio-window excess E (plus colour-batch
// windows); when the search stalls it switches to the over-capacity window
// count W and back, since the two have different plateaus. The secondary
// cost, for orders only, is colour changes and then the distance of each car
// from its due-date rank. Moves that do not worsen the cost are accepted
// (descent with sideways moves, as Estellon et al. found best); the best
// sequence by (W, E, colour changes, rank) is kept.
//
// Every cost term is a function of fixed-length windows of consecutive
// positions (a colour change is a window of two), so a move is evaluated on
// the windows it changes: for a swap those holding either position, for a
// reflection those crossing an end of the segment (windows inside it are
// only permuted), for an insertion those around its two ends (windows in
// between only shift by one).

const (
	mvSwap = iota
	mvReverse
	mvShift
)

// move is a swap of positions a < b, the reflection of the segment a..b
// (a < b), or the insertion of the car at a at position b (a ≠ b), the cars
// in between moving up one place.
type move struct {
	kind int
	a, b int
}

// span is an inclusive range of window starts.
type span struct{ lo, hi int }

// src returns the position before the move of the car that is at x after it.
func (m *move) src(x int) int {
	a, b := m.a, m.b
	switch m.kind {
	case mvSwap:
		if x == a {
			return b
		}
		if x == b {
			return a
		}
		return x
	case mvReverse:
		if x >= a && x <= b {
			return a + b - x
		}
		return x
	}
	if a < b {
		if x < a || x > b {
			return x
		}
		if x == b {
			return a
		}
		return x + 1
	}
	if x < b || x > a {
		return x
	}
	if x == b {
		return a
	}
	return x - 1
}

// spans returns the starts of the windows of length q whose content the
// move changes: old before the move, nu after it. Every other window before
// the move has an equal window after it, so the change of a sum over
// windows is the sum over nu after minus the sum over old before. The
// ranges are not clipped to the valid starts.
func (m *move) spans(q int) (old, nu [2]span) {
	a, b := m.a, m.b
	switch m.kind {
	case mvSwap:
		old = [2]span{{a - q + 1, a}, {max(a+1, b-q+1), b}}
		return old, old
	case mvReverse:
		old = [2]span{{a - q + 1, a - 1}, {max(a, b-q+2), b}}
		return old, old
	}
	if a < b {
		old = [2]span{{a - q + 1, a}, {max(a+1, b-q+2), b}}
		nu = [2]span{{a - q + 1, a - 1}, {max(a, b-q+1), b}}
		return old, nu
	}
	old = [2]span{{b - q + 1, b - 1}, {max(b, a-q+1), a}}
	nu = [2]span{{b - q + 1, b}, {max(b+1, a-q+2), a}}
	return old, nu
}

func (m *move) bounds() (lo, hi int) {
	if m.a < m.b {
		return m.a, m.b
	}
	return m.b, m.a
}

// ruleState is one ratio rule over the current sequence.
type ruleState struct {
	p, q int
	// load[s] is the number of cars with the rule in positions s..s+q-1;
	// one entry per full window.
	load []int32
	// at[s] is the index of window s in engine.viol, or -1 when the window
	// is within capacity.
	at []int32
}

// vwin is an over-capacity window: rule r, start s.
type vwin struct{ r, s int32 }

// cost is the engine's objective, compared lexicographically by better.
type cost struct {
	W, E    int   // ratio windows over capacity, and their summed excess
	Batch   int   // windows of batch+1 cars of one colour
	Changes int   // colour changes
	RankDev int64 // Σ |position − rank| over the cars
}

// better reports whether c is lexicographically better than d: fewer
// violated windows, less excess, fewer colour changes, less rank deviation.
func (c cost) better(d cost) bool {
	if a, b := c.W+c.Batch, d.W+d.Batch; a != b {
		return a < b
	}
	if a, b := c.E+c.Batch, d.E+d.Batch; a != b {
		return a < b
	}
	if c.Changes != d.Changes {
		return c.Changes < d.Changes
	}
	return c.RankDev < d.RankDev
}

// tuning is the search's knobs; defaultTuning holds the values used. On
// the hard CSPLib instances (fixed move budgets, several seeds), annealing
// at temperatures 0.1 to 0.5, random kicks out of stalls, swaps alone, and
// unfocused first positions were all no better or clearly worse than plain
// descent with sideways moves; switching between E and W when stalled
// helped (pb_400_03: 11 to 10) without slowing the feasible instances, which
// W alone does (pb_200_01: 0.4M to 5.7M moves).
type tuning struct {
	focus   int     // per mille: first position from an over-capacity window
	swap    int     // per mille of moves that are swaps
	reverse int     // per mille that are reflections; the rest are insertions
	near    int     // per mille: second position within reach of the first
	reach   int     // the reach, in positions
	temp    float64 // annealing temperature on the primary cost; 0 = descent (tests use it to reach more states)
	wW, wE  int     // primary cost: wW·W + wE·E (batch windows count wW+wE)
	// After switchAfter moves (0: never) without a better best, the
	// primary cost switches between E and W.
	switchAfter int64
}

var defaultTuning = tuning{focus: 900, swap: 600, reverse: 200, near: 500, reach: 12, temp: 0, wW: 0, wE: 1, switchAfter: 3_000_000}

type engine struct {
	n       int
	car     []int32  // car at each position
	mask    []uint64 // rule mask of the car at each position
	carMask []uint64 // rule mask of each car
	rules   []ruleState
	maxQ    int // longest window
	viol    []vwin
	buf     []uint64 // masks after a move, near the ends of its segment

	// Secondary terms; nil or 0 when absent (always for CSPLib problems).
	colour []int32 // colour of each car
	batchQ int     // longest allowed colour batch + 1
	rank   []int32 // due-date rank of each car
	sec    bool    // any secondary term

	cur  cost
	best cost
	// bestCar is the best sequence found, at bestAt.
	bestCar []int32
	bestAt  time.Time

	tune tuning
	// accept[d] is the probability, scaled to 2^32, of accepting a move
	// that worsens the primary cost by d.
	accept [8]uint64
	rng    rng
	moves  int64
}

// newEngine returns an engine over the cars in order, cars[i] having rule
// mask masks[i], for rules ps/qs. colour and rank may be nil; batch is the
// longest allowed colour batch (0: no limit).
func newEngine(masks []uint64, ps, qs []int, colour []int32, batch int, rank []int32, seed uint64) *engine {
	n := len(masks)
	e := &engine{
		n:       n,
		car:     make([]int32, n),
		mask:    make([]uint64, n),
		carMask: masks,
		rules:   make([]ruleState, len(ps)),
		colour:  colour,
		rank:    rank,
		tune:    defaultTuning,
		rng:     newRNG(seed),
	}
	if colour != nil && batch > 0 {
		e.batchQ = batch + 1
	}
	e.sec = colour != nil || rank != nil
	for r := range e.rules {
		nw := max(0, n-qs[r]+1)
		e.rules[r] = ruleState{p: ps[r], q: qs[r], load: make([]int32, nw), at: make([]int32, nw)}
		e.maxQ = max(e.maxQ, qs[r])
	}
	for i := range e.car {
		e.car[i] = int32(i)
	}
	e.setTemp(e.tune.temp)
	return e
}

func (e *engine) setTemp(t float64) {
	for d := range e.accept {
		if t > 0 && d > 0 {
			e.accept[d] = uint64(math.Exp(-float64(d)/t) * (1 << 32))
		} else {
			e.accept[d] = 0
		}
	}
}

// load sets the sequence to cars (a permutation of 0..n-1) and recomputes
// every cost from scratch.
func (e *engine) load(cars []int32) {
	copy(e.car, cars)
	for x, c := range e.car {
		e.mask[x] = e.carMask[c]
	}
	e.viol = e.viol[:0]
	for r := range e.rules {
		rs := &e.rules[r]
		for s := range rs.at {
			rs.at[s] = -1
		}
		e.recount(r, 0, len(rs.load)-1)
	}
	e.cur = e.fullCost()
	e.best = e.cur
	e.bestCar = append(e.bestCar[:0], e.car...)
	e.bestAt = time.Now()
}

// fullCost computes the cost of the current sequence from scratch.
func (e *engine) fullCost() cost {
	var c cost
	for r := range e.rules {
		rs := &e.rules[r]
		bit := uint64(1) << r
		for s := range rs.load {
			l := 0
			for x := s; x < s+rs.q; x++ {
				if e.mask[x]&bit != 0 {
					l++
				}
			}
			if l > rs.p {
				c.W++
				c.E += l - rs.p
			}
		}
	}
	if e.colour != nil {
		for x := 1; x < e.n; x++ {
			if e.colour[e.car[x]] != e.colour[e.car[x-1]] {
				c.Changes++
			}
		}
		if e.batchQ > 0 {
			run := 0
			for x := 0; x < e.n; x++ {
				if x > 0 && e.colour[e.car[x]] == e.colour[e.car[x-1]] {
					run++
				} else {
					run = 1
				}
				if run >= e.batchQ {
					c.Batch++
				}
			}
		}
	}
	if e.rank != nil {
		for x, k := range e.car {
			c.RankDev += int64(abs(x - int(e.rank[k])))
		}
	}
	return c
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// recount recomputes rule r's window loads for starts lo..hi (clipped) and
// keeps the over-capacity list in step.
func (e *engine) recount(r, lo, hi int) {
	rs := &e.rules[r]
	lo, hi = max(lo, 0), min(hi, len(rs.load)-1)
	if lo > hi {
		return
	}
	bit := uint64(1) << r
	l := int32(0)
	for x := lo; x < lo+rs.q-1; x++ {
		if e.mask[x]&bit != 0 {
			l++
		}
	}
	p := int32(rs.p)
	for s := lo; s <= hi; s++ {
		if e.mask[s+rs.q-1]&bit != 0 {
			l++
		}
		rs.load[s] = l
		switch over, listed := l > p, rs.at[s] >= 0; {
		case over && !listed:
			rs.at[s] = int32(len(e.viol))
			e.viol = append(e.viol, vwin{int32(r), int32(s)})
		case !over && listed:
			i := rs.at[s]
			last := e.viol[len(e.viol)-1]
			e.viol[i] = last
			e.rules[last.r].at[last.s] = i
			e.viol = e.viol[:len(e.viol)-1]
			rs.at[s] = -1
		}
		if e.mask[s]&bit != 0 {
			l--
		}
	}
}

// swapDelta is the change of (W, E) if the cars at a < b were swapped.
func (e *engine) swapDelta(a, b int) (dW, dE int) {
	ma, mb := e.mask[a], e.mask[b]
	for d := ma ^ mb; d != 0; d &= d - 1 {
		r := bits.TrailingZeros64(d)
		rs := &e.rules[r]
		nw := len(rs.load)
		if nw == 0 {
			continue
		}
		q, p := rs.q, int32(rs.p)
		// Windows holding a but not b, and b but not a.
		aLo, aHi := max(a-q+1, 0), min(a, nw-1, b-q)
		bLo, bHi := max(b-q+1, a+1, 0), min(b, nw-1)
		inc, dec := aLo, aHi // windows that gain the option
		decLo, decHi := bLo, bHi
		if ma&(1<<r) != 0 {
			inc, dec, decLo, decHi = bLo, bHi, aLo, aHi
		}
		for s := inc; s <= dec; s++ {
			if l := rs.load[s]; l >= p {
				dE++
				if l == p {
					dW++
				}
			}
		}
		for s := decLo; s <= decHi; s++ {
			if l := rs.load[s]; l > p {
				dE--
				if l == p+1 {
					dW--
				}
			}
		}
	}
	return dW, dE
}

// ratioDelta is the change of (W, E) under any move.
func (e *engine) ratioDelta(m *move) (dW, dE int) {
	if m.kind == mvSwap {
		return e.swapDelta(m.a, m.b)
	}
	// The changed windows all lie within maxQ-1 positions of an end of the
	// segment: take the masks there after the move once.
	lo, hi := m.bounds()
	Q := e.maxQ
	r1lo, r1hi := max(lo-Q+1, 0), min(lo+Q-1, e.n-1)
	r2lo, r2hi := max(hi-Q+1, 0), min(hi+Q-1, e.n-1)
	if r2lo <= r1hi+1 {
		r1hi, r2lo = r2hi, r2hi+1 // one region; the second is empty
	}
	buf := e.buf[:0]
	var diff uint64
	for _, rg := range [2]span{{r1lo, r1hi}, {r2lo, r2hi}} {
		for x := rg.lo; x <= rg.hi; x++ {
			nm := e.mask[m.src(x)]
			diff |= nm ^ e.mask[x]
			buf = append(buf, nm)
		}
	}
	e.buf = buf
	off2 := r1hi - r1lo + 1 - r2lo // buf index of x in region 2 is x+off2
	at := func(x int) uint64 {
		if x <= r1hi {
			return buf[x-r1lo]
		}
		return buf[x+off2]
	}
	if m.kind == mvReverse && diff == 0 {
		return 0, 0
	}
	for r := range e.rules {
		rs := &e.rules[r]
		nw := len(rs.load)
		bit := uint64(1) << r
		if nw == 0 || (m.kind == mvReverse && diff&bit == 0) {
			continue
		}
		q, p := rs.q, int32(rs.p)
		old, nu := m.spans(q)
		for _, sp := range old {
			for s := max(sp.lo, 0); s <= min(sp.hi, nw-1); s++ {
				if l := rs.load[s]; l > p {
					dW--
					dE -= int(l - p)
				}
			}
		}
		for _, sp := range nu {
			slo, shi := max(sp.lo, 0), min(sp.hi, nw-1)
			if slo > shi {
				continue
			}
			l := int32(0)
			for x := slo; x < slo+q-1; x++ {
				if at(x)&bit != 0 {
					l++
				}
			}
			for s := slo; s <= shi; s++ {
				if at(s+q-1)&bit != 0 {
					l++
				}
				if l > p {
					dW++
					dE += int(l - p)
				}
				if at(s)&bit != 0 {
					l--
				}
			}
		}
	}
	return dW, dE
}

// colourAt returns the colour at position x after m.
func (e *engine) colourAt(m *move, x int) int32 { return e.colour[e.car[m.src(x)]] }

// secDelta is the change of the batch, colour-change and rank terms under m.
func (e *engine) secDelta(m *move) (dBatch, dChanges int, dRank int64) {
	if e.colour != nil {
		old, nu := m.spans(2)
		for _, sp := range old {
			for s := max(sp.lo, 0); s <= min(sp.hi, e.n-2); s++ {
				if e.colour[e.car[s]] != e.colour[e.car[s+1]] {
					dChanges--
				}
			}
		}
		for _, sp := range nu {
			for s := max(sp.lo, 0); s <= min(sp.hi, e.n-2); s++ {
				if e.colourAt(m, s) != e.colourAt(m, s+1) {
					dChanges++
				}
			}
		}
		if q := e.batchQ; q > 0 {
			old, nu := m.spans(q)
			for _, sp := range old {
				for s := max(sp.lo, 0); s <= min(sp.hi, e.n-q); s++ {
					if e.mono(nil, s, q) {
						dBatch--
					}
				}
			}
			for _, sp := range nu {
				for s := max(sp.lo, 0); s <= min(sp.hi, e.n-q); s++ {
					if e.mono(m, s, q) {
						dBatch++
					}
				}
			}
		}
	}
	if e.rank != nil {
		dev := func(x int) int64 {
			return int64(abs(x-int(e.rank[e.car[m.src(x)]])) - abs(x-int(e.rank[e.car[x]])))
		}
		if m.kind == mvSwap {
			dRank = dev(m.a) + dev(m.b)
		} else {
			lo, hi := m.bounds()
			for x := lo; x <= hi; x++ {
				dRank += dev(x)
			}
		}
	}
	return dBatch, dChanges, dRank
}

// mono reports whether the q cars from position s are all one colour, after
// m or, with m nil, now.
func (e *engine) mono(m *move, s, q int) bool {
	if m == nil {
		c := e.colour[e.car[s]]
		for x := s + 1; x < s+q; x++ {
			if e.colour[e.car[x]] != c {
				return false
			}
		}
		return true
	}
	c := e.colourAt(m, s)
	for x := s + 1; x < s+q; x++ {
		if e.colourAt(m, x) != c {
			return false
		}
	}
	return true
}

// apply performs m and brings the window loads up to date; the caller
// updates e.cur.
func (e *engine) apply(m *move) {
	a, b := m.a, m.b
	switch m.kind {
	case mvSwap:
		d := e.mask[a] ^ e.mask[b]
		e.car[a], e.car[b] = e.car[b], e.car[a]
		e.mask[a], e.mask[b] = e.mask[b], e.mask[a]
		for ; d != 0; d &= d - 1 {
			r := bits.TrailingZeros64(d)
			q := e.rules[r].q
			e.recount(r, a-q+1, a)
			e.recount(r, max(a+1, b-q+1), b)
		}
		return
	case mvReverse:
		for i, j := a, b; i < j; i, j = i+1, j-1 {
			e.car[i], e.car[j] = e.car[j], e.car[i]
			e.mask[i], e.mask[j] = e.mask[j], e.mask[i]
		}
	default:
		c, mk := e.car[a], e.mask[a]
		if a < b {
			copy(e.car[a:b], e.car[a+1:b+1])
			copy(e.mask[a:b], e.mask[a+1:b+1])
		} else {
			copy(e.car[b+1:a+1], e.car[b:a])
			copy(e.mask[b+1:a+1], e.mask[b:a])
		}
		e.car[b], e.mask[b] = c, mk
	}
	lo, hi := m.bounds()
	for r := range e.rules {
		e.recount(r, lo-e.rules[r].q+1, hi)
	}
}

// pick chooses the next move to try.
func (e *engine) pick(m *move) {
	t := &e.tune
	var x int
	if len(e.viol) > 0 && e.rng.intn(1000) < t.focus {
		// A car that needs the option of an over-capacity window: moving
		// it out is what can lower the window's load.
		v := e.viol[e.rng.intn(len(e.viol))]
		rs := &e.rules[v.r]
		k := e.rng.intn(int(rs.load[v.s]))
		bit := uint64(1) << v.r
		for x = int(v.s); ; x++ {
			if e.mask[x]&bit != 0 {
				if k == 0 {
					break
				}
				k--
			}
		}
	} else {
		x = e.rng.intn(e.n)
	}
	var y int
	if e.rng.intn(1000) < t.near {
		lo, hi := max(0, x-t.reach), min(e.n-1, x+t.reach)
		y = lo + e.rng.intn(hi-lo)
		if y >= x {
			y++
		}
	} else {
		y = e.rng.intn(e.n - 1)
		if y >= x {
			y++
		}
	}
	k := e.rng.intn(1000)
	switch {
	case k < t.swap:
		m.kind = mvSwap
	case k < t.swap+t.reverse:
		m.kind = mvReverse
	default:
		m.kind = mvShift
		m.a, m.b = x, y
		return
	}
	m.a, m.b = min(x, y), max(x, y)
}

// stop tells the search when to end: a deadline (zero: none), a move budget
// (0: none), a number of moves without a better best (0: none), and a
// number of violated windows (ratio and batch) good enough to stop at
// (negative: none).
type stop struct {
	deadline time.Time
	maxMoves int64
	stall    int64
	target   int
}

// checkEvery is how many moves pass between looks at the clock and ctx.
const checkEvery = 1 << 12

// search runs the local search from the loaded sequence until st says stop
// or ctx is done, and leaves the best sequence in e.bestCar. The sequence of
// moves depends only on the seed; the clock decides only where it is cut.
func (e *engine) search(ctx context.Context, st stop) {
	if e.n < 2 {
		return
	}
	var m move
	lastBest := e.moves
	lastSwitch := e.moves
	for {
		if e.best.W+e.best.Batch <= st.target {
			return
		}
		if e.moves%checkEvery == 0 {
			if ctx.Err() != nil || (!st.deadline.IsZero() && !time.Now().Before(st.deadline)) {
				return
			}
		}
		if (st.maxMoves > 0 && e.moves >= st.maxMoves) || (st.stall > 0 && e.moves-lastBest >= st.stall) {
			return
		}
		if k := e.tune.switchAfter; k > 0 && e.moves-max(lastBest, lastSwitch) > k {
			e.tune.wW, e.tune.wE = e.tune.wE, e.tune.wW
			lastSwitch = e.moves
		}
		e.moves++
		e.pick(&m)
		if m.kind == mvSwap && e.mask[m.a] == e.mask[m.b] && !e.sec {
			continue
		}
		var d cost
		d.W, d.E = e.ratioDelta(&m)
		if e.sec {
			d.Batch, d.Changes, d.RankDev = e.secDelta(&m)
		}
		switch dP := e.primary(d); {
		case dP < 0:
		case dP == 0:
			// Sideways on the primary cost: free for CSPLib problems, and
			// for orders only if no worse on colour changes, then rank.
			if e.sec && (d.Changes > 0 || (d.Changes == 0 && d.RankDev > 0)) {
				continue
			}
		default:
			if dP >= len(e.accept) || e.rng.next()>>32 >= e.accept[dP] {
				continue
			}
		}
		e.do(&m, d)
		if e.cur.better(e.best) {
			e.best = e.cur
			copy(e.bestCar, e.car)
			e.bestAt = time.Now()
			lastBest = e.moves
		}
	}
}

// primary is the cost the search minimises first, or its change if c is a
// change: E or W (see tuning.switchAfter), batch windows counting alike.
func (e *engine) primary(c cost) int {
	return e.tune.wW*c.W + e.tune.wE*c.E + (e.tune.wW+e.tune.wE)*c.Batch
}

// do applies m, whose cost change is d.
func (e *engine) do(m *move, d cost) {
	e.apply(m)
	e.cur.W += d.W
	e.cur.E += d.E
	e.cur.Batch += d.Batch
	e.cur.Changes += d.Changes
	e.cur.RankDev += d.RankDev
}
