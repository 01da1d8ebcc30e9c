package spc

import (
	"slices"
)

// Rule identifies a run rule (a test for special causes). A characteristic
// selects a set of them; Check evaluates them on the location chart (I or
// X̄), and the rules that only look for a point beyond the limits (Nelson1,
// WE1) on the dispersion chart too.
//
// Zones are measured from the centre line in units of the plotted
// statistic's sigma, one third of the distance from the centre line to the
// control limit on that side. A point exactly on a zone boundary belongs to
// the inner zone: "beyond kσ" means strictly more than k sigma from the
// centre line, "within 1σ" includes the 1σ line. A point exactly on the
// centre line is on neither side and ends every same-side run.
//
// A rule trips at the last point of its window (Violation.Index) and names
// the window (Violation.From to Violation.To). A rule that needs k points
// never trips before k points are plotted; a run longer than k trips at
// every point from the k-th on, so a drift is flagged within the k points the
// rule needs and for as long as it lasts.
type Rule string

// Nelson's eight tests (L. S. Nelson, J. Quality Technology 16, 1984).
const (
	// Nelson1: one point beyond 3σ (outside the control limits), either side.
	// Window: 1 point. Also evaluated on the dispersion chart.
	Nelson1 Rule = "nelson1"
	// Nelson2: nine points in a row on the same side of the centre line.
	// Window: 9 points.
	Nelson2 Rule = "nelson2"
	// Nelson3: six points in a row steadily increasing or steadily
	// decreasing (five strict rises, or five strict falls; an equal pair
	// ends the run). Window: 6 points.
	Nelson3 Rule = "nelson3"
	// Nelson4: fourteen points in a row alternating up and down (thirteen
	// changes, each opposite in sign to the one before; an equal pair ends
	// the run). Window: 14 points.
	Nelson4 Rule = "nelson4"
	// Nelson5: two out of three points in a row beyond 2σ on the same side.
	// Window: 3 points; trips when the window holds at least two such points
	// and its last point is one of them (or it is the series' first window).
	Nelson5 Rule = "nelson5"
	// Nelson6: four out of five points in a row beyond 1σ on the same side.
	// Window: 5 points; trips when the window holds at least four such
	// points and its last point is one of them (or it is the series' first
	// window).
	Nelson6 Rule = "nelson6"
	// Nelson7: fifteen points in a row within 1σ of the centre line, either
	// side (stratification: limits too wide for the data). Window: 15 points.
	Nelson7 Rule = "nelson7"
	// Nelson8: eight points in a row beyond 1σ, on either side, none within
	// 1σ (a mixture). Window: 8 points.
	Nelson8 Rule = "nelson8"
)

// The Western Electric zone rules (Statistical Quality Control Handbook,
// 1956; NIST/SEMATECH e-Handbook 6.3.2).
const (
	// WE1: one point beyond 3σ, either side. Window: 1 point. Also
	// evaluated on the dispersion chart.
	WE1 Rule = "we1"
	// WE2: two out of three points in a row beyond 2σ on the same side.
	// Window: 3 points, tripping as Nelson5.
	WE2 Rule = "we2"
	// WE3: four out of five points in a row beyond 1σ on the same side.
	// Window: 5 points, tripping as Nelson6.
	WE3 Rule = "we3"
	// WE4: eight points in a row on the same side of the centre line.
	// Window: 8 points.
	WE4 Rule = "we4"
)

// NelsonRules and WesternElectricRules are the two published sets.
var (
	NelsonRules          = []Rule{Nelson1, Nelson2, Nelson3, Nelson4, Nelson5, Nelson6, Nelson7, Nelson8}
	WesternElectricRules = []Rule{WE1, WE2, WE3, WE4}
)

// ruleNames are the rules' short names, used where a caller gives none.
var ruleNames = map[Rule]string{
	Nelson1: "Nelson 1", Nelson2: "Nelson 2", Nelson3: "Nelson 3", Nelson4: "Nelson 4",
	Nelson5: "Nelson 5", Nelson6: "Nelson 6", Nelson7: "Nelson 7", Nelson8: "Nelson 8",
	WE1: "Western Electric 1", WE2: "Western Electric 2", WE3: "Western Electric 3", WE4: "Western Electric 4",
}

// String returns the rule's short name, such as "Nelson 2".
func (r Rule) String() string {
	if n, ok := ruleNames[r]; ok {
		return n
	}
	return string(r)
}

// ValidateRules reports an unknown rule id with an error wrapping ErrConfig
// that lists the known ids.
func ValidateRules(rules []Rule) error {
	for _, r := range rules {
		if _, ok := ruleNames[r]; !ok {
			return configError("rule %q; want one of nelson1…nelson8, we1…we4", string(r))
		}
	}
	return nil
}

// Part names the chart of a pair.
type Part string

const (
	PartLocation   Part = "location"   // the I or X̄ chart
	PartDispersion Part = "dispersion" // the MR, R or S chart
)

// Violation is one tripped rule.
type Violation struct {
	Rule Rule `json:"rule"`
	Part Part `json:"part"`
	// Index is the plotted point (index into Chart.Points) at which the rule
	// tripped, the last point of its window.
	Index int `json:"index"`
	// From and To (inclusive, indices into Chart.Points) are the points
	// that make up the pattern: the rule's window.
	From int `json:"from"`
	To   int `json:"to"`
}

// point classification bits, per side.
const (
	aboveCL = 1 << iota
	belowCL
	above1
	below1
	above2
	below2
	above3
	below3
)

// zones are the boundaries of a chart's zones: the centre line and the
// 1σ, 2σ and 3σ lines above and below it.
type zones struct {
	centre, up1, up2, up3, lo1, lo2, lo3 float64
}

func zonesOf(l Lines) zones {
	su, sl := (l.UCL-l.Centre)/3, (l.Centre-l.LCL)/3
	return zones{centre: l.Centre, up1: l.Centre + su, up2: l.Centre + 2*su, up3: l.UCL, lo1: l.Centre - sl, lo2: l.Centre - 2*sl, lo3: l.LCL}
}

func (z zones) classify(x float64) uint8 {
	var c uint8
	switch {
	case x > z.centre:
		c |= aboveCL
		if x > z.up1 {
			c |= above1
		}
		if x > z.up2 {
			c |= above2
		}
		if x > z.up3 {
			c |= above3
		}
	case x < z.centre:
		c |= belowCL
		if x < z.lo1 {
			c |= below1
		}
		if x < z.lo2 {
			c |= below2
		}
		if x < z.lo3 {
			c |= below3
		}
	}
	return c
}

// ruleEval holds the running state of the rules over one series: the
// classes of the last five points (the longest m-of-k window), the last two
// values, and the lengths of the runs ending at the current point.
type ruleEval struct {
	rules []Rule
	zones zones
	n     int      // points seen
	class [5]uint8 // class of point i at class[i%5]
	prev  [2]float64
	// runs, in points, ending at the current point
	above, below, inner, outer, rise, fall, alt int
	out                                         []Violation
}

func (e *ruleEval) add(x float64) {
	i := e.n
	e.n++
	c := e.zones.classify(x)
	e.class[i%len(e.class)] = c
	e.above = runIf(c&aboveCL != 0, e.above)
	e.below = runIf(c&belowCL != 0, e.below)
	e.inner = runIf(c&(above1|below1) == 0, e.inner)
	e.outer = runIf(c&(above1|below1) != 0, e.outer)
	if i == 0 {
		e.rise, e.fall, e.alt = 1, 1, 1
	} else {
		p1, p2 := e.prev[0], e.prev[1]
		e.rise = runIfElse(x > p1, e.rise)
		e.fall = runIfElse(x < p1, e.fall)
		switch {
		case x == p1:
			e.alt = 1
		case i >= 2 && (x > p1) != (p1 > p2) && p1 != p2:
			e.alt++
		default:
			e.alt = 2
		}
	}
	e.prev[1], e.prev[0] = e.prev[0], x
	for _, r := range e.rules {
		switch r {
		case Nelson1, WE1:
			if c&(above3|below3) != 0 {
				e.trip(r, i, 1)
			}
		case Nelson2:
			e.run(r, i, 9, max(e.above, e.below))
		case WE4:
			e.run(r, i, 8, max(e.above, e.below))
		case Nelson3:
			e.run(r, i, 6, max(e.rise, e.fall))
		case Nelson4:
			e.run(r, i, 14, e.alt)
		case Nelson5, WE2:
			e.mOfK(r, i, 2, 3, above2, below2)
		case Nelson6, WE3:
			e.mOfK(r, i, 4, 5, above1, below1)
		case Nelson7:
			e.run(r, i, 15, e.inner)
		case Nelson8:
			e.run(r, i, 8, e.outer)
		}
	}
}

func runIf(in bool, n int) int {
	if in {
		return n + 1
	}
	return 0
}

// runIfElse counts points in a monotone run: a run of one point restarts it.
func runIfElse(in bool, n int) int {
	if in {
		return n + 1
	}
	return 1
}

func (e *ruleEval) run(r Rule, i, k, length int) {
	if length >= k {
		e.trip(r, i, k)
	}
}

// mOfK trips when the window of k ending at i holds at least m points with
// the side bit, and its last point has it (or it is the first full window).
func (e *ruleEval) mOfK(r Rule, i, m, k int, up, down uint8) {
	if i < k-1 {
		return
	}
	for _, bit := range [2]uint8{up, down} {
		if e.class[i%len(e.class)]&bit == 0 && i != k-1 {
			continue
		}
		n := 0
		for j := i - k + 1; j <= i; j++ {
			if e.class[j%len(e.class)]&bit != 0 {
				n++
			}
		}
		if n >= m {
			e.trip(r, i, k)
			return
		}
	}
}

func (e *ruleEval) trip(r Rule, i, k int) {
	e.out = append(e.out, Violation{Rule: r, Part: PartLocation, Index: i, From: i - k + 1, To: i})
}

// dedupe returns the rules in the order given without repeats.
func dedupe(rules []Rule) []Rule {
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}
