package spc

import (
	"math"
	"slices"
)

// Stream checks a series one result at a time against frozen limits, as
// Check does over the whole series, for a monitor that sees each result as
// it is made: the same plotted points, the same violations, at the cost
// of one point per result. The zero Stream is not usable: see NewStream.
// A Stream is a value: Clone gives an independent copy.
type Stream struct {
	limits   Limits
	ev       ruleEval
	dispRule Rule
	// plotted counts the points plotted; pending are the results of the
	// subgroup not yet complete; prev is the last result (moving range).
	plotted int
	pending []Point
	prev    float64
	results int
}

// NewStream returns a stream that checks results against l with rules.
// Errors: ErrConfig (invalid limits or an unknown rule).
func NewStream(l Limits, rules []Rule) (*Stream, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateRules(rules); err != nil {
		return nil, err
	}
	rules = dedupe(rules)
	s := &Stream{limits: l, ev: ruleEval{rules: rules, zones: zonesOf(l.Location)}}
	for _, r := range rules {
		if r == Nelson1 || r == WE1 {
			s.dispRule = r
			break
		}
	}
	return s, nil
}

// Clone returns a copy of s that goes on independently.
func (s *Stream) Clone() *Stream {
	c := *s
	c.pending = slices.Clone(s.pending)
	c.ev.out = nil
	return &c
}

// Plotted is how many points s has plotted.
func (s *Stream) Plotted() int { return s.plotted }

// Add adds result p. When p completes a plotted point (every result of an
// individuals chart, the last of a subgroup) it returns that point and
// the violations at it, ok true; Violation.Index and the windows are
// counted in points plotted since the stream began, and Plotted.First
// and Last in results. Errors: ErrInvalidValue (p is NaN, ±Inf or beyond
// ±MaxAbsValue: it is not added).
func (s *Stream) Add(p Point) (pt Plotted, vs []Violation, ok bool, err error) {
	if !usable(p.Value) {
		return pt, nil, false, &InvalidValueError{Index: s.results, ID: p.ID, Value: p.Value}
	}
	i := s.results
	s.results++
	cfg := s.limits.Chart
	if cfg.Method == MethodIMR {
		pt = Plotted{First: i, Last: i, ID: p.ID, FirstID: p.ID, Time: p.Time, Location: p.Value}
		if i > 0 {
			pt.Dispersion, pt.HasDispersion = math.Abs(p.Value-s.prev), true
		}
		s.prev = p.Value
	} else {
		s.pending = append(s.pending, p)
		if len(s.pending) < cfg.N {
			return pt, nil, false, nil
		}
		g := summarize(s.pending, i-cfg.N+1)
		d := g.rng
		if cfg.Method == MethodXbarS {
			d = g.sd
		}
		pt = Plotted{First: g.first, Last: g.last, ID: p.ID, FirstID: s.pending[0].ID, Time: p.Time, Location: g.mean, Dispersion: d, HasDispersion: true}
		s.pending = s.pending[:0]
	}
	k := s.plotted
	s.plotted++
	s.ev.out = s.ev.out[:0]
	s.ev.add(pt.Location)
	l := s.limits.Dispersion
	if s.dispRule != "" && pt.HasDispersion && (pt.Dispersion > l.UCL || (l.LCL > 0 && pt.Dispersion < l.LCL)) {
		s.ev.out = append(s.ev.out, Violation{Rule: s.dispRule, Part: PartDispersion, Index: k, From: k, To: k})
	}
	return pt, s.ev.out, true, nil
}
