package spc_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/keiline/keiline/spc"
)

// normalSeries returns n values of a normal process with mean 20 (a torque
// in N·m) and sigma 0.5, from a seeded generator.
func normalSeries(r *rand.Rand, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 20 + 0.5*r.NormFloat64()
	}
	return out
}

var imr = spc.ChartConfig{Method: spc.MethodIMR, N: 1}

// A stable normal process charted against limits frozen from a baseline of
// 125 raises Nelson 1 at about the nominal rate of 0.27 % of points (limits
// estimated from a baseline widen the spread a little), and most runs of 50
// points raise no alarm at all (0.9973⁵⁰ ≈ 87 %).
func TestStableProcessFalseAlarmRate(t *testing.T) {
	const runs, perRun = 600, 50
	alarms, quiet := 0, 0
	for seed := range uint64(runs) {
		r := rand.New(rand.NewPCG(seed, 1))
		l, err := spc.ComputeLimits(asPoints(normalSeries(r, 125)), imr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := spc.Check(l, asPoints(normalSeries(r, perRun)), []spc.Rule{spc.Nelson1})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range c.Violations {
			if v.Part == spc.PartLocation {
				n++
			}
		}
		alarms += n
		if n == 0 {
			quiet++
		}
	}
	rate := float64(alarms) / (runs * perRun)
	t.Logf("Nelson 1 rate %.4f, %.2f of runs quiet", rate, float64(quiet)/runs)
	if rate < 0.0012 || rate > 0.0060 {
		t.Errorf("Nelson 1 rate %.4f over %d points; want about 0.0027", rate, runs*perRun)
	}
	if frac := float64(quiet) / runs; frac < 0.78 {
		t.Errorf("%.2f of runs without alarm; want most (about 0.87)", frac)
	}
}

// A planted shift of the mean by 1.5σ trips Nelson 2 or Nelson 1 within the
// nine points Nelson 2 needs in most runs (about 80 %: all nine above the
// centre line, or one of them beyond 3σ), and it never goes unseen for long.
func TestShiftOfOneAndAHalfSigmaIsDetected(t *testing.T) {
	const runs = 400
	within, slowest := 0, 0
	for seed := range uint64(runs) {
		r := rand.New(rand.NewPCG(seed, 2))
		l, err := spc.ComputeLimits(asPoints(normalSeries(r, 125)), imr)
		if err != nil {
			t.Fatal(err)
		}
		after := normalSeries(r, 60)
		for i := range after {
			after[i] += 1.5 * 0.5
		}
		c, err := spc.Check(l, asPoints(after), []spc.Rule{spc.Nelson1, spc.Nelson2})
		if err != nil {
			t.Fatal(err)
		}
		first := -1
		for _, v := range c.Violations {
			if v.Part == spc.PartLocation {
				first = v.Index
				break
			}
		}
		if first < 0 {
			t.Fatalf("seed %d: a 1.5σ shift went unseen for 60 points", seed)
		}
		if first < 9 {
			within++
		}
		slowest = max(slowest, first+1)
	}
	if frac := float64(within) / runs; frac < 0.70 {
		t.Errorf("%.2f of runs tripped within 9 points; want about 0.80", frac)
	}
	t.Logf("%.2f within 9 points; slowest detection %d points after the shift", float64(within)/runs, slowest)
}

// Limits frozen from a baseline do not move when new points arrive: Check
// returns them as given, and charting baseline plus new points (shifted ones
// among them) flags the new points against the old limits instead of
// absorbing them.
func TestFrozenLimitsDoNotMove(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	base := asPoints(normalSeries(r, 125))
	l, err := spc.ComputeLimits(base, imr)
	if err != nil {
		t.Fatal(err)
	}
	frozen := l
	for k := 1; k <= 4; k++ {
		more := normalSeries(r, 100)
		for i := range more {
			more[i] += float64(k) * 0.5 // a drift of one sigma per batch
		}
		all := slices.Concat(base, asPoints(more))
		c, err := spc.Check(l, all, spc.NelsonRules)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.Limits, frozen) || !reflect.DeepEqual(l, frozen) {
			t.Fatalf("batch %d: limits moved: %+v; frozen %+v", k, c.Limits, frozen)
		}
		late := 0
		for _, v := range c.Violations {
			if v.Index >= len(base) {
				late++
			}
		}
		if late == 0 {
			t.Errorf("batch %d: a drift of %dσ raised nothing against the frozen limits", k, k)
		}
		base = all
	}
	again, err := spc.ComputeLimits(base[:125], imr)
	if err != nil || !reflect.DeepEqual(again, frozen) {
		t.Errorf("recomputing from the same baseline: %+v, %v; want %+v", again, err, frozen)
	}
}
