package spc

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestStreamEqualsCheck: a Stream fed a series one result at a time plots
// the points Check plots and finds the violations Check finds, for every
// chart and rule set, on series with drifts, steps and noise.
func TestStreamEqualsCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, cfg := range []ChartConfig{{Method: MethodIMR, N: 1}, {Method: MethodXbarR, N: 4}, {Method: MethodXbarS, N: 5}} {
		for _, rules := range [][]Rule{NelsonRules, WesternElectricRules, {Nelson2}} {
			for trial := range 20 {
				base := make([]Point, 200)
				for i := range base {
					base[i] = Point{Value: 10 + r.NormFloat64(), ID: "b"}
				}
				lim, err := ComputeLimits(base, cfg)
				if err != nil {
					t.Fatal(err)
				}
				pts := make([]Point, 300+trial)
				for i := range pts {
					v := 10 + r.NormFloat64()
					if i > 150 && trial%2 == 0 {
						v += 0.02 * float64(i-150) // a drift
					}
					if i%37 == 0 {
						v += 4 // a spike
					}
					if trial%3 == 0 && i > 100 && i < 130 {
						v = 10 // a stuck sensor
					}
					pts[i] = Point{Value: v, ID: string(rune('a' + i%26))}
				}
				want, err := Check(lim, pts, rules)
				if err != nil {
					t.Fatal(err)
				}
				s, err := NewStream(lim, rules)
				if err != nil {
					t.Fatal(err)
				}
				var got []Violation
				var plotted []Plotted
				for i, p := range pts {
					if i == len(pts)/2 {
						s = s.Clone() // a copy goes on as the original would
					}
					pt, vs, ok, err := s.Add(p)
					if err != nil {
						t.Fatal(err)
					}
					if ok {
						plotted = append(plotted, pt)
						got = append(got, vs...)
					}
				}
				if !slices.Equal(plotted, want.Points) {
					t.Fatalf("%s %v trial %d: plotted points differ", cfg.Method, rules, trial)
				}
				if !slices.Equal(got, want.Violations) {
					t.Fatalf("%s %v trial %d: stream found %d violations, Check %d", cfg.Method, rules, trial, len(got), len(want.Violations))
				}
			}
		}
	}
}
