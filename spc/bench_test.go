package spc_test

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/keiline/keiline/spc"
)

// yearOfValues is a year of one line's results for one characteristic: 200,000
// torques of a normal process, one a car, with VIN-like identities.
func yearOfValues() []spc.Point {
	const n = 200_000
	r := rand.New(rand.NewPCG(2026, 17))
	start := time.Now().Add(-365 * 24 * time.Hour)
	pts := make([]spc.Point, n)
	for i := range pts {
		pts[i] = spc.Point{
			Value: 24 + 0.4*r.NormFloat64(),
			Time:  start.Add(time.Duration(i) * 158 * time.Second),
			ID:    "JK1KEI" + strconv.Itoa(1_000_000+i),
		}
	}
	return pts
}

var benchSink float64

// BenchmarkChartYear is the computation behind charting a year of one line's
// history: I-MR limits from a baseline of 125 points, every Nelson rule over
// all 200,000 values, and an SVG of the last 500 points. sum is the
// baseline measured in the same run: a plain loop summing the values.
func BenchmarkChartYear(b *testing.B) {
	pts := yearOfValues()
	b.Run("sum", func(b *testing.B) {
		for b.Loop() {
			s := 0.0
			for _, p := range pts {
				s += p.Value
			}
			benchSink = s
		}
	})
	b.Run("chart", func(b *testing.B) {
		for b.Loop() {
			l, err := spc.ComputeLimits(pts[:125], spc.ChartConfig{Method: spc.MethodIMR, N: 1})
			if err != nil {
				b.Fatal(err)
			}
			c, err := spc.Check(l, pts, spc.NelsonRules)
			if err != nil {
				b.Fatal(err)
			}
			svg, err := spc.RenderSVG(c.Tail(500), spc.SVGOptions{})
			if err != nil {
				b.Fatal(err)
			}
			benchSink = float64(len(svg) + len(c.Violations))
		}
	})
}
