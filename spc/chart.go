package spc

import (
	"math"
	"time"
)

// Plotted is one point of a chart pair: an individual result (MethodIMR) or
// a subgroup of N consecutive results.
type Plotted struct {
	// First and Last are the indices, in the points given to Check, of the
	// results plotted here (First == Last for individuals).
	First int `json:"first"`
	Last  int `json:"last"`
	// ID and Time are the last result's: the car's VIN or event id that
	// traces the point back to the record. FirstID is the first result's.
	ID      string    `json:"id"`
	FirstID string    `json:"first_id"`
	Time    time.Time `json:"time"`
	// Location is the value (I chart) or the subgroup mean (X̄ chart).
	Location float64 `json:"location"`
	// Dispersion is the moving range to the previous result (MR chart), the
	// subgroup range (R) or standard deviation (S). HasDispersion is false
	// for the first individual, which has no moving range.
	Dispersion    float64 `json:"dispersion"`
	HasDispersion bool    `json:"has_dispersion"`
}

// Chart is a chart pair checked against frozen limits.
type Chart struct {
	Limits     Limits      `json:"limits"`
	Rules      []Rule      `json:"rules"`
	Points     []Plotted   `json:"points"`
	Violations []Violation `json:"violations"`
}

// Flagged reports the violations at plotted point i, in the order found.
func (c Chart) Flagged(i int) []Violation {
	var out []Violation
	for _, v := range c.Violations {
		if v.Index == i {
			out = append(out, v)
		}
	}
	return out
}

// Check plots points against the frozen limits and evaluates the rules. The
// limits are used as given, never recomputed. Points are subgrouped as the
// limits' chart says; a trailing incomplete subgroup is not plotted. For
// MethodIMR the first point has no moving range: to chart a window that
// continues a series, start it one point earlier. Violations are in the
// order of the points, location chart before dispersion chart at a point.
// Errors: ErrConfig (invalid limits or an unknown rule), ErrInvalidValue
// (naming the point).
func Check(l Limits, points []Point, rules []Rule) (Chart, error) {
	if err := l.Validate(); err != nil {
		return Chart{}, err
	}
	if err := ValidateRules(rules); err != nil {
		return Chart{}, err
	}
	if err := checkValues(points); err != nil {
		return Chart{}, err
	}
	rules = dedupe(rules)
	plotted := plot(points, l.Chart)
	ev := ruleEval{rules: rules, zones: zonesOf(l.Location)}
	dispRule := Rule("")
	for _, r := range rules {
		if r == Nelson1 || r == WE1 {
			dispRule = r
			break
		}
	}
	for i, p := range plotted {
		ev.add(p.Location)
		if dispRule != "" && p.HasDispersion && (p.Dispersion > l.Dispersion.UCL || (l.Dispersion.LCL > 0 && p.Dispersion < l.Dispersion.LCL)) {
			ev.out = append(ev.out, Violation{Rule: dispRule, Part: PartDispersion, Index: i, From: i, To: i})
		}
	}
	return Chart{Limits: l, Rules: rules, Points: plotted, Violations: ev.out}, nil
}

func plot(points []Point, cfg ChartConfig) []Plotted {
	if cfg.Method == MethodIMR {
		out := make([]Plotted, len(points))
		for i, p := range points {
			out[i] = Plotted{First: i, Last: i, ID: p.ID, FirstID: p.ID, Time: p.Time, Location: p.Value}
			if i > 0 {
				out[i].Dispersion = math.Abs(p.Value - points[i-1].Value)
				out[i].HasDispersion = true
			}
		}
		return out
	}
	sg := subgroups(points, cfg.N)
	out := make([]Plotted, len(sg))
	for i, g := range sg {
		d := g.rng
		if cfg.Method == MethodXbarS {
			d = g.sd
		}
		out[i] = Plotted{
			First: g.first, Last: g.last, ID: points[g.last].ID, FirstID: points[g.first].ID,
			Time: points[g.last].Time, Location: g.mean, Dispersion: d, HasDispersion: true,
		}
	}
	return out
}

// Tail returns the chart of the last n plotted points (all of them if there
// are fewer), with the violations that tripped there re-indexed to it; a
// pattern that began earlier is cut at the first point kept. Check a long
// history and draw its Tail, so that the rules see the runs that lead into
// the window.
func (c Chart) Tail(n int) Chart {
	start := max(0, len(c.Points)-max(n, 0))
	out := Chart{Limits: c.Limits, Rules: c.Rules, Points: c.Points[start:]}
	for _, v := range c.Violations {
		if v.Index < start {
			continue
		}
		v.Index -= start
		v.To -= start
		v.From = max(0, v.From-start)
		out.Violations = append(out.Violations, v)
	}
	return out
}
