package spc_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/keiline/keiline/spc"
)

// unitLimits is an individuals chart with centre 0 and sigma 1.
var unitLimits = spc.Limits{
	Chart:      spc.ChartConfig{Method: spc.MethodIMR, N: 1},
	Location:   spc.Lines{Centre: 0, UCL: 3, LCL: -3},
	Dispersion: spc.Lines{Centre: 1.128, UCL: 3.686, LCL: 0},
	Sigma:      1,
}

func repeat(v float64, n int) []float64 { return slices.Repeat([]float64{v}, n) }

func alternate(a, b float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = a
		if i%2 == 1 {
			out[i] = b
		}
	}
	return out
}

type trip struct{ index, from, to int }

// Each rule trips on the location chart exactly where its definition says,
// at the k-th point of its window and not before, and not on the near misses
// (a point on a zone line belongs to the inner zone, a point on the centre
// line ends a run).
func TestRulesTripWhereDefined(t *testing.T) {
	cases := []struct {
		name   string
		rule   spc.Rule
		values []float64
		want   []trip
	}{
		{"nelson1 beyond either limit", spc.Nelson1, []float64{0, 3.01, 0, -3.5}, []trip{{1, 1, 1}, {3, 3, 3}}},
		{"nelson1 on the limit is inside", spc.Nelson1, []float64{3, -3, 0}, nil},
		{"we1 beyond a limit", spc.WE1, []float64{0, 0, 4}, []trip{{2, 2, 2}}},
		{"nelson2 nine above", spc.Nelson2, repeat(0.5, 9), []trip{{8, 0, 8}}},
		{"nelson2 trips at every point of a longer run", spc.Nelson2, repeat(-0.5, 11), []trip{{8, 0, 8}, {9, 1, 9}, {10, 2, 10}}},
		{"nelson2 eight are not enough", spc.Nelson2, repeat(0.5, 8), nil},
		{"nelson2 a point on the centre line ends the run", spc.Nelson2, slices.Concat(repeat(0.5, 5), []float64{0}, repeat(0.5, 5)), nil},
		{"we4 eight above", spc.WE4, repeat(0.5, 8), []trip{{7, 0, 7}}},
		{"we4 seven are not enough", spc.WE4, repeat(0.5, 7), nil},
		{"nelson3 six rising", spc.Nelson3, []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, []trip{{5, 0, 5}}},
		{"nelson3 six falling", spc.Nelson3, []float64{0.9, 0.6, 0.3, 0, -0.3, -0.6}, []trip{{5, 0, 5}}},
		{"nelson3 an equal pair ends the run", spc.Nelson3, []float64{0.1, 0.2, 0.3, 0.3, 0.5, 0.6}, nil},
		{"nelson3 five rising are not enough", spc.Nelson3, []float64{0.1, 0.2, 0.3, 0.4, 0.5}, nil},
		{"nelson4 fourteen alternating", spc.Nelson4, alternate(0.5, -0.5, 14), []trip{{13, 0, 13}}},
		{"nelson4 thirteen are not enough", spc.Nelson4, alternate(0.5, -0.5, 13), nil},
		{"nelson4 two rises in a row restart it", spc.Nelson4, slices.Concat(alternate(0.5, -0.5, 8), []float64{-0.2}, alternate(0.5, -0.5, 5)), nil},
		{"nelson5 two of three beyond 2σ", spc.Nelson5, []float64{0, 2.5, 0, 2.5}, []trip{{3, 1, 3}}},
		{"nelson5 first window holds the pattern", spc.Nelson5, []float64{2.5, 2.5, 0}, []trip{{1 + 1, 0, 2}}},
		{"nelson5 on the 2σ line is inside", spc.Nelson5, []float64{2, 2, 2, 2}, nil},
		{"nelson5 opposite sides do not count", spc.Nelson5, []float64{2.5, -2.5, 0, 2.5, -2.5}, nil},
		{"we2 two of three below", spc.WE2, []float64{0, -2.2, -2.9, 0}, []trip{{2, 0, 2}}},
		{"nelson6 four of five beyond 1σ", spc.Nelson6, []float64{0, 1.5, 1.5, 0, 1.5, 1.5}, []trip{{5, 1, 5}}},
		{"nelson6 three of five are not enough", spc.Nelson6, []float64{1.5, 0, 1.5, 0, 1.5, 0}, nil},
		{"we3 four of five below", spc.WE3, []float64{-1.1, -1.2, -1.3, -1.4, 0}, []trip{{4, 0, 4}}},
		{"nelson7 fifteen within 1σ", spc.Nelson7, alternate(1, -0.5, 15), []trip{{14, 0, 14}}},
		{"nelson7 a point beyond 1σ ends it", spc.Nelson7, slices.Concat(alternate(0.5, -0.5, 10), []float64{1.01}, alternate(0.5, -0.5, 10)), nil},
		{"nelson8 eight beyond 1σ either side", spc.Nelson8, alternate(1.5, -1.5, 8), []trip{{7, 0, 7}}},
		{"nelson8 a point within 1σ ends it", spc.Nelson8, slices.Concat(alternate(1.5, -1.5, 6), []float64{1}, alternate(1.5, -1.5, 6)), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chart, err := spc.Check(unitLimits, asPoints(c.values), []spc.Rule{c.rule})
			if err != nil {
				t.Fatal(err)
			}
			var got []trip
			for _, v := range chart.Violations {
				if v.Part == spc.PartDispersion {
					continue // TestDispersionBeyondLimits
				}
				if v.Rule != c.rule {
					t.Errorf("violation %+v; want rule %s", v, c.rule)
				}
				got = append(got, trip{v.Index, v.From, v.To})
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("trips = %v; want %v", got, c.want)
			}
		})
	}
}

// A noiseless step of +1.5σ after a centred run trips each rule exactly when
// the shifted points fill its window: Nelson 6 (four beyond 1σ) at the
// fourth shifted point, Nelson 2 (nine on one side) at the ninth.
func TestStepShiftTripsWithinTheWindow(t *testing.T) {
	values := slices.Concat(alternate(0.2, -0.2, 20), repeat(1.5, 12))
	chart, err := spc.Check(unitLimits, asPoints(values), spc.NelsonRules)
	if err != nil {
		t.Fatal(err)
	}
	first := map[spc.Rule]int{}
	for _, v := range chart.Violations {
		if _, ok := first[v.Rule]; !ok && v.Index >= 20 {
			first[v.Rule] = v.Index - 20 + 1 // 1-based shifted point
		}
	}
	if first[spc.Nelson6] != 4 || first[spc.Nelson2] != 9 {
		t.Errorf("first trip at shifted point: Nelson 6 %d, Nelson 2 %d; want 4 and 9 (all: %v)", first[spc.Nelson6], first[spc.Nelson2], first)
	}
	if _, ok := first[spc.Nelson1]; ok {
		t.Errorf("Nelson 1 tripped on points at 1.5σ")
	}
}

// The dispersion chart is checked for points beyond its limits when Nelson 1
// or WE 1 is selected, and a flagged point names its rule and chart.
func TestDispersionBeyondLimits(t *testing.T) {
	chart, err := spc.Check(unitLimits, asPoints([]float64{-2, 2, 0}), []spc.Rule{spc.Nelson1, spc.Nelson2})
	if err != nil {
		t.Fatal(err)
	}
	want := []spc.Violation{{Rule: spc.Nelson1, Part: spc.PartDispersion, Index: 1, From: 1, To: 1}}
	if !slices.Equal(chart.Violations, want) {
		t.Errorf("violations = %+v; want the moving range of 4 beyond 3.686", chart.Violations)
	}
	if f := chart.Flagged(1); len(f) != 1 || chart.Points[1].ID != "P2" {
		t.Errorf("Flagged(1) = %v at %s", f, chart.Points[1].ID)
	}
	chart, err = spc.Check(unitLimits, asPoints([]float64{-2, 2, 0}), []spc.Rule{spc.Nelson2})
	if err != nil || len(chart.Violations) != 0 {
		t.Errorf("without Nelson 1: %v, %v; want no violations", chart.Violations, err)
	}
}

func TestCheckRejectsUnknownRuleAndBadLimits(t *testing.T) {
	if _, err := spc.Check(unitLimits, asPoints([]float64{1, 2}), []spc.Rule{"nelson9"}); !errors.Is(err, spc.ErrConfig) {
		t.Errorf("unknown rule: %v; want ErrConfig", err)
	}
	bad := unitLimits
	bad.Location.UCL = -1
	if _, err := spc.Check(bad, asPoints([]float64{1, 2}), nil); !errors.Is(err, spc.ErrConfig) {
		t.Errorf("UCL below centre: %v; want ErrConfig", err)
	}
}

// Tail keeps the last points and the violations that tripped there,
// re-indexed, with patterns cut at the window's start.
func TestChartTail(t *testing.T) {
	c, err := spc.Check(unitLimits, asPoints(repeat(0.5, 12)), []spc.Rule{spc.Nelson2})
	if err != nil {
		t.Fatal(err)
	}
	tail := c.Tail(5)
	if len(tail.Points) != 5 || tail.Points[0].ID != "P8" {
		t.Fatalf("tail starts at %s with %d points; want P8 and 5", tail.Points[0].ID, len(tail.Points))
	}
	want := []spc.Violation{
		{Rule: spc.Nelson2, Part: spc.PartLocation, Index: 1, From: 0, To: 1},
		{Rule: spc.Nelson2, Part: spc.PartLocation, Index: 2, From: 0, To: 2},
		{Rule: spc.Nelson2, Part: spc.PartLocation, Index: 3, From: 0, To: 3},
		{Rule: spc.Nelson2, Part: spc.PartLocation, Index: 4, From: 0, To: 4},
	}
	if !slices.Equal(tail.Violations, want) {
		t.Errorf("tail violations = %+v; want %+v", tail.Violations, want)
	}
	if all := c.Tail(100); len(all.Points) != 12 || len(all.Violations) != 4 {
		t.Errorf("Tail(100) kept %d points, %d violations; want all", len(all.Points), len(all.Violations))
	}
}
