package spc

import (
	"fmt"
	"math"
	"time"
)

// Point is one measured result of a characteristic: a torque of a joint or a
// value of a test, on one car.
type Point struct {
	Value float64   `json:"value"`
	Time  time.Time `json:"time"`
	// ID traces the point back to the record: the car's VIN, or the event id.
	ID string `json:"id"`
}

// Bound is an optional number: a specification limit or target that may be
// absent. The zero Bound is absent.
type Bound struct {
	Value float64 `json:"value"`
	Set   bool    `json:"set"`
}

// At returns the Bound present at v.
func At(v float64) Bound { return Bound{Value: v, Set: true} }

// Spec is a characteristic's specification: its limits (either may be
// absent, as for a minimum torque or a maximum leak rate) and a target.
type Spec struct {
	LSL    Bound `json:"lsl"`
	USL    Bound `json:"usl"`
	Target Bound `json:"target"`
}

// Validate reports whether the spec can be used: present values finite and
// LSL < USL when both are present. It returns an error wrapping ErrConfig.
func (s Spec) Validate() error {
	for _, f := range []struct {
		name string
		b    Bound
	}{{"LSL", s.LSL}, {"USL", s.USL}, {"Target", s.Target}} {
		if f.b.Set && !usable(f.b.Value) {
			return configError("spec %s is %v; want a finite number within ±%g", f.name, f.b.Value, MaxAbsValue)
		}
	}
	if s.LSL.Set && s.USL.Set && !(s.LSL.Value < s.USL.Value) {
		return configError("spec LSL %v is not below USL %v", s.LSL.Value, s.USL.Value)
	}
	return nil
}

// Subgroup sizes: 1 charts each car's result on its own (individuals); 2 to
// 25 groups that many consecutive results.
const (
	SubgroupMin = 1
	SubgroupMax = 25
)

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// MaxAbsValue bounds the values this package accepts, far beyond any
// measurement, so that sums and squares of a year of values stay finite.
const MaxAbsValue = 1e100

func usable(v float64) bool { return finite(v) && math.Abs(v) <= MaxAbsValue }

// checkValues returns an *InvalidValueError for the first value that is NaN,
// ±Inf or beyond ±MaxAbsValue.
func checkValues(points []Point) error {
	for i, p := range points {
		if !usable(p.Value) {
			return &InvalidValueError{Index: i, ID: p.ID, Value: p.Value}
		}
	}
	return nil
}

// subgroup is one plotted subgroup's statistics.
type subgroup struct {
	first, last int // indices of the member points (inclusive)
	mean        float64
	rng         float64 // range, max − min
	sd          float64 // sample standard deviation (n − 1)
}

// subgroups splits points into consecutive subgroups of n; a trailing
// incomplete subgroup is left out (it is plotted when its n-th result comes).
func subgroups(points []Point, n int) []subgroup {
	out := make([]subgroup, 0, len(points)/n)
	for first := 0; first+n <= len(points); first += n {
		out = append(out, summarize(points[first:first+n], first))
	}
	return out
}

func summarize(members []Point, first int) subgroup {
	n := float64(len(members))
	lo, hi, sum := members[0].Value, members[0].Value, 0.0
	for _, p := range members {
		sum += p.Value
		lo = math.Min(lo, p.Value)
		hi = math.Max(hi, p.Value)
	}
	mean := sum / n
	ss := 0.0
	for _, p := range members {
		d := p.Value - mean
		ss += d * d
	}
	return subgroup{first: first, last: first + len(members) - 1, mean: mean, rng: hi - lo, sd: math.Sqrt(ss / (n - 1))}
}

// meanSD returns the mean and the sample standard deviation (n − 1) of the
// points' values, by two passes for accuracy.
func meanSD(points []Point) (mean, sd float64) {
	sum := 0.0
	for _, p := range points {
		sum += p.Value
	}
	mean = sum / float64(len(points))
	ss := 0.0
	for _, p := range points {
		d := p.Value - mean
		ss += d * d
	}
	return mean, math.Sqrt(ss / float64(len(points)-1))
}

func pointName(points []Point, i int) string {
	return fmt.Sprintf("point %d (id %q)", i, points[i].ID)
}
